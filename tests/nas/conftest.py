"""Fixtures of the search tests: random latency tables, the HiGHS reference LP, hypothesis strategies."""

from __future__ import annotations

import numpy as np
import pytest

from nas.latency.expected_latency import LatencyModel
from shared.search_space import HARDCORENAS


def highs_mck_objective(c: np.ndarray, a: np.ndarray, r: float) -> float:
    """Reference optimum of ``min c.x, x_b in simplex, a.x <= r`` from HiGHS (test oracle only)."""
    from scipy.optimize import linprog

    num_b, num_k = c.shape
    a_eq = np.kron(np.eye(num_b), np.ones((1, num_k)))
    res = linprog(
        c.ravel(),
        A_ub=a.reshape(1, -1),
        b_ub=[r],
        A_eq=a_eq,
        b_eq=np.ones(num_b),
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0, res.message
    return float(res.fun)


def random_model(rng: np.random.Generator, *, integer: bool = False, shape=None, depths=None) -> LatencyModel:
    """A random positive latency model (default: the real space's shape, 5 x 4 x 12, depths 2-4)."""
    shape = shape or (HARDCORENAS.num_stages, HARDCORENAS.max_depth, HARDCORENAS.num_options)
    depths = depths or tuple(HARDCORENAS.depths)
    if integer:  # many ties and degenerate hulls
        block_ms = rng.integers(1, 4, size=shape).astype(float)
    else:
        block_ms = rng.uniform(0.05, 2.0, size=shape)
    return LatencyModel(block_ms, float(rng.uniform(0.5, 3.0)), depths)


@pytest.fixture(scope="session")
def highs_objective():
    """``highs_objective(c, a, r)``: the HiGHS reference optimum."""
    return highs_mck_objective


@pytest.fixture(scope="session")
def make_model():
    """``make_model(seed, integer=False, shape=None, depths=None)``: a random latency model."""

    def make(seed: int, **kwargs) -> LatencyModel:
        return random_model(np.random.default_rng(seed), **kwargs)

    return make


@pytest.fixture
def model() -> LatencyModel:
    return random_model(np.random.default_rng(1234))
