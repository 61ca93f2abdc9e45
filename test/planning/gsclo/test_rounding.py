"""Repair and local search of planning.gsclo.rounding on random covering knapsacks."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.gsclo.rounding import exchange_search, normalised_cost, ranking_init, repair

PROPERTY = settings(max_examples=80, deadline=None)  # no wall-clock limits (project rule)


@st.composite
def knapsacks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(cost >= 1, weight, need < weight.sum(), a random starting selection), n <= 8."""
    n = draw(st.integers(1, 8))
    cost = np.array(draw(st.lists(st.floats(1.0, 50.0), min_size=n, max_size=n)))
    weight = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    # At most 0.999 of the total: a need of exactly weight.sum() can exceed a sum of the same
    # items taken in another order by an ulp, making the instance infeasible by rounding.
    need = draw(st.floats(0.0, 0.999)) * float(weight.sum())
    start = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return cost, weight, need, start


@PROPERTY
@given(knapsacks())
def test_repair_returns_a_feasible_selection_without_redundant_items(case):
    cost, weight, need, start = case
    sel = repair(start, cost, weight, need)
    covered = float(weight[sel].sum())
    assert covered >= need
    for j in np.flatnonzero(sel):  # dropping any kept item breaks the cover
        assert covered - weight[j] < need


@PROPERTY
@given(knapsacks(), st.sampled_from([0, 10**6]))
def test_exchange_search_stays_feasible_lowers_cost_and_ends_at_a_local_optimum(case, pairs):
    cost, weight, need, start = case
    sel = repair(start, cost, weight, need)
    out = exchange_search(sel, cost, weight, need, max_pair_moves=pairs)
    assert float(weight[out].sum()) >= need
    # Costs are >= 1 and n <= 8: 1e-9 is rounding, not a real increase.
    assert cost[out].sum() <= cost[sel].sum() + 1e-9
    sizes = [(1, 1), (1, 2), (2, 1)] if pairs else [(1, 1)]
    inside, outside = np.flatnonzero(out), np.flatnonzero(~out)
    for drop_n, add_n in sizes:
        for drop in itertools.combinations(inside, drop_n):
            for add in itertools.combinations(outside, add_n):
                new = out.copy()
                new[list(drop)], new[list(add)] = False, True
                if weight[new].sum() >= need:
                    assert cost[new].sum() >= cost[out].sum() - 1e-9


@PROPERTY
@given(knapsacks())
def test_ranking_init_is_the_shortest_cover_by_decreasing_weight(case):
    _, weight, need, _ = case
    x = ranking_init(weight, need) > 0.5
    order = np.argsort(-weight, kind="stable")
    k = int(x.sum())
    assert set(np.flatnonzero(x)) == set(order[:k])
    if need > 0.0:
        assert weight[x].sum() >= need or k == weight.shape[0]
        assert weight[order[: k - 1]].sum() < need


def test_normalised_cost_clips_rounding_negatives_and_scales():
    extra = np.array([-1e-18, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(normalised_cost(extra, "min"), [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(normalised_cost(extra, "mean"), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(normalised_cost(np.zeros(3), "min"), np.zeros(3))
