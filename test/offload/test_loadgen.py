"""Arrival processes: the Azure trace parser and scaling, Poisson and bursty on/off rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offload.loadgen import (
    LoadgenError,
    bursty_arrivals,
    poisson_arrivals,
    read_azure_trace,
    trace_arrivals,
)

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def _trace(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_trace_is_read_with_sub_microsecond_timestamps(tmp_path: Path) -> None:
    path = _trace(
        tmp_path,
        [
            "2023-11-16 18:15:46.6805900,374,44",
            "2023-11-16 18:15:50.9951690,396,109",
            "2023-11-16 18:15:46.1000000,10,1",  # out of order: sorted
        ],
    )
    t, context, generated = read_azure_trace(path)
    # float64 seconds since the epoch keep ~0.1 us: the differences are exact to 1e-6 s
    np.testing.assert_allclose(t, [0.0, 0.58059, 4.895169], atol=1e-6)
    assert context.tolist() == [10, 374, 396] and generated.tolist() == [1, 44, 109]


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        (["2023-11-16 18:15:46.68,374,44", "garbage,1,2"], ":3: malformed"),
        (["2023-11-16 18:15:46.68,x,44", "2023-11-16 18:15:47.68,1,2"], ":2: malformed"),
        (["2023-11-16 18:15:46.68,1,2"], "at least two"),
    ],
)
def test_bad_trace_rows_are_named_by_line(tmp_path: Path, rows, fragment) -> None:
    with pytest.raises(LoadgenError, match=fragment):
        read_azure_trace(_trace(tmp_path, rows))


def test_missing_columns_and_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LoadgenError, match="columns"):
        read_azure_trace(tmp_path / "x.csv")
    with pytest.raises(LoadgenError, match="cannot read"):
        read_azure_trace(tmp_path / "missing.csv")


def test_trace_is_scaled_to_the_target_rate_keeping_its_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gaps = rng.exponential(0.5, 400)  # 2 requests/s with its own burstiness
    stamps = np.cumsum(gaps)
    rows = [f"2023-11-16 18:{int(s // 60):02d}:{s % 60:09.6f},{i},1" for i, s in enumerate(stamps)]
    path = _trace(tmp_path, rows)
    arr = trace_arrivals(path, rate_hz=20.0, duration_s=15.0)
    assert np.all(np.diff(arr.times_s) >= 0) and arr.times_s[-1] < 15.0
    assert abs(len(arr) / 15.0 - 20.0) < 4.0  # 15 s of a 400-request trace: rate within 20%
    # one factor for every gap: (trace rate) / (target rate); the timestamps carry 1 us
    ratio = np.diff(arr.times_s[:50]) / np.diff(stamps[:50])
    big = np.diff(stamps[:50]) > 0.01  # 1 us rounding is negligible on these gaps
    own_rate = len(stamps) / (stamps[-1] - stamps[0])
    np.testing.assert_allclose(ratio[big], own_rate / 20.0, rtol=1e-3)
    assert np.all((arr.size_rank >= 0) & (arr.size_rank < 1))


def test_trace_window_longer_than_the_trace_is_refused(tmp_path: Path) -> None:
    path = _trace(tmp_path, ["2023-11-16 18:15:46.0,1,1", "2023-11-16 18:15:47.0,1,1"])
    with pytest.raises(LoadgenError, match="exceeds"):
        trace_arrivals(path, rate_hz=1.0, duration_s=100.0)


@pytest.mark.parametrize("rate", [2.0, 10.0, 40.0])
def test_poisson_rate(rate: float) -> None:
    arr = poisson_arrivals(rate, 200.0, seed=1)
    # the count is Poisson(rate x 200): within 4 standard deviations
    assert abs(len(arr) - rate * 200) < 4 * np.sqrt(rate * 200)


def test_bursty_arrivals_keep_the_mean_and_burst_in_the_on_phase() -> None:
    arr = bursty_arrivals(4.0, 400.0, seed=2, on_s=5.0, off_s=15.0, burst_factor=3.0)
    assert abs(len(arr) - 1600) < 4 * np.sqrt(1600)
    phase = arr.times_s % 20.0
    on_rate = np.sum(phase < 5.0) / (400.0 * 0.25)
    off_rate = np.sum(phase >= 5.0) / (400.0 * 0.75)
    assert abs(on_rate - 12.0) < 1.5 and abs(off_rate - 4.0 / 3.0) < 0.5


@pytest.mark.parametrize(
    "call",
    [
        lambda: poisson_arrivals(0.0, 10.0, 0),
        lambda: poisson_arrivals(1.0, -1.0, 0),
        lambda: bursty_arrivals(1.0, 10.0, 0, burst_factor=0.5),
    ],
)
def test_bad_settings_are_refused(call) -> None:
    with pytest.raises(LoadgenError):
        call()
