"""Replica cold start with and without the three-level artifact cache (SealOS+, arXiv 2505.23258).

A replica is ``offload.serving`` serving the detector, its weights taken from the artifact
cache (``offload.cluster.artifacts``). Cold start = from the moment the cluster asks for a
replica to its first ``/readyz`` 200 (models loaded, port bound). Three ways to start one:

- ``no_cache``: a fresh Python process that fetches the weights from L3 (the xz store:
  decompress, verify sha256) into a fresh node-local folder, imports the serving stack, loads
  the model and binds;
- ``l2``: a fresh process whose weights come from L2 (the node-local redis-server), the L1
  copy being empty in a new process;
- ``cache``: L1 as well: a warm template process per node (libraries imported, weights read
  from L2 into its memory and written node-local once) forks each new replica, which inherits
  all of it copy-on-write and only loads the model and binds (the zygote pattern; what the
  warm pools of serverless platforms do). The template is started once per node, ahead of
  any scale-up, so its own start is not part of a replica's cold start.

The ``template`` and ``replica`` entry points (``python -m offload.cluster.autoscaling.
coldstart template|replica ...``) are the processes; :func:`measure` times all three ways.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np

SERVE_ARGS = ("--host", "127.0.0.1", "--port", "0", "--no-auth", "--models", "detector",
              "--no-brownout", "--threads", "1", "--policy", "none")  # fmt: skip
WEIGHTS = Path(__file__).resolve().parents[3] / "models" / "detector.pt"


class ColdStartError(RuntimeError):
    """A replica or template that did not come up (the message says which and why)."""


def _serve(weights: Path, ready_file: str, extra: list[str]) -> int:
    from offload.serving.cli import add_arguments, serve_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        [*SERVE_ARGS, *extra, "--detector-model", str(weights), "--ready-file", ready_file]
    )
    return serve_from_args(args)


def _weights(store: str, redis_url: str | None, workdir: str) -> Path:
    from offload.cluster.artifacts import ArtifactCache, ArtifactStore

    return ArtifactCache(ArtifactStore(store), redis_url).path("detector", workdir)


def replica_main(store: str, redis_url: str | None, workdir: str, ready_file: str) -> int:
    """A fresh replica process: weights through the cache levels given, then serve."""
    return _serve(_weights(store, redis_url, workdir), ready_file, [])


def template_main(store: str, redis_url: str | None, workdir: str) -> int:
    """The warm template: import, fetch, then fork one replica per stdin line ``READY LOG``;
    answers each with the child's pid on stdout."""
    import fastapi  # noqa: F401 - imported here so every fork inherits it
    import torch
    import uvicorn  # noqa: F401

    import offload.serving.app
    import offload.serving.models.detector
    import offload.serving.server  # noqa: F401

    torch.set_num_threads(1)  # before any op: no thread pool exists when forking
    weights = _weights(store, redis_url, workdir)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        ready_file, log = line.split()
        pid = os.fork()
        if pid == 0:  # the replica
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the template's command pipe is not ours
            code = 1
            try:
                code = _serve(weights, ready_file, [])
            finally:
                os._exit(code)
        print(pid, flush=True)
    return 0


def wait_ready(ready: Path, alive: Callable[[], bool], timeout_s: float) -> str:
    """The replica's URL once its ready file exists and ``/readyz`` answers 200."""
    end = time.monotonic() + timeout_s
    while not ready.exists() or not ready.read_text().strip():
        if not alive() or time.monotonic() > end:
            raise ColdStartError(f"replica for {ready.name} exited or did not bind in time")
        time.sleep(0.02)
    url = json.loads(ready.read_text())["url"]
    with httpx.Client(timeout=httpx.Timeout(2.0)) as http:
        while True:
            try:
                if http.get(url + "/readyz").status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if not alive() or time.monotonic() > end:
                raise ColdStartError(f"replica at {url} not ready in time")
            time.sleep(0.02)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _end(pid: int) -> None:
    """SIGTERM (graceful), then SIGKILL after 10 s."""
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not _pid_alive(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass  # already gone


class Template:
    """A running template process (see the module docstring)."""

    def __init__(self, store: Path, redis_url: str | None, workdir: Path, log: Path) -> None:
        cmd = [sys.executable, "-m", __name__, "template", "--store", str(store)]
        cmd += ["--workdir", str(workdir)] + (["--redis", redis_url] if redis_url else [])
        self._log: IO = log.open("w")
        self._forked: list[int] = []  # replicas forked from it, ended by close()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        if self.proc.stdout is None or self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise ColdStartError(f"template did not start (log: {log})")

    def fork(self, ready: Path, log: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{ready} {log}\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        self._forked.append(pid)
        return pid

    def close(self) -> None:
        """Ends the replicas it forked that are still running (an owner that failed before
        ending them must not leave them serving: once the template exits they would be
        orphans nobody tracks), then the template."""
        for pid in self._forked:
            if _pid_alive(pid):
                _end(pid)
        self._forked.clear()
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def start_fresh(store: Path, redis_url: str | None, workdir: Path, ready: Path, log: Path):
    """A fresh replica process (``no_cache`` / ``l2``); returns the Popen."""
    cmd = [sys.executable, "-m", __name__, "replica", "--store", str(store)]
    cmd += ["--workdir", str(workdir), "--ready-file", str(ready)]
    cmd += ["--redis", redis_url] if redis_url else []
    with log.open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def measure(
    repeats: int = 3,
    weights: Path = WEIGHTS,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Cold start (s) of ``repeats`` replicas started each way (interleaved, so load drifts on
    a shared machine hit every way alike): per-way samples, medians, and the ratio."""
    from offload.client import quiet_httpx
    from offload.cluster.artifacts import ArtifactStore, RedisServer

    if repeats < 1:
        raise ColdStartError(f"repeats={repeats} must be >= 1")
    quiet_httpx()  # one line per readiness poll would bury the progress
    if not weights.is_file():
        raise ColdStartError(f"no detector weights at {weights}")
    samples: dict[str, list[float]] = {"no_cache": [], "l2": [], "cache": []}
    with tempfile.TemporaryDirectory(prefix="robomr-coldstart-") as tmp, RedisServer() as rs:
        root = Path(tmp)
        store = root / "store"
        ArtifactStore.publish(store, {"detector": weights})
        template = Template(store, rs.url, root / "node", root / "template.log")
        try:
            for k in range(repeats):
                for way in samples:
                    ready, log = root / f"{way}-{k}.json", root / f"{way}-{k}.log"
                    t0 = time.perf_counter()
                    if way == "cache":
                        pid = template.fork(ready, log)
                        wait_ready(ready, lambda p=pid: _pid_alive(p), timeout_s)
                    else:
                        url = rs.url if way == "l2" else None
                        proc = start_fresh(store, url, root / f"node-{way}-{k}", ready, log)
                        pid = proc.pid
                        wait_ready(ready, lambda p=proc: p.poll() is None, timeout_s)
                    samples[way].append(time.perf_counter() - t0)
                    _end(pid)
                    if way != "cache":
                        proc.wait()
                    if progress:
                        progress(f"cold start {way} #{k + 1}: {samples[way][-1]:.2f} s")
        finally:
            template.close()
    med = {w: float(np.median(v)) for w, v in samples.items()}
    return {
        "cache": med["cache"],
        "no_cache": med["no_cache"],
        "l2_only": med["l2"],
        "samples_s": samples,
        "reduction": 1.0 - med["cache"] / med["no_cache"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m offload.cluster.autoscaling.coldstart")
    p.add_argument("role", choices=("template", "replica"))
    p.add_argument("--store", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--redis", default=None)
    p.add_argument("--ready-file", default="")
    a = p.parse_args(argv)
    if a.role == "template":
        return template_main(a.store, a.redis, a.workdir)
    return replica_main(a.store, a.redis, a.workdir, a.ready_file)


if __name__ == "__main__":
    sys.exit(main())
