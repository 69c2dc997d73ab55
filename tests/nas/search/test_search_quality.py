"""What the search returns under known losses: a planted preference is recovered exactly, a loss that prefers small
networks gets a small one, one that prefers large networks gets the largest under the limit."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_the_wide_planted_families_run_and_replay(capsys) -> None:
    """``bench/search_quality.py``'s wide families: a case's name gives back its family, the cases draw every
    axis, another draw gives other families to the same seeds (and the report says which draw ran), and two
    replayed cases (noise-free, and utility against latency) run to their exact optimum."""
    import json
    import sys
    from argparse import Namespace
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from wide_families import parse_family, wide_cases, wide_main

    cases = wide_cases(300)
    assert len({c.name for c, _ in cases}) > 200 and [s for _, s in cases] == list(range(300))
    for axis in ("correlation", "depth", "noise", "steps", "limit", "table"):
        assert len({getattr(c, axis) for c, _ in cases}) >= 2
    assert all(parse_family(c.name) == c for c, _ in cases[:20])
    other = wide_cases(300, seed=7)
    assert [s for _, s in other] == list(range(300)) and [c for c, _ in other] != [c for c, _ in cases]
    with pytest.raises(ValueError, match="family name"):
        parse_family("c1_dflat")
    from nas.search import BCFWConfig

    args = Namespace(replay=["c+1_ddeep_n0_s200_l0.5_t32:3", "c-0.5_dshallow_n0_s200_l0.3_t32:4"], wide=None)
    report = wide_main(args, BCFWConfig(), replace(BCFWConfig(), prior="block"))
    out = capsys.readouterr().out
    assert "python bench/search_quality.py --replay c+1_ddeep_n0_s200_l0.5_t32:3" in out
    assert json.loads(out.strip().splitlines()[-1])["cases"] == report["cases"] == 2
    assert report["worst_regret_pct"] <= 0.5 and report["max_budget_used"] <= 1.0
    assert "draw" not in report  # replayed cases belong to no draw

    drawn = wide_main(Namespace(replay=None, wide=1, draw=7), BCFWConfig())
    assert drawn["draw"] == 7 and f"{other[0][0].name}:0 " in capsys.readouterr().out
