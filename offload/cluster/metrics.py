"""Multi-dimensional metrics of the node and of each workload (what koordlet's metric advisor
collects, and the features of the CPI predictor).

Node (from /proc): CPU use in cores, overall and per core (``/proc/stat``); PSI CPU/IO/memory
"some" stall share over the interval (``/proc/pressure/*``, where the kernel has PSI); run-queue
length (``procs_running``) and blocked tasks; context switches per second; memory in use.

Workload (a cgroup and its processes): CPU use (cgroup usage), share of CFS periods throttled,
the group's own CPU pressure (cgroup v2 ``cpu.pressure``, where mounted), run-queue wait
(``/proc/<pid>/task/*/schedstat``: time runnable but not running, per second: the average number
of its threads waiting for a CPU), context switches per second, resident memory. Request rate
and latency come from the router, co-runner progress from the co-runner's counter; the agent
adds them.

Every rate is a difference between two :meth:`MetricsSampler` calls; the first call of a name
returns zeros for rates. A value the machine lacks is NaN (the predictor treats it as missing),
never a guess.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from offload.cluster.cgroups import Cgroup, CgroupError, parse_pressure

NAN = float("nan")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class NodeMetrics:
    """The node over the last interval (rates per second, CPU in cores)."""

    t: float
    cores: int
    cpu_used: float
    cpu_per_core: tuple[float, ...]
    psi_cpu: float  # share of time some task stalled on CPU, 0..1 (NaN without PSI)
    psi_io: float
    psi_mem: float
    runq: int  # tasks running or runnable now
    blocked: int  # tasks in uninterruptible sleep now
    ctx_per_s: float
    mem_used_frac: float


@dataclass(frozen=True)
class WorkloadMetrics:
    """One workload (a replica or a co-runner) over the last interval."""

    name: str
    t: float
    cpu_used: float  # cores
    throttled_frac: float  # share of CFS periods throttled, 0..1
    psi_cpu: float  # the group's own CPU stall share, 0..1 (NaN without v2 pressure)
    runq_wait: float  # average threads waiting on a run queue
    ctx_per_s: float
    rss_mib: float
    pids: tuple[int, ...] = field(default=())


class MetricsSampler:
    """Keeps the previous counters and turns them into rates (see the module docstring).

    Args:
        proc: the proc filesystem (a test may point elsewhere).
    """

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self._prev: dict[str, tuple[float, dict[str, float]]] = {}

    def _rates(self, key: str, now: float, counters: dict[str, float]) -> dict[str, float]:
        prev = self._prev.get(key)
        self._prev[key] = (now, counters)
        if prev is None or now <= prev[0]:
            return dict.fromkeys(counters, 0.0)
        dt = now - prev[0]
        return {k: (v - prev[1].get(k, v)) / dt for k, v in counters.items()}

    def node(self) -> NodeMetrics:
        now = time.monotonic()
        stat = _read(self.proc / "stat")
        counters: dict[str, float] = {}
        runq = blocked = 0
        per_core = 0
        for line in stat.splitlines():
            parts = line.split()
            if not parts:
                continue
            if parts[0].startswith("cpu"):
                vals = [int(x) for x in parts[1:]]
                busy = sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle, iowait
                counters[parts[0]] = busy / CLK_TCK
                per_core += parts[0] != "cpu"
            elif parts[0] == "ctxt":
                counters["ctxt"] = float(parts[1])
            elif parts[0] == "procs_running":
                runq = int(parts[1])
            elif parts[0] == "procs_blocked":
                blocked = int(parts[1])
        for res in ("cpu", "io", "memory"):
            text = _read(self.proc / "pressure" / res)
            total = parse_pressure(text).get("some_total_us", NAN) if text else NAN
            counters[f"psi_{res}"] = total / 1e6
        r = self._rates("node", now, counters)
        mem = _meminfo(self.proc / "meminfo")
        total_kib = mem.get("MemTotal", NAN)
        used = 1.0 - mem.get("MemAvailable", NAN) / total_kib if total_kib else NAN
        return NodeMetrics(
            t=now,
            cores=per_core or (os.cpu_count() or 1),
            cpu_used=r.get("cpu", 0.0),
            cpu_per_core=tuple(r.get(f"cpu{i}", 0.0) for i in range(per_core)),
            psi_cpu=r["psi_cpu"],
            psi_io=r["psi_io"],
            psi_mem=r["psi_memory"],
            runq=runq,
            blocked=blocked,
            ctx_per_s=r.get("ctxt", 0.0),
            mem_used_frac=used,
        )

    def workload(self, name: str, cgroup: Cgroup | None, pids: list[int]) -> WorkloadMetrics:
        """A workload's metrics; with a cgroup its processes are the group's (``pids`` is the
        fallback without one)."""
        now = time.monotonic()
        if cgroup is not None:
            with contextlib.suppress(CgroupError):
                pids = cgroup.pids() or pids
        counters: dict[str, float] = {"run": 0.0, "wait": 0.0, "ctx": 0.0}
        rss = 0.0
        for pid in pids:
            for task in _tasks(self.proc, pid):
                sched = _read(task / "schedstat").split()
                if len(sched) >= 2:
                    counters["run"] += int(sched[0]) / 1e9
                    counters["wait"] += int(sched[1]) / 1e9
                counters["ctx"] += _ctx_switches(task / "status")
            statm = _read(self.proc / str(pid) / "statm").split()
            if len(statm) > 1:
                rss += int(statm[1]) * PAGE / 2**20
        counters.update(_cgroup_counters(cgroup))
        r = self._rates(f"w:{name}", now, counters)
        cpu = r["usage"] if "usage" in counters else r["run"]
        psi = r["psi"] if "psi" in counters else NAN
        throttled = (r["nr_throttled"] / r["nr_periods"]) if r.get("nr_periods") else 0.0
        return WorkloadMetrics(
            name,
            now,
            max(cpu, 0.0),
            min(max(throttled, 0.0), 1.0),
            psi,
            max(r["wait"], 0.0),
            max(r["ctx"], 0.0),
            rss,
            tuple(pids),
        )

    def forget(self, name: str) -> None:
        self._prev.pop(f"w:{name}", None)


def _cgroup_counters(cgroup: Cgroup | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if cgroup is None:
        return out
    with contextlib.suppress(CgroupError):
        out["usage"] = cgroup.usage_ns() / 1e9
    with contextlib.suppress(CgroupError):
        out["psi"] = cgroup.pressure().get("some_total_us", NAN) / 1e6
    with contextlib.suppress(CgroupError):
        periods, throttled, _ = cgroup.throttling()
        out["nr_periods"], out["nr_throttled"] = float(periods), float(throttled)
    return {k: v for k, v in out.items() if not math.isnan(v)}


def _tasks(proc: Path, pid: int) -> list[Path]:
    try:
        return list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []


def _ctx_switches(status: Path) -> float:
    n = 0.0
    for line in _read(status).splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            n += float(line.split()[1])
    return n


def _meminfo(path: Path) -> dict[str, float]:
    out = {}
    for line in _read(path).splitlines():
        key, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            out[key] = float(rest.split()[0])
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
