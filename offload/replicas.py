"""Service replicas as local processes on loopback (``robomr demo --offload``, tests, benches).

Each replica is ``python -m offload.serving --host 127.0.0.1 --port 0 --ready-file F``: it
binds a free port and writes its URL to F; :meth:`LocalReplicas.start` waits for every URL and
then for ``/readyz`` (models loaded). ``kill`` ends replicas abruptly (SIGKILL: a crash),
``stop`` gracefully (SIGTERM: queued requests finish). The cluster layer with a router and
autoscaling builds on this later; this module only starts, watches and ends processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


class ReplicaError(RuntimeError):
    """A replica did not come up (its log tail is in the message)."""


class LocalReplicas:
    """``count`` replica processes (see the module docstring).

    Args:
        count: replicas, >= 1.
        args: options for every replica (``--models``, ``--token-file``, ``--render-map`` ...).
        log_dir: where each replica's output goes (``replica-<i>.log``); None: a temp folder.
    """

    def __init__(self, count: int, args: Sequence[str], log_dir: Path | None = None) -> None:
        if count < 1:
            raise ReplicaError(f"count={count} must be >= 1")
        self.count, self.args = count, list(args)
        self._tmp = tempfile.TemporaryDirectory(prefix="robomr-replicas-")
        self.log_dir = Path(log_dir) if log_dir else Path(self._tmp.name)
        self.procs: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def start(self, timeout_s: float = 180.0) -> list[str]:
        """Starts every replica and waits until each answers /readyz with 200.

        Raises:
            ReplicaError: a replica exited or was not ready within ``timeout_s``.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        ready_files = []
        for i in range(self.count):
            ready = Path(self._tmp.name) / f"ready-{i}.json"
            ready_files.append(ready)
            log = (self.log_dir / f"replica-{i}.log").open("w")
            cmd = [sys.executable, "-m", "offload.serving", "--host", "127.0.0.1", "--port", "0"]
            self.procs.append(
                subprocess.Popen(
                    [*cmd, "--ready-file", str(ready), *self.args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
            log.close()
        end = time.monotonic() + timeout_s
        try:
            self.urls = [self._wait_url(i, f, end) for i, f in enumerate(ready_files)]
            for i, url in enumerate(self.urls):
                self._wait_ready(i, url, end)
        except ReplicaError:
            self.kill()
            raise
        return self.urls

    def _wait_url(self, i: int, ready: Path, end: float) -> str:
        while not ready.exists():
            self._check_alive(i, end)
            time.sleep(0.05)
        return json.loads(ready.read_text())["url"]

    def _wait_ready(self, i: int, url: str, end: float) -> None:
        from offload.client import quiet_httpx

        quiet_httpx()
        with httpx.Client(timeout=httpx.Timeout(2.0)) as http:
            while True:
                try:
                    resp = http.get(url + "/readyz")
                    if resp.status_code == 200:
                        return
                    if resp.json().get("error"):
                        raise ReplicaError(f"replica {i}: {resp.json()['error']}")
                except httpx.HTTPError:
                    pass
                self._check_alive(i, end)
                time.sleep(0.1)

    def _check_alive(self, i: int, end: float) -> None:
        code = self.procs[i].poll()
        if code is not None or time.monotonic() > end:
            why = f"exited with {code}" if code is not None else "not ready in time"
            raise ReplicaError(f"replica {i} {why}:\n{self.log_tail(i)}")

    def log_tail(self, i: int, lines: int = 15) -> str:
        path = self.log_dir / f"replica-{i}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self, index: int | None = None) -> None:
        """SIGKILL one replica (``index``) or all: an abrupt crash, nothing finishes."""
        for i, p in enumerate(self.procs):
            if (index is None or i == index) and p.poll() is None:
                p.kill()
                p.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every replica (graceful: queued work finishes), SIGKILL after ``timeout_s``."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> LocalReplicas:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()
