"""The several-constraint LP oracle against HiGHS: random, tied, degenerate and infeasible instances, 2-3 rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search.lmo import solve_mck_lp
from nas.search.multi_lmo import JointInfeasibleError, solve_multi_lp

REL = 1e-9


def highs(c: np.ndarray, a: np.ndarray, r: np.ndarray):
    """HiGHS on the same LP (test oracle only): its result object (status 0 optimal, 2 infeasible)."""
    from scipy.optimize import linprog

    num_b, num_o = c.shape
    return linprog(c.ravel(), A_ub=a.reshape(a.shape[0], -1), b_ub=r, A_eq=np.kron(np.eye(num_b), np.ones((1, num_o))),
                   b_eq=np.ones(num_b), bounds=(0, None), method="highs",
                   options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})


def _check(c: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
    ref = highs(c, a, r)
    try:
        res = solve_multi_lp(c, a, r)
    except JointInfeasibleError:
        assert ref.status == 2, f"HiGHS found a point ({ref.message})"
        return
    assert ref.status == 0, ref.message
    x = res.x
    assert np.all(x >= 0.0)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    used = (a * x).reshape(a.shape[0], -1).sum(axis=1)
    assert np.all(used <= r + REL * np.maximum(1.0, np.abs(r))), (used, r)
    assert abs(res.objective - ref.fun) <= REL * max(1.0, abs(ref.fun)), (res.objective, ref.fun)
    assert len(res.fractional_blocks) <= a.shape[0]  # a vertex: at most one split block per constraint
    assert all(m >= 0.0 for m in res.multipliers)


@st.composite
def instances(draw):
    num_b = draw(st.integers(1, 8))
    num_o = draw(st.integers(1, 6))
    num_k = draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["float", "int", "mixed-sign", "same-row", "scaled-row"]))
    shape = (num_k, num_b, num_o)
    c = rng.normal(size=(num_b, num_o))
    if kind == "float":
        a = rng.uniform(0.0, 2.0, size=shape)
    elif kind == "int":  # ties everywhere: equal objectives, equal resources, collinear trade-offs
        c = rng.integers(-2, 3, size=(num_b, num_o)).astype(float)
        a = rng.integers(0, 3, size=shape).astype(float)
    elif kind == "mixed-sign":
        a = rng.normal(size=shape)
    elif kind == "same-row":  # two targets with one table: parallel constraints, a degenerate vertex
        a = np.repeat(rng.uniform(0.0, 2.0, size=(1, num_b, num_o)), num_k, axis=0)
    else:  # a second device uniformly slower
        a = rng.uniform(0.0, 2.0, size=(1, num_b, num_o)) * rng.uniform(0.5, 3.0, size=(num_k, 1, 1))
    lo, hi = a.min(axis=2).sum(axis=1), a.max(axis=2).sum(axis=1)
    where = draw(st.sampled_from(["inside", "min", "max", "mixed"]))
    u = np.array([draw(st.floats(0.0, 1.0)) for _ in range(num_k)])
    if where == "min":
        u[:] = 0.0
    elif where == "max":
        u[:] = 1.0
    elif where == "mixed":
        u[0] = 0.0
    return c, a, lo + (hi - lo) * u


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_matches_highs_on_random_instances(inst) -> None:
    _check(*inst)


@pytest.mark.parametrize("num_k", [2, 3])
@pytest.mark.parametrize("seed", range(10))
def test_matches_highs_at_real_size(num_k: int, seed: int) -> None:
    """240 alpha variables (20 blocks x 12 options) and 15 beta variables (5 stages x 3 depths)."""
    rng = np.random.default_rng(seed)
    for shape in ((20, 12), (5, 3)):
        c = rng.normal(size=shape)
        a = rng.uniform(0.05, 2.0, size=(num_k, *shape))
        lo, hi = a.min(axis=2).sum(axis=1), a.max(axis=2).sum(axis=1)
        _check(c, a, lo + (hi - lo) * rng.uniform(0.0, 0.6, size=num_k))


def test_one_row_equals_the_single_constraint_oracle() -> None:
    rng = np.random.default_rng(3)
    c, a = rng.normal(size=(6, 4)), rng.uniform(0.1, 1.0, size=(1, 6, 4))
    r = float(a[0].min(axis=1).sum() + 0.3)
    res = solve_multi_lp(c, a, [r])
    assert res.objective == pytest.approx(solve_mck_lp(c, a[0], r).objective, abs=1e-12)


def test_two_targets_that_disagree_split_two_blocks() -> None:
    # option 0 is fast on target A and slow on B, option 1 the reverse, option 2 (the preferred) slow on both
    c = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    a = np.array([[[1.0, 3.0, 3.0]] * 2, [[3.0, 1.0, 3.0]] * 2])
    res = solve_multi_lp(c, a, [4.5, 4.5])
    ref = highs(c, a, np.array([4.5, 4.5]))
    assert res.objective == pytest.approx(ref.fun, abs=1e-12)
    assert all(v > 0.0 for v in res.multipliers)  # both limits bind


def test_jointly_infeasible_though_each_limit_is_met_alone() -> None:
    # each target's minimum is 2, but the network fast on A is slow on B: together they need more
    a = np.array([[[1.0, 3.0]] * 2, [[3.0, 1.0]] * 2])
    with pytest.raises(JointInfeasibleError, match="all constraints together") as info:
        solve_multi_lp(np.zeros((2, 2)), a, [3.0, 3.0])
    assert info.value.minima == [2.0, 2.0]
    solve_multi_lp(np.zeros((2, 2)), a, [4.0, 4.0])  # the midpoint meets both exactly


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="expected"):
        solve_multi_lp(np.zeros((2, 3)), np.zeros((2, 3, 2)), [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        solve_multi_lp(np.zeros((1, 1)), np.array([[[np.nan]], [[1.0]]]), [1.0, 1.0])
    with pytest.raises(JointInfeasibleError, match="constraint 1"):
        solve_multi_lp(np.zeros((1, 2)), np.array([[[1.0, 2.0]], [[1.0, 2.0]]]), [1.0, 0.5])
