"""Control groups for the local cluster: one per workload, v1 or v2, with clear limits.

A workload (a serving replica, a best-effort co-runner, a probe) lives in one group of a tree
``robomr-<cluster>/...`` that this module creates in every hierarchy it needs:

| role | cgroup v1 | cgroup v2 | used for |
| --- | --- | --- | --- |
| cpu | ``cpu.cfs_quota_us`` / ``cfs_period_us`` | ``cpu.max`` | suppress, throttling |
| weight | ``cpu.shares`` (2..262144) | ``cpu.weight`` (1..10000) | LS vs BE priority |
| usage | ``cpuacct.usage`` (ns) | ``cpu.stat`` ``usage_usec`` | metrics, suppress |
| (throttling) | ``cpu.stat`` ``nr_throttled`` | ``cpu.stat`` | metrics |
| cpuset | ``cpuset.cpus`` (+ ``cpuset.mems``) | ``cpuset.cpus`` | pinning, placement |
| freeze | ``freezer.state`` | ``cgroup.freeze`` | pausing a co-runner |
| pressure | (none) | ``cpu.pressure`` | per-workload PSI |

On a hybrid machine (v1 controllers plus an empty v2 hierarchy at ``/sys/fs/cgroup/unified``,
as on the development VMs) the v2 hierarchy still gives per-group pressure and freezing, so the
group is mirrored there too. What the machine lacks is reported, never silently skipped:
:func:`detect` returns a :class:`CgroupSupport` with a one-line reason per missing role, and an
operation on a missing role raises :class:`CgroupUnavailable` with that reason (the executor logs
it and goes on). The memory controller is left alone: processes stay in the memory group they
were started in (the machine's own accounting may depend on it).

Raises:
    CgroupError: a write the kernel refused (bad value, vanished group).
    CgroupUnavailable: the role is missing on this machine (subclass of CgroupError).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("cpu", "weight", "usage", "cpuset", "freeze", "pressure")
V1_CONTROLLER = {"cpu": "cpu", "weight": "cpu", "usage": "cpuacct", "cpuset": "cpuset"}
V1_CONTROLLER["freeze"] = "freezer"
V2_CONTROLLER = {"cpu": "cpu", "weight": "cpu", "cpuset": "cpuset"}  # others are core files
CFS_PERIOD_US = 100_000  # the kernel's default period; Koordinator writes quotas against it
MIN_QUOTA_US = 1000  # the kernel rejects a cfs quota below 1 ms
DEFAULT_CPU_SHARES = 1024  # a new group's cpu.shares: the LS side's weight, BE without CPU QoS


class CgroupError(RuntimeError):
    """A cgroup operation failed (the message names the file and the value)."""


class CgroupUnavailable(CgroupError):
    """The machine has no usable controller for this role (the message says why)."""


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine offers: a directory per hierarchy and a reason per missing role.

    Attributes:
        version: "v1" (controllers on v1 hierarchies), "v2" (unified only) or "none".
        v1: controller name -> mount point of its v1 hierarchy (writable ones only).
        v2: mount point of the unified hierarchy, or None.
        v2_controllers: controllers the unified root offers (``cgroup.controllers``).
        missing: role -> why it is unavailable.
    """

    version: str
    v1: dict[str, Path] = field(default_factory=dict)
    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    missing: dict[str, str] = field(default_factory=dict)

    def has(self, role: str) -> bool:
        return role not in self.missing

    def summary(self) -> str:
        """One line per role: available (where) or missing (why)."""
        lines = [f"cgroups: {self.version}"]
        for role in ROLES:
            lines.append(
                f"  {role}: "
                + (f"missing ({self.missing[role]})" if role in self.missing else "available")
            )
        return "\n".join(lines)


def _mounts(mounts_file: Path, under: Path | None) -> tuple[dict[str, Path], Path | None]:
    v1: dict[str, Path] = {}
    v2 = None
    with contextlib.suppress(OSError):
        for line in mounts_file.read_text().splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            where, fstype, opts = Path(parts[1]), parts[2], set(parts[3].split(","))
            if under is not None and not where.is_relative_to(under):
                continue
            if fstype == "cgroup2":
                v2 = v2 or where
            elif fstype == "cgroup":
                for ctrl in ("cpu", "cpuacct", "cpuset", "freezer"):
                    if ctrl in opts:
                        v1.setdefault(ctrl, where)
    return v1, v2


def detect(
    mounts_file: Path = Path("/proc/self/mounts"), under: Path | None = None
) -> CgroupSupport:
    """The cgroup roles this process can use (reads the mount table, checks write access).

    Args:
        mounts_file: the mount table.
        under: only hierarchies mounted below this path count (the node agent's view of the
            host's cgroups, mounted at e.g. /host/sys/fs/cgroup, beside its own).
    """
    v1_all, v2 = _mounts(mounts_file, under)
    writable = {c: p for c, p in v1_all.items() if os.access(p, os.W_OK)}
    v2_ok = v2 is not None and os.access(v2, os.W_OK)
    v2_ctrls: frozenset[str] = frozenset()
    if v2 is not None:
        with contextlib.suppress(OSError):
            v2_ctrls = frozenset((v2 / "cgroup.controllers").read_text().split())
    missing: dict[str, str] = {}
    for role in ROLES:
        ctrl = V1_CONTROLLER.get(role)
        if ctrl and ctrl in writable:
            continue
        if v2_ok and (role not in V2_CONTROLLER or V2_CONTROLLER[role] in v2_ctrls):
            continue
        missing[role] = _why_missing(role, ctrl, v1_all, writable, v2, v2_ok, v2_ctrls)
    version = "v1" if writable else ("v2" if v2_ok else "none")
    return CgroupSupport(version, writable, v2 if v2_ok else None, v2_ctrls, missing)


def _why_missing(
    role: str,
    ctrl: str | None,
    v1_all: dict[str, Path],
    writable: dict[str, Path],
    v2: Path | None,
    v2_ok: bool,
    v2_ctrls: frozenset[str],
) -> str:
    if ctrl in v1_all and ctrl not in writable:
        return f"v1 {ctrl} at {v1_all[ctrl]} is not writable (needs root or a delegated cgroup)"
    if v2 is not None and not v2_ok:
        return f"cgroup v2 at {v2} is not writable (needs root or a delegated cgroup)"
    if v2_ok and role in V2_CONTROLLER:
        want = V2_CONTROLLER[role]
        return (
            f"cgroup v2 at {v2} has no {want} controller (offers: "
            f"{' '.join(sorted(v2_ctrls)) or 'none'}) and no v1 {ctrl or want} is mounted"
        )
    if role == "pressure":
        return "per-group pressure needs cgroup v2 (no unified hierarchy is mounted)"
    return f"no cgroup hierarchy with {ctrl or role} is mounted"


def parse_cpus(text: str) -> list[int]:
    """``"0-2,5"`` -> [0, 1, 2, 5].

    Raises:
        CgroupError: not a cpu list.
    """
    cpus: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise CgroupError(f"cpus={text!r} is not a cpu list like '0-1,3'")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise CgroupError(f"cpus={text!r}: range {part} runs backwards")
        cpus.extend(range(lo, hi + 1))
    return sorted(set(cpus))


def format_cpus(cpus: list[int] | tuple[int, ...]) -> str:
    return ",".join(str(c) for c in sorted(set(cpus)))


class Cgroup:
    """One group, mirrored across the hierarchies of :class:`CgroupSupport` (see module doc).

    Args:
        support: what the machine offers (:func:`detect`).
        rel: path below each hierarchy's root, e.g. ``robomr/c1/be/cpu-0``.
    """

    def __init__(self, support: CgroupSupport, rel: str) -> None:
        self.support, self.rel = support, rel.strip("/")
        self.dirs: dict[str, Path] = {}  # hierarchy key ("cpu", "cpuacct", ..., "v2") -> dir
        for ctrl, root in support.v1.items():
            self.dirs[ctrl] = root / self.rel
        if support.v2 is not None:
            self.dirs["v2"] = support.v2 / self.rel

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self) -> Cgroup:
        """Makes the directories (parents included; cpuset levels inherit cpus and mems)."""
        for key, path in self.dirs.items():
            root = self._root(key)
            for level in [*reversed(path.relative_to(root).parents[:-1]), path.relative_to(root)]:
                d = root / level
                if not d.exists():
                    _mkdir(d)
                if key == "cpuset":
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        if not _read(d / f).strip():
                            _write(d / f, _read(d.parent / f).strip())
                if key == "v2" and d != path:
                    self._enable_v2_controllers(d)
        return self

    def _root(self, key: str) -> Path:
        root = self.support.v2 if key == "v2" else self.support.v1.get(key)
        if root is None:
            raise CgroupUnavailable(f"no {key} hierarchy on this machine")
        return root

    def _enable_v2_controllers(self, d: Path) -> None:
        wanted = {"cpu", "cpuset"} & self.support.v2_controllers
        have = set(_read(d / "cgroup.subtree_control").split())
        for ctrl in sorted(wanted - have):
            with contextlib.suppress(CgroupError):  # a controller the parent lacks: reported
                _write(d / "cgroup.subtree_control", f"+{ctrl}")

    def add_pid(self, pid: int) -> None:
        """Moves a process (all its threads) into the group in every hierarchy."""
        for path in self.dirs.values():
            _write(path / "cgroup.procs", str(pid))

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` file of every hierarchy (a process joins by writing its pid)."""
        return [path / "cgroup.procs" for path in self.dirs.values()]

    def pids(self) -> list[int]:
        for path in self.dirs.values():
            with contextlib.suppress(CgroupError):
                return [int(p) for p in _read(path / "cgroup.procs").split()]
        return []

    def remove(self, timeout_s: float = 2.0) -> None:
        """Removes the directories (deepest first); processes left inside are moved to the
        root first so that an empty group can go. Missing directories are fine."""
        for key, path in self.dirs.items():
            root = self._root(key)
            if not path.exists():
                continue
            for sub in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
                _rmdir_emptying(sub, root, timeout_s)
            _rmdir_emptying(path, root, timeout_s)

    # -- roles ---------------------------------------------------------------------------------
    def _dir(self, role: str) -> Path:
        if role in self.support.missing:
            raise CgroupUnavailable(f"{role} for {self.rel}: {self.support.missing[role]}")
        ctrl = V1_CONTROLLER.get(role)
        if ctrl and ctrl in self.dirs:
            return self.dirs[ctrl]
        return self.dirs["v2"]

    def _is_v2(self, role: str) -> bool:
        return self._dir(role) == self.dirs.get("v2")

    def set_cpu_limit(self, cores: float | None) -> None:
        """Caps the group at ``cores`` CPUs (quota = cores x period); None lifts the cap.

        cgroup v1 refuses (EINVAL) a child quota above its parent's, also when the parent is
        the one being lowered (``tg_cfs_schedulable_down`` in kernel/sched/core.c; v2 takes the
        minimum instead). So on v1 a cap is clamped to the parent's, and children capped above a
        new, lower cap are lowered to it first: the effective caps are what v2 would give.

        Raises:
            CgroupError: cores <= 0.
        """
        d = self._dir("cpu")
        if cores is not None and not cores > 0:
            raise CgroupError(f"cpu limit cores={cores} must be > 0 (or None for no limit)")
        quota = -1 if cores is None else max(MIN_QUOTA_US, round(cores * CFS_PERIOD_US))
        if self._is_v2("cpu"):
            _write(d / "cpu.max", f"{'max' if quota < 0 else quota} {CFS_PERIOD_US}")
            return
        if quota >= 0:
            parent = _v1_quota(d.parent)
            if parent is not None:
                quota = min(quota, parent)
            _v1_lower_children(d, quota)
        _write(d / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(d / "cpu.cfs_quota_us", str(quota))

    def cpu_limit(self) -> float | None:
        """The current cap in CPUs, None when uncapped."""
        d = self._dir("cpu")
        if self._is_v2("cpu"):
            quota, period = _read(d / "cpu.max").split()
            return None if quota == "max" else int(quota) / int(period)
        quota = int(_read(d / "cpu.cfs_quota_us"))
        return None if quota < 0 else quota / int(_read(d / "cpu.cfs_period_us"))

    def cpu_weight(self) -> int:
        """The weight in v1 ``cpu.shares`` units (v2's ``cpu.weight`` mapped back)."""
        d = self._dir("weight")
        if self._is_v2("weight"):
            return 2 + (int(_read(d / "cpu.weight")) - 1) * 262142 // 9999
        return int(_read(d / "cpu.shares"))

    def set_cpu_weight(self, shares: int) -> None:
        """Relative CPU weight in v1 ``cpu.shares`` units (1024 = default), 2..262144; on v2
        mapped as systemd does, weight = 1 + (shares - 2) x 9999 / 262142."""
        if not 2 <= shares <= 262144:
            raise CgroupError(f"cpu shares={shares} must be in [2, 262144]")
        d = self._dir("weight")
        if self._is_v2("weight"):
            _write(d / "cpu.weight", str(1 + (shares - 2) * 9999 // 262142))
        else:
            _write(d / "cpu.shares", str(shares))

    def set_cpuset(self, cpus: list[int] | tuple[int, ...]) -> None:
        """Pins the group to these CPUs (must be within the parent's)."""
        if not cpus:
            raise CgroupError("a cpuset needs at least one cpu")
        d = self._dir("cpuset")
        _write(d / "cpuset.cpus", format_cpus(cpus))

    def cpuset(self) -> list[int]:
        d = self._dir("cpuset")
        f = "cpuset.cpus.effective" if self._is_v2("cpuset") else "cpuset.effective_cpus"
        return parse_cpus(_read(d / f))

    def freeze(self, frozen: bool = True, timeout_s: float = 10.0) -> None:
        """Freezes (or thaws) every process of the group and waits until the kernel says so
        (a task freezes when it next runs: on a loaded machine that can take a while).

        Raises:
            CgroupError: the group did not reach the state within ``timeout_s``.
        """
        d = self._dir("freeze")
        v1 = "freezer" in self.dirs and d == self.dirs["freezer"]
        if v1:
            _write(d / "freezer.state", "FROZEN" if frozen else "THAWED")
        else:
            _write(d / "cgroup.freeze", "1" if frozen else "0")
        end = time.monotonic() + timeout_s
        polls = 0
        while self.frozen() != frozen:
            if time.monotonic() > end:
                raise CgroupError(
                    f"{self.rel} did not {'freeze' if frozen else 'thaw'} within {timeout_s} s"
                )
            time.sleep(0.005)
            polls += 1
            if v1 and frozen and polls % 20 == 0:
                # v1 can stay FREEZING (a task was busy when the freeze was tried): the kernel
                # documents re-writing FROZEN as the retry, and runc (libcontainer/cgroups/fs/
                # freezer.go) also thaws briefly every so often to unstick it.
                if polls % 200 == 0:
                    _write(d / "freezer.state", "THAWED")
                    time.sleep(0.01)
                _write(d / "freezer.state", "FROZEN")

    def frozen(self) -> bool:
        """True once every task is frozen (v1 FROZEN, v2 ``frozen 1`` in cgroup.events);
        False while thawed or still freezing."""
        d = self._dir("freeze")
        if "freezer" in self.dirs and d == self.dirs["freezer"]:
            return _read(d / "freezer.state").strip() == "FROZEN"
        return _stat(d / "cgroup.events").get("frozen", "0").strip() == "1"

    def usage_ns(self) -> int:
        """CPU time used by the group's processes since it was created (ns)."""
        d = self._dir("usage")
        if self._is_v2("usage"):
            return int(_stat(d / "cpu.stat")["usage_usec"]) * 1000
        return int(_read(d / "cpuacct.usage"))

    def throttling(self) -> tuple[int, int, int]:
        """(CFS periods, periods throttled, ns throttled) since creation; zeros without a cpu
        controller."""
        try:
            d = self._dir("cpu")
        except CgroupUnavailable:
            return 0, 0, 0
        s = _stat(d / "cpu.stat")
        periods, throttled = int(s.get("nr_periods", 0)), int(s.get("nr_throttled", 0))
        if self._is_v2("cpu"):
            return periods, throttled, int(s.get("throttled_usec", 0)) * 1000
        return periods, throttled, int(s.get("throttled_time", 0))

    def pressure(self) -> dict[str, float]:
        """The group's CPU pressure: ``some_avg10`` (%) and ``some_total_us`` (cumulative)."""
        return parse_pressure(_read(self._dir("pressure") / "cpu.pressure"))


def parse_pressure(text: str) -> dict[str, float]:
    """A PSI file (``some avg10=1.00 avg60=... total=123``) -> {some_avg10, some_total_us, ...}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, *items = line.split()
        for item in items:
            key, _, value = item.partition("=")
            with contextlib.suppress(ValueError):
                out[f"{kind}_{key if key != 'total' else 'total_us'}"] = float(value)
    return out


def _stat(path: Path) -> dict[str, str]:
    return dict(line.split(None, 1) for line in _read(path).splitlines() if " " in line)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as err:
        raise CgroupError(f"cannot read {path}: {err.strerror or err}") from err


def _v1_quota(d: Path) -> int | None:
    """A v1 group's quota in us per CFS_PERIOD_US (None: uncapped or not a cpu group)."""
    try:
        quota = int(_read(d / "cpu.cfs_quota_us"))
        period = int(_read(d / "cpu.cfs_period_us"))
    except (CgroupError, ValueError):
        return None
    return None if quota < 0 else round(quota * CFS_PERIOD_US / period)


def _v1_lower_children(d: Path, quota: int) -> None:
    """Lowers every descendant capped above ``quota`` to it (deepest first)."""
    for child in sorted(p for p in d.iterdir() if p.is_dir()):
        _v1_lower_children(child, quota)
        q = _v1_quota(child)
        if q is not None and q > quota:
            _write(child / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(child / "cpu.cfs_quota_us", str(quota))


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as err:
        raise CgroupError(f"cannot write {value!r} to {path}: {err.strerror or err}") from err


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise CgroupError(f"cannot create {path}: {err.strerror or err}") from err


def _rmdir_emptying(path: Path, root: Path, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > end:
                raise CgroupError(f"cannot remove {path}: {err.strerror or err}") from err
            with contextlib.suppress(OSError):  # leftovers go to the root group
                if (path / "freezer.state").exists():
                    (path / "freezer.state").write_text("THAWED")
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (root / "cgroup.procs").write_text(pid)
            time.sleep(0.01)
