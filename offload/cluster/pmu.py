"""CPI from hardware counters, as koordlet reads it: perf events on a workload's cgroup.

For each CPU the workload may run on, a group of two counters (cycles leader, instructions)
is opened with ``perf_event_open(attr, pid=<cgroup dir fd>, cpu, -1, PERF_FLAG_PID_CGROUP)``;
the kernel counts only while a task of that cgroup runs on that CPU.
``CPI = sum(delta cycles) / sum(delta instructions)`` between two reads. This needs a PMU
(absent in most VMs: the syscall fails with ENOENT/EOPNOTSUPP) and, on cgroup v1, the
``perf_event`` hierarchy (its directory of the same group path); on v2, the unified directory.

:func:`pmu_supported` says whether counting works here and, if not, why; the agent then uses
the TSC probe (:mod:`offload.cluster.probe`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
from pathlib import Path

PERF_TYPE_HARDWARE = 0
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FORMAT_GROUP = 1 << 3
ATTR_SIZE = 64  # PERF_ATTR_SIZE_VER0: type, size, config, period, sample_type, read_format,
# flags, wakeup, bp_type, config1; the kernel zero-extends the rest
SYSCALL = {"x86_64": 298, "aarch64": 241}
FLAG_DISABLED, FLAG_EXCLUDE_HV = 1 << 0, 1 << 6


class PmuError(OSError):
    """Counting failed (the message names the syscall's error)."""


def _attr(config: int, leader: bool) -> bytes:
    flags = FLAG_EXCLUDE_HV | (FLAG_DISABLED if leader else 0)
    read_format = PERF_FORMAT_GROUP
    # u32 type, u32 size, u64 config, u64 sample_period, u64 sample_type, u64 read_format,
    # u64 flags (bitfield), u32 wakeup_events, u32 bp_type, u64 config1
    return struct.pack(
        "<IIQQQQQIIQ", PERF_TYPE_HARDWARE, ATTR_SIZE, config, 0, 0, read_format, flags, 0, 0, 0
    )


def _perf_event_open(attr: bytes, pid: int, cpu: int, group_fd: int, flags: int) -> int:
    number = SYSCALL.get(platform.machine().lower())
    if number is None:
        raise PmuError(f"perf_event_open: unknown syscall number on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, ATTR_SIZE)
    fd = libc.syscall(number, buf, pid, cpu, group_fd, ctypes.c_ulong(flags))
    if fd < 0:
        err = ctypes.get_errno()
        raise PmuError(err, f"perf_event_open: {os.strerror(err)}")
    return fd


def pmu_supported() -> tuple[bool, str]:
    """(True, "") where cycles and instructions can be counted, else (False, why)."""
    try:
        fd = _perf_event_open(_attr(PERF_COUNT_HW_CPU_CYCLES, True), 0, -1, -1, 0)
    except PmuError as err:
        return False, f"no hardware counters ({err}); CPI comes from the TSC probe"
    os.close(fd)
    return True, ""


class CgroupCpiCounter:
    """Cycles and instructions of one cgroup on the given CPUs.

    Args:
        cgroup_dir: the group's directory in the perf_event v1 hierarchy or in cgroup v2.
        cpus: CPUs to count on (the group's cpuset).

    Raises:
        PmuError: no PMU, no such group, or not permitted.
    """

    def __init__(self, cgroup_dir: Path, cpus: list[int]) -> None:
        self._fds: list[tuple[int, int]] = []
        self._last = (0, 0)
        dir_fd = os.open(cgroup_dir, os.O_RDONLY)
        try:
            for cpu in cpus:
                lead = _perf_event_open(
                    _attr(PERF_COUNT_HW_CPU_CYCLES, True), dir_fd, cpu, -1, PERF_FLAG_PID_CGROUP
                )
                member = _perf_event_open(
                    _attr(PERF_COUNT_HW_INSTRUCTIONS, False),
                    dir_fd,
                    cpu,
                    lead,
                    PERF_FLAG_PID_CGROUP,
                )
                self._fds.append((lead, member))
                _ioctl_enable(lead)
        except PmuError:
            self.close()
            raise
        finally:
            os.close(dir_fd)
        self._last = self._totals()

    def _totals(self) -> tuple[int, int]:
        cycles = instructions = 0
        for lead, _ in self._fds:
            raw = os.read(lead, 24)  # PERF_FORMAT_GROUP: u64 nr, u64 values[nr]
            nr, c, i = struct.unpack("<QQQ", raw[:24])
            if nr == 2:
                cycles, instructions = cycles + c, instructions + i
        return cycles, instructions

    def cpi(self) -> float | None:
        """CPI since the previous call (None when the group retired nothing)."""
        now = self._totals()
        dc, di = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return dc / di if di > 0 else None

    def close(self) -> None:
        for pair in self._fds:
            for fd in pair:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = []


def _ioctl_enable(fd: int) -> None:
    import fcntl

    perf_event_ioc_enable, perf_ioc_flag_group = 0x2400, 1
    fcntl.ioctl(fd, perf_event_ioc_enable, perf_ioc_flag_group)
