"""CPI without hardware counters: a calibrated pointer-chasing probe timed with the TSC.

koordlet reads a container's cycles and instructions from perf events on its cgroup
(:mod:`offload.cluster.pmu`). VMs without a PMU (these development machines) cannot count
either, so the agent runs a short kernel of *known instruction count* inside the workload's
cgroup and times it with the time-stamp counter:

    CPI_probe = (TSC cycles from the first to the last instruction) / (instructions retired)

The kernel is x86-64 machine code (below, with its listing) placed in an executable page and
called through ctypes, so no compiler is needed and the instruction count is exact:
``18 x iters + 13`` per call (16 dependent loads ``mov rdi, [rdi]``, ``dec``, ``jnz`` per
iteration; 6 instructions before and 7 after the loop). It chases a random cyclic chain of
pointers, one per 64-byte line, over ``working_set_kib`` (default 1 MiB, half a core's L2 here):
each load waits for the previous one, so the probe's time is the memory latency it sees.

Because the TSC counts wall time, CPI_probe rises with everything that slows the workload's
core: cache and memory-bandwidth contention (as the PMU's CPI would) *and* time-sharing with a
co-runner on the same core, which hardware CPI does not see (a descheduled task retires nothing
and counts no cycles). On these 2-vCPU VMs time-sharing is the interference that matters: a
co-runner on the same core inflates the probe about 2.8x, a cache or memory hog on the other core
about 7% (docs/cluster.md).

*One burst* runs ``warmup_calls`` untimed calls (the chain back into the caches after the
probe slept) and then ``chunks`` timed calls back to back (16 calls: about 3 ms on an idle
core). It must be that long to see time-sharing at all: a task that wakes from sleep runs
first on CFS (its sleeper credit is a few ms), so a 0.7 ms burst finishes before a same-core
hog gets the cpu back and measures 1.0x next to it (measured: 1.04x vs 2.4x for 3 ms bursts).
*One interval's CPI* is an aggregate of the bursts spread over the interval
(:func:`aggregate_cpi`; the agent's default: the **trimmed mean** of 10 bursts per second). A
burst that a time slice of other work lands in takes several times longer, so the per-burst
CPIs have a long right tail; their ratio of sums (the mean) over a few bursts swings with where
the slices fell, the median of a bimodal sample flips between its modes, and the trimmed mean
(20% off each end) keeps the share of slow bursts while dropping the extremes.
``python -m offload.cluster.probe`` prints the repeatability of each (coefficient of variation
over intervals on this machine).

*Calibration*: the reference CPI is the minimum over ``calibration_bursts`` bursts, i.e. the
chase on an uncontended core; ``inflation = CPI / reference``.

Run inside a cgroup as a worker: ``python -m offload.cluster.probe --serve`` answers one JSON line
per ``measure`` / ``calibrate`` line on stdin (:class:`ProbeWorker`).

Raises:
    ProbeError: not x86-64, no executable memory, or a bad setting.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LOOP_BODY = "488b3f" * 16  # loop: mov rdi, [rdi]   x 16 dependent loads
# x86-64 System V: rdi = first pointer, rsi = iterations (> 0), rdx = where to store the last
# pointer; returns the TSC cycles between the two rdtsc.
_KERNEL = (
    "4989d1"  # mov r9, rdx          (rdtsc clobbers rdx)
    "0faee8"  # lfence               (earlier instructions done before reading the TSC)
    "0f31"  # rdtsc
    "48c1e220"  # shl rdx, 32
    "4809d0"  # or rax, rdx
    "4989c0" + LOOP_BODY + "48ffce"  # mov r8, rax          (start)  # dec rsi
    "75cb"  # jnz loop             (-53 bytes)
    "0faee8"  # lfence
    "0f31"  # rdtsc
    "48c1e220"  # shl rdx, 32
    "4809d0"  # or rax, rdx
    "4c29c0"  # sub rax, r8          (cycles)
    "498939"  # mov [r9], rdi        (keep the chase observable)
    "c3"  # ret
)
LOADS_PER_ITER = 16
INSTRUCTIONS_PER_ITER = LOADS_PER_ITER + 2
FIXED_INSTRUCTIONS = 13
LINE_BYTES = 64


class ProbeError(RuntimeError):
    """The probe cannot run here or was misconfigured (the message says which)."""


@dataclass(frozen=True)
class ProbeConfig:
    """Probe settings.

    Attributes:
        working_set_kib: the pointer chain's footprint (KiB), 64..262144.
        iters: loop iterations per call (16 loads each), 1..10^7.
        chunks: timed calls per burst (the burst is timed as a whole), 1..10^4.
        warmup_calls: untimed calls before them (the chain back in the caches), 0..100.
        calibration_bursts: bursts whose minimum CPI is the reference, 1..1000.
        seed: seed of the chain's order.
    """

    working_set_kib: int = 1024
    iters: int = 2000
    chunks: int = 16
    warmup_calls: int = 1
    calibration_bursts: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("working_set_kib", 64, 262144),
            ("iters", 1, 10**7),
            ("chunks", 1, 10**4),
            ("warmup_calls", 0, 100),
            ("calibration_bursts", 1, 1000),
        ):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ProbeError(f"{name}={v} must be in [{lo}, {hi}]")

    @property
    def instructions_per_burst(self) -> int:
        return self.chunks * (INSTRUCTIONS_PER_ITER * self.iters + FIXED_INSTRUCTIONS)


@dataclass(frozen=True)
class ProbeSample:
    """One burst: ``cpi`` = cycles / instructions; ``inflation`` = cpi / reference (1.0 before
    calibration)."""

    cpi: float
    cycles: int
    instructions: int
    wall_s: float
    inflation: float


def tsc_probe_supported() -> tuple[bool, str]:
    """(True, "") where the machine-code kernel runs, else (False, why)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return False, f"the TSC probe is x86-64 machine code; this machine is {machine}"
    try:
        m = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        m.close()
    except (OSError, AttributeError) as err:
        return False, f"no executable memory for the probe kernel: {err}"
    return True, ""


class TscProbe:
    """The kernel, its chain and its calibration (see the module docstring)."""

    def __init__(self, config: ProbeConfig | None = None) -> None:
        ok, why = tsc_probe_supported()
        if not ok:
            raise ProbeError(why)
        self.config = config or ProbeConfig()
        code = bytes.fromhex(_KERNEL)
        self._page = mmap.mmap(
            -1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        )
        self._page.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        proto = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p)
        self._kernel = proto(addr)
        self._chain = build_chain(self.config.working_set_kib, self.config.seed)  # [N] uint64
        self._cursor = ctypes.c_uint64(self._chain.ctypes.data)
        self.reference_cpi: float | None = None

    def burst(self) -> ProbeSample:
        """Runs ``chunks`` calls back to back, continuing the chase where the last one ended
        (so the whole working set is walked, never a hot prefix of it)."""
        c = self.config
        cycles = 0
        for _ in range(c.warmup_calls):
            self._kernel(self._cursor.value, c.iters, ctypes.addressof(self._cursor))
        start = time.perf_counter()
        for _ in range(c.chunks):
            cycles += self._kernel(self._cursor.value, c.iters, ctypes.addressof(self._cursor))
        wall = time.perf_counter() - start
        instr = c.instructions_per_burst
        cpi = cycles / instr
        ref = self.reference_cpi
        return ProbeSample(cpi, cycles, instr, wall, cpi / ref if ref else 1.0)

    def calibrate(self, bursts: int | None = None) -> float:
        """Sets and returns the reference CPI: the minimum over ``bursts`` bursts."""
        n = bursts or self.config.calibration_bursts
        self.burst()  # warm the chain into the caches
        self.reference_cpi = min(self.burst().cpi for _ in range(n))
        return self.reference_cpi


AGGREGATES = ("median", "trimmed", "mean")
TRIM_FRAC = 0.2


def aggregate_cpi(cpis: list[float] | np.ndarray, how: str = "median") -> float:
    """One interval's CPI from its bursts' CPIs: ``median``; ``trimmed`` (mean of what is left
    after dropping ``TRIM_FRAC`` of the bursts at each end); ``mean`` (ratio of sums: every
    burst retires the same instructions). NaN without bursts.

    Raises:
        ProbeError: an unknown ``how``.
    """
    if how not in AGGREGATES:
        raise ProbeError(f"aggregate={how!r} must be one of {', '.join(AGGREGATES)}")
    x = np.sort(np.asarray(cpis, dtype=float))
    if len(x) == 0:
        return float("nan")
    if how == "median":
        return float(np.median(x))
    if how == "trimmed":
        k = int(len(x) * TRIM_FRAC)
        return float(np.mean(x[k : len(x) - k]))
    return float(np.mean(x))


def repeatability(
    probe: TscProbe, intervals: int, bursts: int, gap_s: float
) -> dict[str, dict[str, float]]:
    """The probe's own noise: ``intervals`` intervals of ``bursts`` bursts ``gap_s`` apart.
    Returns, per aggregate and for single bursts, the median CPI and the coefficient of
    variation (standard deviation / mean) over intervals (over bursts for ``burst``)."""
    per = []
    for _ in range(intervals):
        cpis = []
        for _ in range(bursts):
            cpis.append(probe.burst().cpi)
            time.sleep(gap_s)
        per.append(cpis)
    out = {"burst": _cv([c for cs in per for c in cs])}
    for how in AGGREGATES:
        out[how] = _cv([aggregate_cpi(cs, how) for cs in per])
    return out


def _cv(x: list[float]) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    return {"median_cpi": float(np.median(a)), "cv": float(np.std(a) / np.mean(a)), "n": len(a)}


def build_chain(working_set_kib: int, seed: int) -> np.ndarray:
    """A uint64 buffer [working_set_kib x 128] whose first word of each 64-byte line holds the
    address of the next line of one random cycle through all lines."""
    lines = working_set_kib * 1024 // LINE_BYTES
    words = LINE_BYTES // 8
    buf = np.zeros(lines * words, dtype=np.uint64)
    order = np.random.default_rng(seed).permutation(lines)
    nxt = np.empty(lines, dtype=np.int64)
    nxt[order] = np.roll(order, -1)
    buf[np.arange(lines) * words] = buf.ctypes.data + nxt.astype(np.uint64) * LINE_BYTES
    return buf


class ProbeWorker:
    """A probe process inside a cgroup; ``measure()`` asks it for one burst.

    Args:
        procs_files: ``cgroup.procs`` files it joins before running (the workload's groups).
        config: probe settings.
        log: where its stderr goes.
    """

    def __init__(
        self, procs_files: list[Path], config: ProbeConfig | None = None, log: Path | None = None
    ) -> None:
        self.config = config or ProbeConfig()
        cmd = [sys.executable, "-m", "offload.cluster.spawn"]
        for f in procs_files:
            cmd += ["--cgroup-procs", str(f)]
        cmd += [
            "--",
            sys.executable,
            "-m",
            "offload.cluster.probe",
            "--serve",
            "--config",
            json.dumps(asdict(self.config)),
        ]
        err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
            )
        finally:
            if log:
                err.close()
        self.reference_cpi: float | None = None

    def _ask(self, line: str) -> dict:
        if self.proc.poll() is not None or self.proc.stdin is None or self.proc.stdout is None:
            raise ProbeError(f"probe worker exited with {self.proc.returncode}")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise ProbeError(f"probe worker exited with {self.proc.wait()}")
        reply = json.loads(answer)
        if "error" in reply:
            raise ProbeError(reply["error"])
        return reply

    def calibrate(self, bursts: int | None = None) -> float:
        self.reference_cpi = float(self._ask(f"calibrate {bursts or 0}")["reference_cpi"])
        return self.reference_cpi

    def measure(self) -> ProbeSample:
        return ProbeSample(**self._ask("measure"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


def serve(config: ProbeConfig) -> int:
    """The worker loop: one JSON answer per command line (``measure``, ``calibrate N``)."""
    try:
        probe = TscProbe(config)
    except ProbeError as err:
        print(json.dumps({"error": str(err)}), flush=True)
        return 2
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "calibrate":
            n = int(rest[0]) if rest and int(rest[0]) > 0 else None
            print(json.dumps({"reference_cpi": probe.calibrate(n)}), flush=True)
        elif cmd == "measure":
            print(json.dumps(asdict(probe.burst())), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m offload.cluster.probe", description=__doc__)
    p.add_argument("--serve", action="store_true", help="answer commands on stdin")
    p.add_argument("--config", default="{}", help="ProbeConfig fields as JSON")
    p.add_argument("--bursts", type=int, default=20, help="without --serve: bursts per interval")
    p.add_argument(
        "--intervals", type=int, default=30, help="without --serve: intervals for the CV table"
    )
    p.add_argument("--interval", type=float, default=1.0, help="interval length (s)")
    p.add_argument("--cpu", type=int, help="pin the probe to this cpu (default: unpinned)")
    args = p.parse_args(argv)
    try:
        config = ProbeConfig(**json.loads(args.config))
    except (ProbeError, TypeError, ValueError) as err:
        print(f"probe: error: {err}", file=sys.stderr)
        return 2
    if args.serve:
        return serve(config)
    if args.bursts < 1 or args.intervals < 2 or not args.interval > 0:
        print("probe: error: need --bursts >= 1, --intervals >= 2, --interval > 0", file=sys.stderr)
        return 2
    if args.cpu is not None:
        try:
            os.sched_setaffinity(0, {args.cpu})
        except OSError as err:
            print(f"probe: error: cannot pin to cpu {args.cpu}: {err}", file=sys.stderr)
            return 2
    probe = TscProbe(config)
    print(f"reference CPI {probe.calibrate():.2f}; one burst {probe.burst().wall_s * 1e3:.2f} ms")
    print(
        f"repeatability over {args.intervals} intervals of {args.bursts} bursts in "
        f"{args.interval:g} s (CV = standard deviation / mean; run it on an idle machine):"
    )
    rep = repeatability(probe, args.intervals, args.bursts, args.interval / args.bursts)
    for how, r in rep.items():
        what = "single bursts" if how == "burst" else f"interval {how}"
        print(f"  {what:<18} median CPI {r['median_cpi']:7.2f}  CV {r['cv']:.3f}  (n {r['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
