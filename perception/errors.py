"""The base error of the perception package.

Every module of ``perception`` raises its own subclass of :class:`PerceptionError`
(``VoxelizeError``, ``CloudFileError``, ``ModelFileError``, ...), so a caller that only wants to
know "the detector could not handle this input" catches ``PerceptionError``.
"""

from __future__ import annotations


class PerceptionError(ValueError):
    """Bad input to the lidar detector: a malformed cloud, file, config or model file."""
