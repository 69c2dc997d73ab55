"""Search versus random: networks drawn inside a latency band, their distribution, and the rank statistics."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.evaluation.band_sampling import (
    BandError,
    band_of_limit,
    lowest_band_from,
    sample_across_range,
    sample_in_band,
)
from nas.evaluation.child_accuracy import ChildAccuracy
from nas.evaluation.versus_random import compare_with_random, rank_statistics, usable_limit_ms
from nas.latency.expected_latency import LatencyModel
from shared.search_space import HARDCORENAS, ArchChoice
from tests.nas.evaluation.helpers import networks_in_band


def _model(seed: int, shape=(5, 4, 12), depths=(2, 3, 4)) -> LatencyModel:
    rng = np.random.default_rng(seed)
    # per-position scale like a real table: early stages at high resolution cost more per option
    scale = rng.uniform(0.2, 1.0, size=shape[:2])[:, :, None]
    return LatencyModel(scale * rng.uniform(0.02, 0.3, size=shape), float(rng.uniform(0.2, 1.0)), depths)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.02, 1.0), count=st.integers(1, 8))
def test_sampled_networks_lie_in_the_band_and_are_distinct(seed: int, fraction: float, count: int) -> None:
    model = _model(seed)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    limit = lo + fraction * (hi - lo)
    low, high = band_of_limit(limit)
    drawn = sample_in_band(model, low, high, count, seed=seed, mix_steps=50)
    assert len(drawn) == count
    assert len({c for c, _ in drawn}) == count
    for choice, latency in drawn:
        HARDCORENAS.check_choice(choice)
        assert latency == model.choice_latency_ms(choice)
        assert low <= latency <= high


def test_the_top_of_the_range_is_reached_where_uniform_sampling_finds_nothing() -> None:
    model = _model(3)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    low, high = band_of_limit(lo + 0.8 * (hi - lo))
    rng = np.random.default_rng(0)
    uniform_hits = 0
    for _ in range(2000):
        choice = ArchChoice(tuple(tuple(int(o) for o in rng.integers(12, size=rng.choice([2, 3, 4])))
                                  for _ in range(5)))
        uniform_hits += low <= model.choice_latency_ms(choice) <= high
    assert uniform_hits < 30  # rejection sampling would need far more than 2,000 draws for 30 networks
    assert len(sample_in_band(model, low, high, 30, seed=1)) == 30


def test_draws_follow_uniform_sampling_conditioned_on_the_band() -> None:
    """On a space small enough to enumerate, the walk's draws match the exact conditional distribution."""
    from scipy.stats import chisquare

    model = _model(7, shape=(2, 2, 3), depths=(1, 2))
    states = itertools.product(range(3), repeat=4)  # options of the 4 positions, used or not
    weight: Counter[ArchChoice] = Counter()
    for opts in states:
        for depths in itertools.product((1, 2), repeat=2):
            choice = ArchChoice((tuple(opts[:depths[0]]), tuple(opts[2:2 + depths[1]])))
            weight[choice] += 1
    latencies = {c: model.choice_latency_ms(c) for c in weight}
    ordered = sorted(latencies.values())
    low, high = ordered[len(ordered) // 3], ordered[2 * len(ordered) // 3]
    inside = {c: w for c, w in weight.items() if low <= latencies[c] <= high}
    draws = sample_in_band(model, low, high, 2000, seed=0, mix_steps=30, distinct=False)
    counts = Counter(c for c, _ in draws)
    assert set(counts) <= set(inside)
    total = sum(inside.values())
    observed = [counts[c] for c in inside]
    expected = [len(draws) * w / total for w in inside.values()]
    assert chisquare(observed, expected).pvalue > 1e-3


def test_a_band_outside_the_table_is_refused() -> None:
    model = _model(0)
    with pytest.raises(BandError, match="outside"):
        sample_in_band(model, 0.5 * model.min_latency_ms(), 0.9 * model.min_latency_ms(), 3)
    with pytest.raises(BandError, match="only"):  # one network at the very bottom: three distinct ones do not exist
        m = model.min_latency_ms()
        sample_in_band(model, m, m, 3, max_attempts=20, max_walk_steps=100)


def test_the_grid_count_of_networks_in_a_band_matches_enumeration() -> None:
    """On an enumerable space the grid count lies between the exact counts of the band shrunk and grown by the
    grid's largest rounding error (half a step per block)."""
    model = _model(5, shape=(2, 3, 4), depths=(1, 2, 3))
    latencies = [model.choice_latency_ms(ArchChoice((a[:d0], b[:d1])))
                 for a in itertools.product(range(4), repeat=3) for b in itertools.product(range(4), repeat=3)
                 for d0 in (1, 2, 3) for d1 in (1, 2, 3)
                 if a[d0:] == (0,) * (3 - d0) and b[d1:] == (0,) * (3 - d1)]  # each network once
    assert len(latencies) == (4 + 16 + 64) ** 2
    bins = 512
    slack = 6 * 0.5 * model.max_latency_ms() / bins
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    assert networks_in_band(model, lo - slack, hi + slack, bins) == len(latencies)
    for low, high in ((lo, lo + 0.1 * (hi - lo)), (lo + 0.3 * (hi - lo), lo + 0.5 * (hi - lo)), (hi * 0.95, hi)):
        inner = sum(low + slack <= x <= high - slack for x in latencies)
        outer = sum(low - slack <= x <= high + slack for x in latencies)
        assert inner <= networks_in_band(model, low, high, bins) <= outer
    assert networks_in_band(model, 0.1 * lo, 0.5 * lo) == 0


def test_the_lowest_band_rises_only_as_far_as_needed() -> None:
    model = _model(11)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    mid = lo + 0.5 * (hi - lo)
    assert lowest_band_from(model, mid, hi, 5, seed=3)[0] == band_of_limit(mid)  # enough networks: the band itself
    with pytest.raises(BandError):  # capped at the lightest network: three distinct ones do not exist
        lowest_band_from(model, lo, lo, 3)
    with pytest.raises(BandError, match="above its cap"):
        lowest_band_from(model, mid, lo, 3)


def test_rank_statistics_on_known_inputs() -> None:
    randoms = [10.0, 20.0, 30.0, 40.0]
    latency = [1.0, 2.0, 3.0, 4.0]
    assert rank_statistics(50.0, randoms, latency) == (100.0, pytest.approx(1.0))
    assert rank_statistics(5.0, randoms, latency)[0] == 0.0
    assert rank_statistics(30.0, randoms, latency)[0] == 62.5  # 2 below, 1 tie counted half: (2 + 0.5) / 4
    assert rank_statistics(25.0, randoms, latency[::-1])[1] == pytest.approx(-1.0)
    rho = rank_statistics(25.0, [1.0, 3.0, 2.0, 4.0], latency)[1]
    assert rho == pytest.approx(0.8)  # 1 - 6 * (1 + 1) / (4 * 15)
    assert rank_statistics(25.0, [7.0, 7.0, 7.0], [1.0, 2.0, 3.0])[1] is None  # constant accuracy: undefined
    with pytest.raises(ValueError):
        rank_statistics(1.0, [], [])


def test_compare_with_random_ranks_each_limit_in_its_own_band() -> None:
    """A proxy whose accuracy is the table latency: the heaviest network tops its band, the lightest trails its."""
    model = _model(11)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    mid = lo + 0.5 * (hi - lo)

    def evaluate(choice: ArchChoice) -> ChildAccuracy:
        return ChildAccuracy(top1=model.choice_latency_ms(choice), loss=0.0)

    calls = []
    report = compare_with_random(evaluate, model, HARDCORENAS, [(mid, model.lightest_choice()),
                                                               (hi, model.heaviest_choice())],
                                 count=10, seed=2, on_child=lambda done, total: calls.append((done, total)))
    low, high = report.limits
    assert low.percentile_vs_random == 0.0 and high.percentile_vs_random == 100.0
    for comparison, limit in ((low, mid), (high, hi)):
        assert len(comparison.random) == 10 and math.isclose(comparison.band_ms[1], limit)
        assert all(0.95 * limit <= r.table_latency_ms <= limit for r in comparison.random)
    assert report.spearman_random == pytest.approx(1.0)
    assert calls[-1] == (22, 22)
    assert "Metropolis" in report.sampling
    assert report.to_json()["limits"][1]["arch"] == str(HARDCORENAS.arch_from_choice(model.heaviest_choice()))


def test_networks_spread_over_the_range_join_the_correlation() -> None:
    """Bands in the table's light end span little latency; networks stratified over the whole range say whether
    accuracy follows latency there, and the bands' own correlation is kept beside it."""
    model = _model(11)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    spread = sample_across_range(model, 13, seed=3)
    assert len(spread) == 13 and len({c for c, _ in spread}) == 13
    shares = sorted((lat - lo) / (hi - lo) for _, lat in spread)
    assert 0.025 <= shares[0] < 0.1 and 0.85 < shares[-1] <= 0.925  # strata centred from 5 to 90 % of the range
    assert all(math.isclose(lat, model.choice_latency_ms(c)) for c, lat in spread)
    with pytest.raises(BandError):
        sample_across_range(model, 5)  # fewer networks than strata

    def evaluate(choice: ArchChoice) -> ChildAccuracy:  # accuracy rises with latency, with a band-sized wobble
        latency = model.choice_latency_ms(choice)
        return ChildAccuracy(top1=latency + 0.2 * (hi - lo) * math.sin(1e4 * latency), loss=0.0)

    light = lo + 0.1 * (hi - lo)
    calls = []
    report = compare_with_random(evaluate, model, HARDCORENAS, [(light, model.lightest_choice())], count=10, seed=2,
                                 spread=12, on_child=lambda done, total: calls.append((done, total)))
    assert len(report.spread) == 12 and calls[-1] == (23, 23)
    assert report.spearman_bands is not None and report.spearman_random is not None
    assert report.spearman_random > 0.6 > report.spearman_bands  # the range shows what the light band cannot
    assert "whole range" in report.sampling and len(report.to_json()["spread"]) == 12
    plain = compare_with_random(evaluate, model, HARDCORENAS, [(light, model.lightest_choice())], count=10, seed=2)
    assert plain.spread == [] and plain.spearman_random == plain.spearman_bands == report.spearman_bands


def test_a_limit_the_verdict_tightened_is_ranked_in_the_band_it_could_use() -> None:
    """The measured guarantee tightened the search to an internal limit U < T: the random networks come from
    [0.95 U, U] (the networks the same verdict would have accepted), and the record keeps both T and U."""
    model = _model(11)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    limit, usable = lo + 0.8 * (hi - lo), lo + 0.6 * (hi - lo)
    result = {"latency_limit_ms": limit, "attempts": [
        {"internal_limit_ms": limit, "returned": False}, {"internal_limit_ms": usable, "returned": True}]}
    assert usable_limit_ms(result) == usable
    assert usable_limit_ms({"latency_limit_ms": limit}) == limit  # a table-only search: T itself

    def evaluate(choice: ArchChoice) -> ChildAccuracy:
        return ChildAccuracy(top1=model.choice_latency_ms(choice), loss=0.0)

    (c,) = compare_with_random(evaluate, model, HARDCORENAS, [(limit, model.lightest_choice())], count=5, seed=1,
                               usable_limits_ms=[usable_limit_ms(result)]).limits
    assert (c.latency_limit_ms, c.usable_limit_ms) == (limit, usable) and math.isclose(c.band_ms[1], usable)
    assert all(0.95 * usable <= r.table_latency_ms <= usable for r in c.random)
    # tightened to the lightest network: its band holds too few networks, so the lowest band above it that holds
    # them, far under the limit's
    (c,) = compare_with_random(evaluate, model, HARDCORENAS, [(limit, model.lightest_choice())], count=5, seed=1,
                               usable_limits_ms=[lo]).limits
    low, high = c.band_ms
    assert c.usable_limit_ms == lo < high < lo + 0.2 * (limit - lo) and math.isclose(low, 0.95 * high)
    assert len({r.arch for r in c.random}) == 5 and all(low <= r.table_latency_ms <= high for r in c.random)
    below = high / 1.025  # the band one step lower: too few networks by the count the rise uses
    assert networks_in_band(model, 0.95 * below, below) < 10
    with pytest.raises(ValueError, match="usable_limits_ms"):
        compare_with_random(evaluate, model, HARDCORENAS, [(usable, model.lightest_choice())], count=5,
                            usable_limits_ms=[limit])
