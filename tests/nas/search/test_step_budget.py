"""The adaptive step budget: the search's noise estimate recovers a planted noise level, the search runs more steps
than asked only when its gradients are too noisy (and never past its cap or below the limit), and says so."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search import BCFW, BCFWConfig, NetworkScore, SearchSettings, search
from nas.search.driver import step_note
from tests.nas.search.helpers import planted_gradients


def _utility(model, seed: int) -> NetworkScore:
    rng = np.random.default_rng(seed)
    gain = np.log(model.block_ms / model.block_ms.min(axis=-1, keepdims=True)) + 0.5
    return NetworkScore(gain * rng.lognormal(0.0, 0.3, size=gain.shape), rng.normal(0.0, 0.3, model.beta_shape))


def _limit(model, u: float) -> float:
    return model.min_latency_ms() + u * (model.max_latency_ms() - model.min_latency_ms())


@pytest.mark.parametrize("noise", [0.3, 1.0, 3.0])
def test_the_noise_estimate_recovers_a_planted_noise_level(make_model, noise: float) -> None:
    """Each option's estimate is off from its planted utility by about the noise the search estimates for it."""
    model = make_model(11)
    utility = _utility(model, 11)
    opt = BCFW(model, _limit(model, 0.5), seed=2)
    grads = planted_gradients(model, utility, noise, seed=5)
    for _ in range(300):
        g = grads(opt.alpha, opt.beta)
        opt.step(g.alpha, g.beta)
    option, _, estimated, _ = opt._noise_and_signal()
    ran = opt.m_active > 0.2  # blocks that ran often enough to be compared
    actual = ((option - utility.option) ** 2).mean(axis=-1)
    ratio = float(actual[ran].sum() / estimated[ran].sum())
    assert 0.7 < ratio < 1.4, ratio


def test_the_noise_to_signal_ratio_falls_with_the_gradients_averaged(make_model) -> None:
    """Under the running mean the noise variance falls as one over the gradients: four times as many gradients,
    about a quarter of the ratio; without noise it is (up to rounding) zero."""
    model = make_model(12)
    utility = _utility(model, 12)
    ratios = {}
    for noise in (0.0, 2.0):
        opt = BCFW(model, _limit(model, 0.5), seed=3)
        grads = planted_gradients(model, utility, noise, seed=6)
        for k in range(400):
            g = grads(opt.alpha, opt.beta)
            opt.step(g.alpha, g.beta)
            if k + 1 in (100, 400):
                ratios[noise, k + 1] = opt.noise_to_signal()
    assert ratios[0.0, 100] < 1e-20 and ratios[0.0, 400] < 1e-20  # rounding only
    assert 2.5 < ratios[2.0, 100] / ratios[2.0, 400] < 6.0


def test_the_search_extends_its_steps_on_noisy_gradients_only(make_model) -> None:
    model = make_model(13)
    utility = _utility(model, 13)
    limit = _limit(model, 0.4)
    clean = search(model, planted_gradients(model, utility, 0.0, 1), SearchSettings(limit, bcfw_steps=100),
                   progress=False)
    assert len(clean.trajectory) == 100 and not clean.extended_steps
    assert clean.step_budget["reason"] == "asked" and clean.to_json()["step_budget"]["ran"] == 100

    noisy = search(model, planted_gradients(model, utility, 5.0, 1), SearchSettings(limit, bcfw_steps=100),
                   progress=False)
    budget = noisy.step_budget
    assert noisy.extended_steps and 100 < len(noisy.trajectory) == budget["ran"] <= budget["cap"]
    assert budget["cap"] == round(100 * BCFWConfig().step_cap)
    assert budget["noise_to_signal_at_asked"] > budget["noise_target"]
    assert budget["reason"] in ("noise target met", "cap reached")
    assert (budget["reason"] == "noise target met") == (budget["noise_to_signal_at_end"] <= budget["noise_target"])
    assert "100 steps" in step_note(budget) and f"ran {budget['ran']} steps" in step_note(budget)

    # a short (smoke or time-boxed) run keeps its count; a cap of 1 never extends
    short = search(model, planted_gradients(model, utility, 5.0, 1), SearchSettings(limit, bcfw_steps=60),
                   progress=False)
    capped = search(model, planted_gradients(model, utility, 5.0, 1),
                    SearchSettings(limit, bcfw_steps=100, bcfw=BCFWConfig(step_cap=1.0)), progress=False)
    assert len(short.trajectory) == 60 and len(capped.trajectory) == 100
    assert short.step_budget["reason"] == capped.step_budget["reason"] == "asked"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), u=st.floats(0.0, 1.0), noise=st.floats(1.0, 8.0))
def test_every_extended_iterate_and_the_network_are_within_the_limit(make_model, seed: int, u: float,
                                                                     noise: float) -> None:
    model = make_model(seed)
    limit = _limit(model, u)
    result = search(model, planted_gradients(model, _utility(model, seed), noise, seed),
                    SearchSettings(limit, bcfw_steps=100, seed=seed % 1000), progress=False)
    assert len(result.trajectory) <= round(100 * BCFWConfig().step_cap)
    assert all(row.expected_latency_ms <= limit * (1 + 1e-9) for row in result.trajectory)
    assert result.expected_latency_ms <= limit


def test_the_config_rejects_a_cap_below_one_and_a_non_positive_target() -> None:
    with pytest.raises(ValueError, match="step_cap"):
        BCFWConfig(step_cap=0.5)
    with pytest.raises(ValueError, match="noise_target"):
        BCFWConfig(noise_target=0.0)
    with pytest.raises(ValueError, match="extend_from"):
        BCFWConfig(extend_from=-1)
