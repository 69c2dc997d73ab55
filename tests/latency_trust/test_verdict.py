"""The verdict's statistics on simulated measurements with known noise: coverage, the sequential rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latency_server.verdict import device_spread, enough_rounds, prediction_bound


def _simulate(rng: np.random.Generator, *, sd_device: float, sd_ratio: float, rounds: int, history: int,
              future_rounds: int, confidence: float) -> tuple[bool, float]:
    """One verdict on a device whose reference figure is lognormal (sd ``sd_device``) and whose network/reference
    ratio has lognormal round noise (sd ``sd_ratio``); returns whether a later measurement (the median of
    ``future_rounds`` rounds at one device speed) is at or under the bound, and central / bound."""
    ratio, reference = 2.5, 1.3
    past = reference * np.exp(rng.normal(0, sd_device, history))
    ref_rounds = reference * np.exp(rng.normal(0, sd_device, rounds))
    net_rounds = ref_rounds * ratio * np.exp(rng.normal(0, sd_ratio, rounds))
    verdict = prediction_bound(net_rounds, ref_rounds, np.concatenate([past, ref_rounds]), confidence=confidence,
                               future_rounds=future_rounds)
    speed = reference * math.exp(rng.normal(0, sd_device))
    later = float(np.median(speed * ratio * np.exp(rng.normal(0, sd_ratio, future_rounds))))
    return later <= verdict.upper_ms, verdict.central_ms / verdict.upper_ms


@pytest.mark.parametrize(("sd_device", "sd_ratio", "history"), [(0.08, 0.02, 12), (0.03, 0.03, 60), (0.15, 0.05, 6)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_the_bound_covers_a_later_measurement_at_the_stated_rate(sd_device, sd_ratio, history, confidence) -> None:
    rng = np.random.default_rng(12345)
    trials = 3000
    hits = [_simulate(rng, sd_device=sd_device, sd_ratio=sd_ratio, rounds=7, history=history, future_rounds=7,
                      confidence=confidence)[0] for _ in range(trials)]
    coverage = float(np.mean(hits))
    sampling = 3.5 * math.sqrt(confidence * (1 - confidence) / trials)
    assert coverage >= confidence - sampling
    # the margin is what the noise needs, not a blanket one: coverage does not run far above the target
    assert coverage <= confidence + 2 * sampling + 0.02


def test_the_central_figure_is_the_typical_latency_and_the_bound_grows_with_the_noise() -> None:
    rng = np.random.default_rng(7)
    quiet = [_simulate(rng, sd_device=0.02, sd_ratio=0.01, rounds=7, history=30, future_rounds=7,
                       confidence=0.95)[1] for _ in range(200)]
    noisy = [_simulate(rng, sd_device=0.10, sd_ratio=0.01, rounds=7, history=30, future_rounds=7,
                       confidence=0.95)[1] for _ in range(200)]
    assert np.median(quiet) > 0.95 > 0.85 > np.median(noisy)
    ref = np.full(5, 1.0)
    verdict = prediction_bound(2.0 * ref, ref, np.full(40, 1.0), confidence=0.95)
    assert verdict.central_ms == pytest.approx(2.0)
    assert 2.0 < verdict.upper_ms < 2.1  # the noise floor keeps a margin even on identical figures


def test_the_sequential_rule_stops() -> None:
    ref = [1.0] * 40
    # a stable ratio on a device that varies: more rounds cannot tighten the bound, stop at the minimum
    assert not enough_rounds([2.0] * 4, ref[:4], sd_device=0.05, min_rounds=5)
    assert enough_rounds([2.0] * 5, ref[:5], sd_device=0.05, min_rounds=5)
    # a noisy ratio on a quiet device: more rounds until the maximum
    rng = np.random.default_rng(3)
    noisy = list(2.0 * np.exp(rng.normal(0, 0.3, 40)))
    stops = [k for k in range(1, 41) if enough_rounds(noisy[:k], ref[:k], sd_device=0.01, min_rounds=5,
                                                        max_rounds=25)]
    assert stops[0] == 25 and stops == list(range(25, 41))
    # a noisy ratio on a noisy device stops in between
    mid = [k for k in range(1, 41) if enough_rounds(noisy[:k], ref[:k], sd_device=0.3, min_rounds=5, max_rounds=25)]
    assert 5 <= mid[0] < 25


def _simulate_series(rng: np.random.Generator, *, drift: float, jitter: float, sd_ratio: float, series: int,
                     rounds: int = 7, confidence: float = 0.95, with_series: bool = True) -> tuple[bool, float]:
    """A device whose speed has a level that drifts between measurements (sd ``drift``) and jitters between the
    rounds of one (sd ``jitter``): the history holds ``series`` measurements of ``rounds`` reference figures and
    two single figures (a table build's); a later measurement is the median of ``rounds`` rounds at a new level.
    Returns whether it is at or under the bound, and central / bound."""
    ratio, reference = 2.5, 1.3

    def level_and_rounds(n: int) -> np.ndarray:
        return reference * np.exp(rng.normal(0, drift) + rng.normal(0, jitter, n))

    past = [level_and_rounds(rounds) for _ in range(series)] + [level_and_rounds(1) for _ in range(2)]
    ref_rounds = level_and_rounds(rounds)
    net_rounds = ref_rounds * ratio * np.exp(rng.normal(0, sd_ratio, rounds))  # timed back to back: same speed
    history = np.concatenate([*past, ref_rounds])
    labels = [i for i, figures in enumerate([*past, ref_rounds]) for _ in figures]
    verdict = prediction_bound(net_rounds, ref_rounds, history, confidence=confidence, future_rounds=rounds,
                               history_series=labels if with_series else None)
    later = float(np.median(level_and_rounds(rounds) * ratio * np.exp(rng.normal(0, sd_ratio, rounds))))
    return later <= verdict.upper_ms, verdict.central_ms / verdict.upper_ms


@pytest.mark.parametrize(("drift", "jitter", "series"), [(0.03, 0.10, 12), (0.08, 0.02, 6), (0.05, 0.05, 45)])
def test_a_history_in_series_separates_drift_from_jitter_and_still_covers(drift, jitter, series) -> None:
    """A later measurement's median averages the round-to-round jitter but not the drift: the bound covers at the
    stated rate (within sampling error), and where jitter dominates it is tighter than counting the history's
    whole spread as drift."""
    rng = np.random.default_rng(2024)
    trials = 2000
    runs = [_simulate_series(rng, drift=drift, jitter=jitter, sd_ratio=0.02, series=series) for _ in range(trials)]
    coverage = float(np.mean([hit for hit, _ in runs]))
    sampling = 3.5 * math.sqrt(0.95 * 0.05 / trials)
    assert coverage >= 0.95 - sampling
    assert coverage <= 0.95 + 2 * sampling + 0.02
    if jitter > drift:
        rng = np.random.default_rng(2024)
        cautious = [_simulate_series(rng, drift=drift, jitter=jitter, sd_ratio=0.02, series=series,
                                     with_series=False)[1] for _ in range(trials)]
        assert np.median([use for _, use in runs]) > np.median(cautious) + 0.05


def test_the_split_recovers_the_components() -> None:
    rng = np.random.default_rng(5)
    levels = rng.normal(0, 0.06, 400)
    logs = np.concatenate([level + rng.normal(0, 0.1, 7) for level in levels])
    spread = device_spread(logs, np.repeat(np.arange(400), 7))
    assert spread.split and math.sqrt(spread.drift_var) == pytest.approx(0.06, rel=0.15)
    assert math.sqrt(spread.jitter_var) == pytest.approx(0.1, rel=0.05)
    # without series (or with single figures only) nothing can be told apart: all of it counts as drift
    alone = device_spread(logs, None)
    assert not alone.split and alone.jitter_var == 0.0
    assert alone.drift_var == pytest.approx(np.var(logs, ddof=1))
    with pytest.raises(ValueError, match="series"):
        device_spread(logs, [0, 1])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        prediction_bound([1.0], [1.0], [1.0], confidence=1.0)
    with pytest.raises(ValueError, match="paired"):
        prediction_bound([1.0, 2.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        prediction_bound([0.0], [1.0], [1.0])
