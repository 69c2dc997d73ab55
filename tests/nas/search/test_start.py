"""The maximum-entropy start: feasible, tight when the limit binds, and more even than any other feasible start."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search.start import gibbs_distribution, gibbs_for_latency, max_entropy_start

REL = 1e-9


def network_entropy(model, alpha: np.ndarray, beta: np.ndarray) -> float:
    """Entropy of the distribution over networks: depths, plus the options of the blocks that run."""
    def h(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-300, None)
        return -(p * np.log(p)).sum(-1)

    return float(h(beta).sum() + (model.depth_weights(beta) * h(alpha)).sum())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), integer=st.booleans(),
       u=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)))
def test_start_is_feasible_tight_and_of_maximum_entropy(make_model, seed: int, integer: bool, u: float) -> None:
    model = make_model(seed, integer=integer)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    limit = lo + u * (hi - lo)
    alpha, beta = max_entropy_start(model, limit)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(beta.sum(-1), 1.0, atol=1e-12)
    e = model.expected_latency_ms(alpha, beta)
    assert e <= limit * (1 + REL)
    uniform = gibbs_distribution(model, 0.0)
    if model.expected_latency_ms(*uniform) <= limit:  # the uniform distribution over networks fits: it is the start
        np.testing.assert_allclose(alpha, uniform[0])
        np.testing.assert_allclose(beta, uniform[1])
        return
    assert e == pytest.approx(limit, rel=1e-9, abs=1e-12)  # the limit binds: the start spends all of it
    # no other feasible start is more even: random product distributions pulled onto the limit
    mine = network_entropy(model, alpha, beta)
    rng = np.random.default_rng(seed)
    light = model.one_hot(model.lightest_choice())
    for _ in range(5):
        a = rng.dirichlet(np.ones(model.alpha_shape[-1]), size=model.alpha_shape[:2])
        b = rng.dirichlet(np.ones(len(model.depths)), size=model.beta_shape[0])
        for t in np.linspace(0.0, 1.0, 101):
            mixed = ((1 - t) * a + t * light[0], (1 - t) * b + t * light[1])
            if model.expected_latency_ms(*mixed) <= limit:
                assert network_entropy(model, *mixed) <= mine + 1e-9
                break


def test_uniform_over_networks_when_the_limit_allows_and_lightest_at_the_minimum(make_model) -> None:
    model = make_model(5)
    alpha, beta = max_entropy_start(model, model.max_latency_ms())
    np.testing.assert_allclose(alpha, 1 / 12)
    # uniform over networks: a stage of depth d has 12**d networks
    np.testing.assert_allclose(beta, np.tile([12**2, 12**3, 12**4], (5, 1)) / (12**2 + 12**3 + 12**4))
    a, b = max_entropy_start(model, model.min_latency_ms())
    assert model.expected_latency_ms(a, b) == pytest.approx(model.min_latency_ms(), rel=1e-12)


def test_gibbs_for_latency_reaches_any_mean_latency(make_model) -> None:
    """With a negative multiplier the family reaches the heavy end (the random search's sampler)."""
    model = make_model(7)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    for u in (0.05, 0.5, 0.95):
        target = lo + u * (hi - lo)
        e = model.expected_latency_ms(*gibbs_for_latency(model, target))
        assert e <= target and e == pytest.approx(target, rel=1e-9)
