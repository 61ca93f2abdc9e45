"""The calibrated TSC probe: its chain, its instruction count, CPI rising under a co-runner."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from offload.cluster.cgroups import Cgroup
from offload.cluster.corunners import CoRunner, CoRunnerSpec
from offload.cluster.pmu import pmu_supported
from offload.cluster.probe import (
    AGGREGATES,
    FIXED_INSTRUCTIONS,
    INSTRUCTIONS_PER_ITER,
    LINE_BYTES,
    ProbeConfig,
    ProbeError,
    ProbeWorker,
    TscProbe,
    aggregate_cpi,
    build_chain,
    repeatability,
    tsc_probe_supported,
)

SUPPORTED, WHY = tsc_probe_supported()
needs_tsc = pytest.mark.skipif(not SUPPORTED, reason=WHY or "TSC probe supported")


@pytest.mark.parametrize(("kib", "seed"), [(64, 0), (256, 3)])
def test_the_chain_is_one_cycle_through_every_cache_line(kib: int, seed: int) -> None:
    chain = build_chain(kib, seed)
    base, words = chain.ctypes.data, LINE_BYTES // 8
    lines = kib * 1024 // LINE_BYTES
    seen, i = set(), 0
    for _ in range(lines):
        seen.add(i)
        i = (int(chain[i * words]) - base) // LINE_BYTES
    assert i == 0 and len(seen) == lines


@pytest.mark.parametrize(
    ("field", "value"), [("working_set_kib", 1), ("iters", 0), ("chunks", 0), ("iters", 10**8)]
)
def test_out_of_range_settings_name_the_field(field: str, value: int) -> None:
    with pytest.raises(ProbeError, match=field):
        ProbeConfig(**{field: value})


@needs_tsc
def test_a_burst_counts_exactly_the_kernels_instructions() -> None:
    config = ProbeConfig(working_set_kib=64, iters=100, chunks=3, calibration_bursts=3)
    probe = TscProbe(config)
    s = probe.burst()
    assert s.instructions == 3 * (INSTRUCTIONS_PER_ITER * 100 + FIXED_INSTRUCTIONS)
    # 16 dependent loads per 18 instructions: even an L1 hit takes >= 4 cycles per load, so
    # CPI is above 16 x 4 / 18 = 3.5 on any x86-64 core; wall-clock agrees with the TSC
    assert s.cpi > 3.0 and s.cycles > 0 and s.wall_s > 0
    ref = probe.calibrate()
    assert 3.0 < ref <= min(probe.burst().cpi, s.cpi) * 1.5


def test_without_a_pmu_the_reason_is_given() -> None:
    ok, why = pmu_supported()
    assert ok or "TSC probe" in why


@needs_tsc
def test_probe_cpi_rises_under_a_same_core_corunner(
    need, support, tree: str, tmp_path: Path
) -> None:
    """A CPU-bound co-runner pinned to the probe's core time-shares it: on a quiet 2-vCPU VM
    the burst takes about twice as long (design.md: about 2.8x with a continuous probe).

    The test's groups get the largest CPU weight so that other load on the machine (other jobs
    on shared CI cores) does not drown the effect; the co-runner is frozen and thawed in turn
    (ABAB) and the medians compared. A ratio above 1.3 is asserted: far above the probe's
    burst-to-burst spread on an uncontended core (a few %), and below the 2x of fair sharing.
    """
    need("cpu", "weight", "cpuset", "freeze")
    top = Cgroup(support, tree).create()
    top.set_cpu_weight(262144)
    cpu = [max(0, len(Cgroup(support, tree).cpuset()) - 1)]
    ls = Cgroup(support, f"{tree}/ls/probe").create()
    be = Cgroup(support, f"{tree}/be/hog").create()
    for g in (ls, be):
        g.set_cpuset(cpu)
    hog = CoRunner(CoRunnerSpec("hog", "cpu"), be, tmp_path)
    worker = ProbeWorker(ls.procs_files(), ProbeConfig(chunks=24))
    try:
        hog.start()
        worker.calibrate(5)
        alone, shared = [], []
        for _ in range(3):
            hog.pause()
            alone += [worker.measure().cpi for _ in range(6)]
            hog.resume()
            shared += [worker.measure().cpi for _ in range(6)]
        ratio = statistics.median(shared) / statistics.median(alone)
        assert ratio > 1.3, f"alone {np.round(alone, 1)} shared {np.round(shared, 1)}"
        assert worker.proc.pid in ls.pids()  # the launcher exec()s: the same pid
    finally:
        worker.close()
        hog.stop()


# -- one interval's CPI from many short bursts ---------------------------------------------------
@pytest.mark.parametrize(
    ("how", "cpis", "expected"),
    [
        # a burst that a time slice fell into (40) moves the mean, not the median
        ("median", [10, 11, 12, 10, 40], 11.0),
        ("mean", [10, 11, 12, 10, 40], 16.6),
        # 20% off each end of 5 bursts: one each side, the mean of the middle three
        ("trimmed", [10, 11, 12, 10, 40], 11.0),
        ("trimmed", [10, 12, 14, 16, 18, 20, 22, 24, 26, 100], (14 + 16 + 18 + 20 + 22 + 24) / 6),
        ("median", [7.0], 7.0),
    ],
)
def test_an_interval_aggregates_its_bursts(how: str, cpis: list, expected: float) -> None:
    assert aggregate_cpi(cpis, how) == pytest.approx(expected)


def test_no_bursts_give_nan_and_an_unknown_aggregate_is_refused() -> None:
    assert np.isnan(aggregate_cpi([], "median"))
    with pytest.raises(ProbeError, match="aggregate"):
        aggregate_cpi([1.0], "max")


@needs_tsc
def test_repeatability_reports_a_cv_per_aggregate() -> None:
    probe = TscProbe(ProbeConfig(working_set_kib=64, iters=50, chunks=2, calibration_bursts=2))
    probe.calibrate()
    rep = repeatability(probe, intervals=3, bursts=4, gap_s=0.0)
    assert set(rep) == {"burst", *AGGREGATES}
    assert rep["burst"]["n"] == 12 and rep["median"]["n"] == 3
    assert all(r["cv"] >= 0 and r["median_cpi"] > 3.0 for r in rep.values())


def test_probe_bursts_are_stratified_and_never_in_step_with_a_period() -> None:
    """One burst per equal slot at a random point (in its first 90%); the gaps vary, so that
    bursts cannot all meet the same phase of a co-runner's 100 ms duty cycle."""
    import numpy as np

    from offload.cluster.agent import burst_offsets

    rng = np.random.default_rng(0)
    a, b = burst_offsets(rng, 10, 1.0), burst_offsets(rng, 10, 1.0)
    slots = np.arange(10) * 0.1
    for x in (a, b):
        assert np.all(x >= slots) and np.all(x < slots + 0.09 + 1e-12)
    assert not np.allclose(a, b)
    phase = np.mod(np.concatenate([a, b]), 0.1)  # where in a 100 ms period each one falls
    assert phase.max() - phase.min() > 0.05
