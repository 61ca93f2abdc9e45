"""The file layer under ``robomr_nodes.bag``: metadata.yaml and durable MCAP files.

- ``errors``: :class:`BagError` and :class:`BagWriteError`;
- ``metadata``: metadata.yaml (rosbag2 format version 9) built, written atomically while
  recording, and validated on reading with errors that name the key at fault;
- ``mcapfile``: an MCAP writer whose every complete chunk is on disk at once (chunk, data and
  summary CRCs; a failed write rolls back to the last complete chunk), a checker for those
  CRCs, and a reader for the complete chunks of a truncated file.
"""
