"""What the search returns under known losses: a planted preference is recovered exactly, a loss that prefers small
networks gets a small one, one that prefers large networks gets the largest under the limit."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search import NetworkScore, SearchSettings, best_network, search
from tests.nas.search.helpers import planted_gradients


def _limit(model, u: float) -> float:
    return model.min_latency_ms() + u * (model.max_latency_ms() - model.min_latency_ms())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), u=st.floats(0.05, 0.95))
def test_a_planted_preference_is_recovered(make_model, seed: int, u: float) -> None:
    """Utilities that grow with latency (with diminishing returns and random exceptions), small gradient noise:
    the search returns the exact optimum of the utility under the limit."""
    model = make_model(seed)
    rng = np.random.default_rng(seed)
    gain = np.log(model.block_ms / model.block_ms.min(axis=-1, keepdims=True)) + 0.5
    utility = NetworkScore(gain * rng.lognormal(0.0, 0.3, size=gain.shape), rng.normal(0.0, 0.3, model.beta_shape))
    limit = _limit(model, u)
    noise = 0.05 * float(np.std(utility.option))
    result = search(model, planted_gradients(model, utility, noise, seed), SearchSettings(limit, seed=seed),
                    progress=False)
    optimum = best_network(utility, [(model, limit)])
    assert result.expected_latency_ms <= limit
    found, best = utility.of(result.choice, model.depths), utility.of(optimum, model.depths)
    worst = utility.of(model.lightest_choice(), model.depths)
    assert (best - found) <= 0.005 * (best - worst)


def test_a_loss_that_prefers_small_networks_gets_the_lightest(make_model) -> None:
    model = make_model(4)
    for u in (0.2, 0.6, 1.0):
        limit = _limit(model, u)
        prefers_small = NetworkScore(-model.block_ms, np.zeros(model.beta_shape))
        grads = planted_gradients(model, prefers_small, 0.3 * float(np.std(model.block_ms)), 0)
        result = search(model, grads, SearchSettings(limit, bcfw_steps=100), progress=False)
        assert result.choice == model.lightest_choice()
        assert result.expected_latency_ms == model.min_latency_ms() < 0.8 * limit


def test_a_loss_that_prefers_large_networks_gets_a_large_one(make_model) -> None:
    model = make_model(6)
    rng = np.random.default_rng(0)
    noisy_latency = model.block_ms * rng.lognormal(0.0, 0.1, model.alpha_shape)
    prefers_large = NetworkScore(noisy_latency, np.zeros(model.beta_shape))
    for u in (0.1, 0.5, 0.9):
        limit = _limit(model, u)
        grads = planted_gradients(model, prefers_large, 0.3 * float(np.std(model.block_ms)), 1)
        result = search(model, grads, SearchSettings(limit, bcfw_steps=100), progress=False)
        best = best_network(prefers_large, [(model, limit)])
        assert result.expected_latency_ms <= limit
        assert result.expected_latency_ms >= 0.98 * model.choice_latency_ms(best)
        assert prefers_large.of(result.choice, model.depths) >= 0.99 * prefers_large.of(best, model.depths)
