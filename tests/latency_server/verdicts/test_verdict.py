"""The verdict's statistics on simulated measurements with known noise: coverage, the sequential rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latency_server.verdicts.bound import RatioDrift, device_spread, enough_rounds, prediction_bound, ratio_drift


def _repeats(rng: np.random.Generator, *, ratio_drift_sd: float, sd_ratio: float, rounds: int,
             networks: int = 6, times: int = 2) -> RatioDrift:
    """The ratio's drift as the server would estimate it from ``networks`` other networks measured ``times``
    times each: every measurement's log ratio moves by the drift and by the mean of its rounds' noise."""
    measured = []
    for network in range(networks):
        base = rng.normal(1.0, 0.5)
        for _ in range(times):
            noise = rng.normal(0, sd_ratio, rounds)
            measured.append((network, base + rng.normal(0, ratio_drift_sd) + float(noise.mean()),
                             float(np.var(noise, ddof=1)) / rounds))
    return ratio_drift(measured)


def _simulate(rng: np.random.Generator, *, sd_device: float, sd_ratio: float, rounds: int, history: int,
              future_rounds: int, confidence: float) -> tuple[bool, float]:
    """One verdict on a device whose reference figure is lognormal (sd ``sd_device``) and whose network/reference
    ratio has lognormal round noise (sd ``sd_ratio``) and no drift of its own (which repeated networks show);
    returns whether a later measurement (the median of ``future_rounds`` rounds at one device speed) is at or
    under the bound, and central / bound."""
    ratio, reference = 2.5, 1.3
    past = reference * np.exp(rng.normal(0, sd_device, history))
    ref_rounds = reference * np.exp(rng.normal(0, sd_device, rounds))
    net_rounds = ref_rounds * ratio * np.exp(rng.normal(0, sd_ratio, rounds))
    verdict = prediction_bound(net_rounds, ref_rounds, np.concatenate([past, ref_rounds]), confidence=confidence,
                               future_rounds=future_rounds,
                               drift_of_ratio=_repeats(rng, ratio_drift_sd=0.0, sd_ratio=sd_ratio, rounds=rounds))
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
                     rounds: int = 7, confidence: float = 0.95, with_series: bool = True,
                     ratio_drift_sd: float = 0.0, repeats: bool | None = True,
                     drift_of_ratio: RatioDrift | None = None) -> tuple[bool, float]:
    """A device whose speed has a level that drifts between measurements (sd ``drift``) and jitters between the
    rounds of one (sd ``jitter``): the history holds ``series`` measurements of ``rounds`` reference figures and
    two single figures (a table build's); a later measurement is the median of ``rounds`` rounds at a new level,
    with the network's ratio moved by its own drift (sd ``ratio_drift_sd``). ``repeats``: the verdict gets the
    ratio's drift from repeated networks (True), knows of none (None), or is told it is nil (False);
    ``drift_of_ratio`` overrides it. Returns whether it is at or under the bound, and central / bound."""
    ratio, reference = 2.5, 1.3

    def level_and_rounds(n: int) -> np.ndarray:
        return reference * np.exp(rng.normal(0, drift) + rng.normal(0, jitter, n))

    past = [level_and_rounds(rounds) for _ in range(series)] + [level_and_rounds(1) for _ in range(2)]
    ref_rounds = level_and_rounds(rounds)
    net_rounds = ref_rounds * ratio * np.exp(rng.normal(0, sd_ratio, rounds))  # timed back to back: same speed
    history = np.concatenate([*past, ref_rounds])
    labels = [i for i, figures in enumerate([*past, ref_rounds]) for _ in figures]
    if drift_of_ratio is None:
        drift_of_ratio = (None if repeats is None else RatioDrift(0.0, 100) if not repeats
                          else _repeats(rng, ratio_drift_sd=ratio_drift_sd, sd_ratio=sd_ratio, rounds=rounds))
    verdict = prediction_bound(net_rounds, ref_rounds, history, confidence=confidence, future_rounds=rounds,
                               history_series=labels if with_series else None, drift_of_ratio=drift_of_ratio)
    later_ratio = ratio * math.exp(rng.normal(0, ratio_drift_sd))
    later = float(np.median(level_and_rounds(rounds) * later_ratio * np.exp(rng.normal(0, sd_ratio, rounds))))
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


@pytest.mark.parametrize("ratio_drift_sd", [0.06, 0.12])
def test_a_ratio_that_drifts_between_measurements_is_covered_once_repeats_show_it(ratio_drift_sd) -> None:
    """A larger network's ratio to the light reference moves between measurements (contention the reference does
    not feel): with that drift estimated from repeated networks the bound still covers; ignoring it does not."""
    rng = np.random.default_rng(99)
    trials = 2000
    runs = [_simulate_series(rng, drift=0.03, jitter=0.08, sd_ratio=0.03, series=12, ratio_drift_sd=ratio_drift_sd)
            for _ in range(trials)]
    coverage = float(np.mean([hit for hit, _ in runs]))
    sampling = 3.5 * math.sqrt(0.95 * 0.05 / trials)
    assert coverage >= 0.95 - sampling
    rng = np.random.default_rng(99)
    blind = float(np.mean([_simulate_series(rng, drift=0.03, jitter=0.08, sd_ratio=0.03, series=12,
                                            ratio_drift_sd=ratio_drift_sd, repeats=False)[0] for _ in range(trials)]))
    assert blind < 0.95 - sampling


def test_without_repeated_networks_the_ratio_moves_as_the_device_does() -> None:
    rng = np.random.default_rng(4)
    history = np.concatenate([np.exp(rng.normal(level, 0.05, 7)) for level in rng.normal(0, 0.1, 10)])
    labels = np.repeat(np.arange(10), 7)
    ref = np.exp(rng.normal(0, 0.05, 7))
    unknown = prediction_bound(2 * ref, ref, history, history_series=labels)
    assert unknown.ratio_drift_source == "device"
    assert unknown.sd_ratio_drift == pytest.approx(math.hypot(unknown.sd_drift, unknown.sd_jitter))
    few = prediction_bound(2 * ref, ref, history, history_series=labels, drift_of_ratio=RatioDrift(0.0001, 2))
    assert few.ratio_drift_source == "device" and few.upper_ms == pytest.approx(unknown.upper_ms)
    steady = prediction_bound(2 * ref, ref, history, history_series=labels, drift_of_ratio=RatioDrift(0.0001, 8))
    assert steady.ratio_drift_source == "repeats" and steady.upper_ms < unknown.upper_ms


def test_without_repeats_a_ratio_moving_as_much_as_the_jitter_is_covered() -> None:
    """The loaded case: the device's level barely drifts (3 %) but its rounds jitter (8 %), and a larger network's
    ratio moves between measurements by about the jitter. No network was measured twice: the prior (drift and
    jitter together) covers at the stated rate, where the device's drift alone would not."""
    rng = np.random.default_rng(7)
    trials = 2000
    hits = [_simulate_series(rng, drift=0.03, jitter=0.08, sd_ratio=0.03, series=12, ratio_drift_sd=0.08,
                             repeats=None)[0] for _ in range(trials)]
    sampling = 3.5 * math.sqrt(0.95 * 0.05 / trials)
    assert float(np.mean(hits)) >= 0.95 - sampling
    rng = np.random.default_rng(7)
    drift_only = RatioDrift(0.03**2, 3)  # what the prior was: the device's drift
    short = [_simulate_series(rng, drift=0.03, jitter=0.08, sd_ratio=0.03, series=12, ratio_drift_sd=0.08,
                              drift_of_ratio=drift_only)[0] for _ in range(trials)]
    assert float(np.mean(short)) < 0.95 - sampling


def test_the_ratio_drift_is_recovered_from_repeated_networks() -> None:
    rng = np.random.default_rng(8)
    estimate = _repeats(rng, ratio_drift_sd=0.1, sd_ratio=0.05, rounds=7, networks=300, times=3)
    assert estimate.df == 600 and math.sqrt(estimate.var) == pytest.approx(0.1, rel=0.1)
    steady = _repeats(rng, ratio_drift_sd=0.0, sd_ratio=0.05, rounds=7, networks=300, times=3)
    assert math.sqrt(steady.var) < 0.02  # the rounds' own noise is not mistaken for drift
    assert ratio_drift([("a", 0.1, 0.0), ("b", 0.2, 0.0)]).df == 0  # nothing measured twice: no estimate


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


def test_a_drift_floor_covers_a_device_that_drifts_more_after_the_verdict_than_before() -> None:
    """The history (12 measurements of 5 rounds) shows a device drifting by 0.5 % between measurements; after the
    verdict it drifts by 3 %, as when a load starts on a shared machine. Counting the history's drift as it is
    covers far under the stated rate; a floor of 3 % on the drift restores it, and changes nothing on a device whose
    history already drifts more than the floor."""
    def coverage(floor: float, before: float, after: float) -> tuple[float, float]:
        rng = np.random.default_rng(77)
        hits, margins = [], []
        for _ in range(2000):
            past = [1.3 * np.exp(rng.normal(0, before) + rng.normal(0, 0.01, 5)) for _ in range(12)]
            ref = 1.3 * np.exp(rng.normal(0, before) + rng.normal(0, 0.01, 5))
            net = ref * 2.5 * np.exp(rng.normal(0, 0.01, 5))
            history = np.concatenate([*past, ref])
            labels = [i for i, figures in enumerate([*past, ref]) for _ in figures]
            verdict = prediction_bound(net, ref, history, history_series=labels, drift_of_ratio=RatioDrift(0.0, 100),
                                       drift_floor=floor)
            later = float(np.median(1.3 * math.exp(rng.normal(0, after)) * 2.5 * np.exp(rng.normal(0, 0.01, 5))))
            hits.append(later <= verdict.upper_ms)
            margins.append(verdict.upper_ms / verdict.central_ms)
        return float(np.mean(hits)), float(np.median(margins))

    assert coverage(0.0, 0.005, 0.03)[0] < 0.8
    assert coverage(0.03, 0.005, 0.03)[0] >= 0.95 - 3.5 * math.sqrt(0.95 * 0.05 / 2000)
    assert coverage(0.03, 0.06, 0.06)[1] == pytest.approx(coverage(0.0, 0.06, 0.06)[1])
