"""The batched lattice recursions against brute force, and FMM's file formats."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mapmatch import fmm_io
from mapmatch.lattice import posteriors, viterbi


def _lattice(seed: int, B: int, N: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    em = rng.normal(size=(B, N, K))
    tr = rng.normal(size=(B, N - 1, K, K))
    em[rng.random(em.shape) < 0.2] = -np.inf  # invalid candidates
    em[:, :, 0] = np.maximum(em[:, :, 0], -5.0)  # every point keeps one candidate
    tr[rng.random(tr.shape) < 0.2] = -np.inf  # pairs with no route
    return em, tr


def _score(em, tr, b, path) -> float:
    s = sum(em[b, i, k] for i, k in enumerate(path))
    return s + sum(tr[b, i, path[i], path[i + 1]] for i in range(len(path) - 1))


@given(st.integers(0, 100_000), st.integers(1, 3), st.integers(2, 5), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_viterbi_finds_the_best_path_of_every_trajectory(seed: int, B: int, N: int, K: int) -> None:
    em, tr = _lattice(seed, B, N, K)
    path, brk = viterbi(em, tr)
    for b in range(B):
        if brk[b].any():
            continue  # pieces are decoded separately; the unbroken case is the contract here
        best = max(_score(em, tr, b, p) for p in itertools.product(range(K), repeat=N))
        # Same float64 additions in another order: equal to 1e-9.
        assert np.isclose(_score(em, tr, b, path[b]), best, atol=1e-9)


@given(st.integers(0, 100_000), st.integers(2, 4), st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_posteriors_are_the_brute_force_marginals(seed: int, N: int, K: int) -> None:
    em, tr = _lattice(seed, 1, N, K)
    _, brk = viterbi(em, tr)
    if brk.any():
        return
    paths = list(itertools.product(range(K), repeat=N))
    w = np.array([np.exp(_score(em, tr, 0, p)) for p in paths])
    marg = np.zeros((N, K))
    for p, wi in zip(paths, w, strict=True):
        for i, k in enumerate(p):
            marg[i, k] += wi
    got = posteriors(em, tr, brk)[0]
    # Log-sum-exp vs direct sums of exponentials: agree to 1e-9 relative.
    assert np.allclose(got, marg / w.sum(), atol=1e-9)


def test_a_break_restarts_decoding_from_the_next_emissions() -> None:
    em = np.log(np.array([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]]))
    tr = np.zeros((1, 2, 2, 2))
    tr[0, 0] = -np.inf  # no route from point 0 to point 1
    path, brk = viterbi(em, tr)
    assert brk.tolist() == [[True, False]] and path.tolist() == [[0, 1, 0]]


@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=50, deadline=None)
def test_point_csv_groups_consecutive_rows_by_id(tmp_path_factory, rows) -> None:
    path = Path(tmp_path_factory.mktemp("gps")) / "gps.csv"
    path.write_text("id;x;y;timestamp\n" + "".join(
        f"{i};{x!r};{y!r};{k}\n" for k, (i, x, y) in enumerate(rows)))  # fmt: skip
    got = fmm_io.read_point_csv(path)
    runs = [list(g) for _, g in itertools.groupby(rows, key=lambda r: r[0])]
    assert [t.traj_id for t in got] == [r[0][0] for r in runs]
    for t, run in zip(got, runs, strict=True):
        assert np.array_equal(t.xy, np.array([[x, y] for _, x, y in run]))
        assert not t.error and t.t_s is not None and np.all(np.diff(t.t_s) == 1)


def test_output_field_parsing_is_fmms() -> None:
    assert fmm_io.parse_fields(None) == ("cpath", "mgeom")
    assert fmm_io.parse_fields("mgeom,opath") == ("opath", "mgeom")
    assert fmm_io.parse_fields("all") == fmm_io.FIELD_ORDER
