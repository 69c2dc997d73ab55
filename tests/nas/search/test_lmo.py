"""The exact multiple-choice-knapsack LP oracle against HiGHS, on random, tied and degenerate instances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search.lmo import InfeasibleError, minimum_resource, solve_mck_lp

REL = 1e-9


def _check(highs, c: np.ndarray, a: np.ndarray, r: float) -> None:
    res = solve_mck_lp(c, a, r)
    x = res.x
    assert x.shape == c.shape
    assert np.all(x >= 0.0)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    used = float((a * x).sum())
    assert used <= r + REL * max(1.0, abs(r)), (used, r)
    fractional_rows = int(np.sum(np.sum(x > 0.0, axis=1) > 1))
    assert fractional_rows <= 1
    assert (res.fractional_block is None) == (fractional_rows == 0)
    ref = highs(c, a, r)
    assert abs(res.objective - ref) <= REL * max(1.0, abs(ref)), (res.objective, ref)
    assert abs(res.objective - float((c * x).sum())) <= 1e-12 * max(1.0, abs(ref))


@st.composite
def instances(draw):
    num_b = draw(st.integers(1, 8))
    num_k = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["float", "int", "mixed-sign", "zero-a"]))
    rng = np.random.default_rng(seed)
    if kind == "float":
        c = rng.normal(size=(num_b, num_k))
        a = rng.uniform(0.0, 2.0, size=(num_b, num_k))
    elif kind == "int":  # ties everywhere: equal objectives, equal resources, collinear hulls
        c = rng.integers(-2, 3, size=(num_b, num_k)).astype(float)
        a = rng.integers(0, 3, size=(num_b, num_k)).astype(float)
    elif kind == "mixed-sign":
        c = rng.normal(size=(num_b, num_k))
        a = rng.normal(size=(num_b, num_k))
    else:
        c = rng.normal(size=(num_b, num_k))
        a = rng.uniform(0.0, 1.0, size=(num_b, num_k))
        a[rng.random(num_b) < 0.5] = 0.0
    lo = minimum_resource(a)
    hi = float(a.max(axis=1).sum())
    where = draw(st.sampled_from(["min", "max", "inside", "above", "unconstrained"]))
    if where == "min":
        r = lo
    elif where == "max":
        r = hi
    elif where == "above":
        r = hi + 1.0
    elif where == "unconstrained":
        start = np.argmin(np.where(c == c.min(axis=1, keepdims=True), a, np.inf), axis=1)
        r = math.fsum(a[np.arange(num_b), start].tolist())  # exactly tight at the unconstrained minimiser
    else:
        r = lo + (hi - lo) * draw(st.floats(0.0, 1.0))
    return c, a, r


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_matches_highs_on_random_instances(highs_objective, inst) -> None:
    _check(highs_objective, *inst)


@pytest.mark.parametrize("seed", range(20))
def test_matches_highs_at_real_size(highs_objective, seed: int) -> None:
    """240 alpha variables (20 blocks x 12) and 15 beta variables (5 stages x 3)."""
    rng = np.random.default_rng(seed)
    for shape in ((20, 12), (5, 3)):
        c = rng.normal(size=shape)
        a = rng.uniform(0.05, 2.0, size=shape)
        lo, hi = minimum_resource(a), float(a.max(axis=1).sum())
        _check(highs_objective, c, a, lo + (hi - lo) * rng.uniform(0.0, 0.6))


def test_all_ties(highs_objective) -> None:
    c = np.zeros((4, 3))
    a = np.ones((4, 3))
    res = solve_mck_lp(c, a, 4.0)
    assert res.objective == 0.0
    _check(highs_objective, c, a, 4.0)


def test_single_fractional_block_makes_constraint_tight() -> None:
    c = np.array([[0.0, 1.0], [0.0, 3.0]])
    a = np.array([[2.0, 1.0], [2.0, 1.0]])
    res = solve_mck_lp(c, a, 2.5)
    # cheapest trade is block 0 (rate 1), fully taken; block 1 at rate 3 taken halfway
    np.testing.assert_allclose(res.x, [[0.0, 1.0], [0.5, 0.5]])
    assert res.fractional_block == 1
    assert res.multiplier == pytest.approx(3.0)
    assert res.objective == pytest.approx(2.5)


def test_dominated_options_are_skipped() -> None:
    # option 2 is above the hull between options 0 and 1 (never worth taking)
    c = np.array([[0.0, 2.0, 1.9]])
    a = np.array([[2.0, 0.0, 1.0]])
    res = solve_mck_lp(c, a, 1.0)
    np.testing.assert_allclose(res.x, [[0.5, 0.5, 0.0]])
    assert res.objective == pytest.approx(1.0)


def test_infeasible_states_the_minimum() -> None:
    a = np.array([[1.0, 2.0], [0.5, 3.0]])
    with pytest.raises(InfeasibleError, match="1.5") as info:
        solve_mck_lp(np.zeros_like(a), a, 1.4)
    assert info.value.minimum == pytest.approx(1.5)
    solve_mck_lp(np.zeros_like(a), a, 1.5)  # exactly the minimum is feasible


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        solve_mck_lp(np.zeros((2, 3)), np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="finite"):
        solve_mck_lp(np.array([[np.nan]]), np.array([[1.0]]), 1.0)
