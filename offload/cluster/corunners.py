"""Best-effort co-runners: start, throttle, pause, resume, stop (and read their throughput).

A :class:`CoRunner` is one ``offload.cluster.corunner`` process (see that module for the
kinds) in its own cgroup under the cluster's best-effort group. The controls act on the cgroup
where the machine has the role and fall back where a fallback exists:

| control | with cgroups | without |
| --- | --- | --- |
| pin to cpus | ``cpuset.cpus`` | ``sched_setaffinity`` |
| throttle to C cpus | cfs quota / ``cpu.max`` | unavailable: :class:`CgroupUnavailable` |
| pause / resume | freezer (``freezer.state`` / ``cgroup.freeze``) | SIGSTOP / SIGCONT |
| stop | SIGTERM, SIGKILL after 2 s | same |

Throughput is the co-runner's own count of finished work units (a shared counter file), so it
is exact whatever throttles it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from offload.cluster.cgroups import Cgroup, CgroupError, CgroupUnavailable
from offload.cluster.corunner import KINDS, CoRunnerError, ProgressFile
from offload.cluster.spawn import popen

log = logging.getLogger(__name__)

STATES = ("running", "paused", "stopped", "evicted")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class CoRunnerSpec:
    """One co-runner.

    Attributes:
        name: unique in the cluster ([a-z0-9-], <= 40 characters).
        kind: cpu, membw, cache or io.
        cpus: cpus to pin to; empty: wherever the best-effort group may run.
        duty: share of each 100 ms it works, (0, 1].
        working_set_mib: its working set (MiB), None for the kind's default.
        seed: seed of its random data.
    """

    name: str
    kind: str
    cpus: tuple[int, ...] = ()
    duty: float = 1.0
    working_set_mib: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CoRunnerError(f"kind={self.kind!r} must be one of {', '.join(KINDS)}")
        if not (self.name and len(self.name) <= 40 and all(c in NAME_CHARS for c in self.name)):
            raise CoRunnerError(f"name={self.name!r} must be 1-40 of [a-z0-9-]")
        if not 0 < self.duty <= 1:
            raise CoRunnerError(f"duty={self.duty} must be in (0, 1]")
        if any(c < 0 for c in self.cpus):
            raise CoRunnerError(f"cpus={self.cpus} must be >= 0")


class CoRunner:
    """A running co-runner (see the module docstring).

    Args:
        spec: what to run.
        cgroup: its group (created by the caller), or None on a machine without cgroups.
        work_dir: where its counter file (and the io kind's ring file) go.
    """

    def __init__(self, spec: CoRunnerSpec, cgroup: Cgroup | None, work_dir: Path) -> None:
        self.spec, self.cgroup, self.work_dir = spec, cgroup, Path(work_dir)
        self.proc: subprocess.Popen | None = None
        self.state = "stopped"
        self.limit_cores: float | None = None
        self._progress: ProgressFile | None = None
        self._final_units = 0
        self.started_at = 0.0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout_s: float = 20.0) -> None:
        """Starts the process and waits until it has created its counter file.

        Raises:
            CoRunnerError: it exited or did not start within ``timeout_s``.
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        progress = self.work_dir / f"{self.spec.name}.progress"
        progress.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "offload.cluster.corunner",
            "--kind",
            self.spec.kind,
            "--progress",
            str(progress),
            "--duty",
            str(self.spec.duty),
            "--seed",
            str(self.spec.seed),
            "--dir",
            str(self.work_dir),
        ]
        if self.spec.working_set_mib:
            argv += ["--working-set-mib", str(self.spec.working_set_mib)]
        procs = self.cgroup.procs_files() if self.cgroup else []
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.proc = popen(argv, procs, self.work_dir / f"{self.spec.name}.log", env)
        end = time.monotonic() + timeout_s
        while not progress.exists() or progress.stat().st_size < 16:
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise CoRunnerError(
                    f"co-runner {self.spec.name} did not start: see "
                    f"{self.work_dir / (self.spec.name + '.log')}"
                )
            time.sleep(0.02)
        self._progress = ProgressFile(progress)
        self.state, self.started_at = "running", time.monotonic()
        if self.spec.cpus and self.cgroup is None:
            os.sched_setaffinity(self.proc.pid, self.spec.cpus)

    def units(self) -> int:
        """Work units finished so far (after a stop or an eviction: until then)."""
        return self._progress.read()[0] if self._progress else self._final_units

    def throttle(self, cores: float | None) -> None:
        """Caps its CPU (None lifts the cap).

        Raises:
            CgroupUnavailable: no cpu controller (the reason says why).
        """
        if self.cgroup is None:
            raise CgroupUnavailable(
                f"throttling {self.spec.name}: this cluster runs without "
                "cgroups (see `robomr cluster status`)"
            )
        self.cgroup.set_cpu_limit(cores)
        self.limit_cores = cores

    def pause(self) -> None:
        if self._stopping:  # a pause racing a stop would freeze a process with SIGKILL pending
            return
        self._freeze(True)
        self.state = "paused"

    def resume(self) -> None:
        self._freeze(False)
        self.state = "running"

    def _freeze(self, frozen: bool) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.cgroup is not None and self.cgroup.support.has("freeze"):
            self.cgroup.freeze(frozen)
        else:
            os.kill(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self, evicted: bool = False, timeout_s: float = 2.0) -> None:
        """Ends the process (SIGTERM, SIGKILL after ``timeout_s``); a frozen one is thawed
        first so that it can act on the signal."""
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            killed, end = False, time.monotonic() + timeout_s
            # A frozen task acts on no signal, SIGKILL included: thaw on every round, since an
            # agent may have frozen it again between our thaw and the signal.
            for _ in range(int(30.0 / 0.25) + int(timeout_s / 0.25)):
                with contextlib.suppress(Exception):
                    self._freeze(False)
                try:
                    self.proc.wait(0.25)
                    break
                except subprocess.TimeoutExpired:
                    if not killed and time.monotonic() > end:
                        self.proc.kill()
                        killed = True
            else:
                log.error("co-runner %s (pid %s) did not exit", self.spec.name, self.proc.pid)
        self._stopping = False
        if self._progress is not None:
            self._final_units = self._progress.read()[0]
            self._progress.close()
            self._progress = None
        self.state = "evicted" if evicted else "stopped"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def observed(self) -> tuple[str, float | None]:
        """(state, cpu limit) as the kernel has them: the agent's executor changes the cgroup
        from another process, so the cgroup, not this object, is the truth."""
        state, limit = self.state, self.limit_cores
        if state in ("running", "paused") and not self.alive():
            return "stopped", limit
        if self.cgroup is not None and state in ("running", "paused"):
            with contextlib.suppress(CgroupError):
                state = "paused" if self.cgroup.frozen() else "running"
            with contextlib.suppress(CgroupError):
                limit = self.cgroup.cpu_limit()
        return state, limit

    def describe(self) -> dict:
        """Its state for ``robomr cluster status`` and the agent."""
        state, limit = self.observed()
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "pid": self.pid,
            "state": state,
            "cpus": list(self.spec.cpus),
            "duty": self.spec.duty,
            "limit_cores": limit,
            "units": self.units(),
            "cgroup": self.cgroup.rel if self.cgroup else None,
        }
