"""The three-level artifact cache replicas start from (SealOS+, arXiv 2505.23258).

A replica needs artifacts: model weights (``models/detector.pt``) and Gaussian maps (``.ply``).

- **L3, the artifact store** (:class:`ArtifactStore`): what the cluster was deployed from. A
  folder with ``manifest.json`` (name -> file, sha256 of the content, size, compression);
  artifacts are kept xz-compressed, as a registry keeps archives, and every fetch is
  decompressed and verified against the manifest's sha256.
- **L2, node-local** (:class:`RedisServer` + :class:`ArtifactCache`): a real redis-server the
  cluster starts on a private unix socket (no TCP port), holding verified, decompressed
  artifacts under ``robomr:artifact:<name>:<sha256>`` with LRU eviction at ``maxmemory``.
- **L1, process memory**: the bytes (or the decoded object, ``get_object``) in this process.
  For a *new* replica process, L1 is the warm template it is forked from
  (``offload.cluster.autoscaling.coldstart``): libraries imported, artifacts loaded, models
  warmed, shared copy-on-write.

Keys carry the content hash, so a new deployment (a changed manifest) can never be served a
stale artifact: lookups for the new sha miss every level and fetch it. ``invalidate`` also drops
the old entries. A Redis that is down or full degrades to misses (logged once), never to an
error: L3 still answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import lzma
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

_log = logging.getLogger(__name__)
PREFIX = "robomr:artifact"
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError)


class ArtifactError(RuntimeError):
    """A missing, corrupt or unknown artifact, or a cache component that cannot start."""


@dataclass(frozen=True)
class ArtifactRef:
    name: str
    file: str
    sha256: str
    size_bytes: int
    compression: str  # "xz" or "none"


class ArtifactStore:
    """L3: a folder with ``manifest.json`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def publish(
        cls, root: str | Path, files: dict[str, str | Path], compression: str = "xz"
    ) -> ArtifactStore:
        """Adds (or replaces) artifacts: the deploy step. Returns the store.

        Raises:
            ArtifactError: a missing source file or an unknown compression.
        """
        if compression not in ("xz", "none"):
            raise ArtifactError(f"compression={compression!r} must be 'xz' or 'none'")
        store = cls(root)
        store.root.mkdir(parents=True, exist_ok=True)
        manifest = store._manifest() if (store.root / "manifest.json").exists() else {}
        for name, src in files.items():
            try:
                data = Path(src).read_bytes()
            except OSError as err:
                raise ArtifactError(f"artifact {name}: cannot read {src}: {err.strerror}") from err
            digest = hashlib.sha256(data).hexdigest()
            file = f"{name}-{digest[:12]}" + (".xz" if compression == "xz" else "")
            payload = lzma.compress(data, preset=6) if compression == "xz" else data
            (store.root / file).write_bytes(payload)
            manifest[name] = {
                "file": file,
                "sha256": digest,
                "size_bytes": len(data),
                "compression": compression,
            }
        tmp = store.root / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        tmp.replace(store.root / "manifest.json")  # atomic: readers see old or new, never half
        return store

    def _manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.root / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ArtifactError(f"artifact store {self.root}: no readable manifest.json") from err

    def ref(self, name: str) -> ArtifactRef:
        """The current version of ``name`` (the manifest is re-read: a new deploy is seen)."""
        entry = self._manifest().get(name)
        if entry is None:
            raise ArtifactError(f"artifact {name!r} is not in {self.root}/manifest.json")
        return ArtifactRef(name, **entry)

    def fetch(self, ref: ArtifactRef) -> bytes:
        """The verified content of ``ref``.

        Raises:
            ArtifactError: missing file, broken compression, or a sha256 mismatch.
        """
        try:
            raw = (self.root / ref.file).read_bytes()
            data = lzma.decompress(raw) if ref.compression == "xz" else raw
        except (OSError, lzma.LZMAError) as err:
            raise ArtifactError(f"artifact {ref.name}: cannot read {ref.file}: {err}") from err
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ArtifactError(f"artifact {ref.name}: content does not match its sha256")
        return data


class RedisServer:
    """A node-local redis-server on a unix socket in a private folder (L2's process).

    Args:
        maxmemory_mb: memory for artifacts; least recently used ones are evicted beyond it.
        binary: the redis-server executable.
    """

    def __init__(self, maxmemory_mb: int = 512, binary: str = "redis-server") -> None:
        self.maxmemory_mb, self.binary = maxmemory_mb, binary
        self._dir: tempfile.TemporaryDirectory | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        if self._dir is None:
            raise ArtifactError("redis-server is not started")
        return Path(self._dir.name) / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> str:
        """Starts the server; returns its URL.

        Raises:
            ArtifactError: redis-server missing or not answering within ``timeout_s``.
        """
        if shutil.which(self.binary) is None:
            raise ArtifactError(f"{self.binary} not found (Debian package redis-server)")
        self._dir = tempfile.TemporaryDirectory(prefix="robomr-redis-")
        args = [
            self.binary, "--port", "0", "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
            "--maxmemory", f"{self.maxmemory_mb}mb", "--maxmemory-policy", "allkeys-lru",
            "--dir", self._dir.name, "--loglevel", "warning",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise ArtifactError(f"redis-server exited: {err.strip()[-300:]}")
            with contextlib.suppress(redis.exceptions.ConnectionError, FileNotFoundError):
                if redis.Redis(unix_socket_path=str(self.socket_path)).ping():
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise ArtifactError(f"redis-server did not answer within {timeout_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connect(url: str) -> Any:
    """A Redis client for ``unix:///path`` or ``redis://host:port`` (short timeouts)."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


class ArtifactCache:
    """L1 (this process) over L2 (Redis at ``redis_url``; None: no L2) over L3 (``store``).

    ``stats`` counts hits per level; ``last_level`` says where the last ``get`` was served
    from ("l1", "l2" or "l3").
    """

    def __init__(self, store: ArtifactStore, redis_url: str | None = None) -> None:
        self.store = store
        self._redis = connect(redis_url) if redis_url else None
        self._l1: dict[str, tuple[str, bytes]] = {}
        self._objects: dict[tuple[str, str], Any] = {}
        self.stats = {"l1": 0, "l2": 0, "l3": 0, "l2_errors": 0}
        self.last_level = ""
        self._warned = False

    @staticmethod
    def key(ref: ArtifactRef) -> str:
        return f"{PREFIX}:{ref.name}:{ref.sha256}"

    def get(self, name: str) -> bytes:
        """The current content of artifact ``name`` from the nearest level that has it.

        Raises:
            ArtifactError: unknown or corrupt at L3 (lower levels only hold verified copies).
        """
        ref = self.store.ref(name)
        hit = self._l1.get(name)
        if hit is not None and hit[0] == ref.sha256:
            return self._served("l1", hit[1])
        data = self._l2_get(ref)
        if data is not None:
            self._l1[name] = (ref.sha256, data)
            return self._served("l2", data)
        data = self.store.fetch(ref)
        self._l2_put(ref, data)
        self._l1[name] = (ref.sha256, data)
        return self._served("l3", data)

    def get_object(self, name: str, decode: Any) -> Any:
        """``decode(bytes)`` of the artifact, decoded once per content in this process."""
        data = self.get(name)
        sha = self._l1[name][0]
        obj = self._objects.get((name, sha))
        if obj is None:
            obj = self._objects[(name, sha)] = decode(data)
        return obj

    def path(self, name: str, folder: str | Path) -> Path:
        """The artifact as a file in ``folder`` (node-local; for loaders that need a path),
        written once per content."""
        data = self.get(name)
        sha = self._l1[name][0]
        out = Path(folder) / f"{name}-{sha[:12]}"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(out)
        return out

    def invalidate(self, name: str | None = None) -> int:
        """Drops ``name`` (None: every artifact) from L1 and L2; returns the L2 keys removed."""
        names = [name] if name else list(self._l1)
        for n in names:
            self._l1.pop(n, None)
            for key in [k for k in self._objects if k[0] == n]:
                del self._objects[key]
        if self._redis is None:
            return 0
        pattern = f"{PREFIX}:{name}:*" if name else f"{PREFIX}:*"
        try:
            keys = list(self._redis.scan_iter(match=pattern))
            return int(self._redis.delete(*keys)) if keys else 0
        except _REDIS_ERRORS as err:  # a broken L2 must not stop invalidation
            self._l2_failed(err)
            return 0

    def _served(self, level: str, data: bytes) -> bytes:
        self.stats[level] += 1
        self.last_level = level
        return data

    def _l2_get(self, ref: ArtifactRef) -> bytes | None:
        if self._redis is None:
            return None
        try:
            data = self._redis.get(self.key(ref))
        except _REDIS_ERRORS as err:  # L2 down or full: a miss, L3 answers
            self._l2_failed(err)
            return None
        # a copy that does not match its key (a half-written or tampered value) is a miss
        if data is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
            return None
        return data

    def _l2_put(self, ref: ArtifactRef, data: bytes) -> None:
        if self._redis is None:
            return
        try:
            self._redis.set(self.key(ref), data)
        except _REDIS_ERRORS as err:  # same as a failed read
            self._l2_failed(err)

    def _l2_failed(self, err: Exception) -> None:
        self.stats["l2_errors"] += 1
        if not self._warned:
            _log.warning("node-local artifact cache unavailable (%s); using the store", err)
            self._warned = True
