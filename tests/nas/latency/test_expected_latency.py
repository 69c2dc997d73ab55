"""Expected latency: brute-force enumeration on a small space, table sums for one-hot networks, coefficients."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.latency.expected_latency import LatencyModel, LatencyModelError
from shared.search_space import HARDCORENAS, ArchChoice


def _brute_force(model: LatencyModel, alpha: np.ndarray, beta: np.ndarray) -> float:
    """Sum over every network of (probability x table latency): options and depths independent."""
    num_s, _, num_o = model.alpha_shape
    total = 0.0
    per_stage = []
    for s in range(num_s):
        stage_terms = []  # (probability, latency) of every (depth, options) of this stage
        for d_idx, depth in enumerate(model.depths):
            for opts in itertools.product(range(num_o), repeat=depth):
                prob = beta[s, d_idx] * math.prod(alpha[s, j, i] for j, i in enumerate(opts))
                lat = sum(model.block_ms[s, j, i] for j, i in enumerate(opts))
                stage_terms.append((prob, lat))
        per_stage.append(stage_terms)
    for combo in itertools.product(*per_stage):
        prob = math.prod(p for p, _ in combo)
        total += prob * (model.fixed_ms + sum(lat for _, lat in combo))
    return total


def _random_simplex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.exponential(size=shape)
    x[rng.random(shape) < 0.3] = 0.0
    x[..., 0] += 1e-3
    return x / x.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("depths", [(2, 3), (1, 2, 3), (3,)])
@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_enumeration(seed: int, depths: tuple[int, ...]) -> None:
    rng = np.random.default_rng(seed)
    model = LatencyModel(rng.uniform(0.1, 2.0, size=(2, 3, 3)), 0.7, depths)
    alpha = _random_simplex(rng, model.alpha_shape)
    beta = _random_simplex(rng, model.beta_shape)
    assert model.expected_latency_ms(alpha, beta) == pytest.approx(_brute_force(model, alpha, beta), rel=1e-12)


def _random_choice(rng: np.random.Generator) -> ArchChoice:
    stages = []
    for _ in range(HARDCORENAS.num_stages):
        depth = int(rng.choice(HARDCORENAS.depths))
        stages.append(tuple(int(i) for i in rng.integers(0, HARDCORENAS.num_options, size=depth)))
    return ArchChoice(tuple(stages))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_one_hot_equals_table_sum(make_model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = make_model(seed)
    choice = _random_choice(rng)
    alpha, beta = model.one_hot(choice)
    table_sum = model.fixed_ms + sum(
        model.block_ms[s, j, i] for s, stage in enumerate(choice.options) for j, i in enumerate(stage)
    )
    assert model.expected_latency_ms(alpha, beta) == pytest.approx(table_sum, rel=1e-12)
    assert model.choice_latency_ms(choice) == pytest.approx(table_sum, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_block_coefficients_reproduce_expected_latency(make_model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = make_model(seed)
    alpha = _random_simplex(rng, model.alpha_shape)
    beta = _random_simplex(rng, model.beta_shape)
    e = model.expected_latency_ms(alpha, beta)
    assert model.fixed_ms + float((model.alpha_coefficients(beta) * alpha).sum()) == pytest.approx(e, rel=1e-12)
    coef, const = model.beta_coefficients(alpha)
    assert model.fixed_ms + const + float((coef * beta).sum()) == pytest.approx(e, rel=1e-12)
    # the matrix form: E = fixed + p.alpha + alpha^T Q beta
    a, b = alpha.reshape(-1), beta.reshape(-1)
    assert model.fixed_ms + model.p @ a + a @ model.Q @ b == pytest.approx(e, rel=1e-12)


def test_min_and_max_latency_are_attained_by_vertices(make_model) -> None:
    model = make_model(7)
    rng = np.random.default_rng(7)
    samples = [
        model.expected_latency_ms(_random_simplex(rng, model.alpha_shape), _random_simplex(rng, model.beta_shape))
        for _ in range(200)
    ]
    assert model.min_latency_ms() <= min(samples)
    assert model.max_latency_ms() >= max(samples)
    lightest = model.lightest_choice()
    assert lightest.depths == (2,) * 5  # positive table: the shallowest depth is cheapest
    assert model.min_latency_ms() == pytest.approx(
        model.fixed_ms + sum(model.block_ms[s, :2].min(axis=1).sum() for s in range(5)), rel=1e-12
    )


def test_rejects_bad_tables() -> None:
    with pytest.raises(LatencyModelError, match="non-finite"):
        LatencyModel(np.full((5, 4, 12), np.nan), 1.0)
    with pytest.raises(LatencyModelError, match="depths"):
        LatencyModel(np.ones((5, 4, 12)), 1.0, (2, 3))
    with pytest.raises(LatencyModelError, match="shape"):
        LatencyModel.from_space(HARDCORENAS, np.ones((5, 4, 11)), 1.0)
