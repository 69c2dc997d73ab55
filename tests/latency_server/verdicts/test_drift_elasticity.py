"""The drift-compensation exponent: the pooled slope, its shrinkage toward the prior, the band beyond which a
shift counts in full, and the store's history it is estimated from."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from latency_server.store.crud import Store
from latency_server.store.database import upgrade_database
from latency_server.verdicts.drift_elasticity import DEFAULT_BAND, estimate_elasticity, pooled_slope
from latency_server.worker.fingerprint import fingerprint_for
from latency_server.worker.timing import Method, Stats


def _requests(rng: np.random.Generator, *, networks: int = 40, repeats: int = 3, level_sd: float = 0.06,
              reference_noise_sd: float = 0.06, network_noise_sd: float = 0.01, follows: float = 1.0):
    """Simulated requests: per network, (raw figure, reference figure, level) with the device's level moving every
    request, the networks following it by ``follows`` and the reference carrying its own noise on top."""
    out = []
    for i in range(networks):
        base = 5.0 + i / 4
        group = []
        for _ in range(repeats):
            level = rng.normal(0.0, level_sd)
            net = base * math.exp(follows * level + rng.normal(0.0, network_noise_sd))
            ref = 4.0 * math.exp(level + rng.normal(0.0, reference_noise_sd))
            group.append((net, ref, base))
        out.append(group)
    return out


def test_pooled_slope_recovers_how_far_networks_follow_the_reference() -> None:
    rng = np.random.default_rng(0)
    groups = _requests(rng, networks=200, reference_noise_sd=0.0, network_noise_sd=0.005, follows=0.6)
    fit = pooled_slope([[(n, r) for n, r, _ in g] for g in groups])
    assert fit.slope == pytest.approx(0.6, abs=3 * fit.se) and fit.se < 0.02
    assert fit.pairs == 600 and fit.groups == 200
    # groups of one measurement carry no within-network information
    assert pooled_slope([[(1.0, 2.0)], [(3.0, 4.0)]]).slope is None


def test_the_reference_own_noise_pulls_the_slope_below_one_and_the_slope_predicts_better() -> None:
    """Networks follow the device fully, but the reference's own noise is as large as the device's moves: the
    regression slope is about var(level) / (var(level) + var(noise)) = 0.5, and compensating by the drift ratio to
    that power predicts new requests better than the full ratio does."""
    rng = np.random.default_rng(1)
    history = _requests(rng, networks=60)
    fit = pooled_slope([[(n, r) for n, r, _ in g] for g in history])
    assert fit.slope == pytest.approx(0.5, abs=0.12)
    elasticity = estimate_elasticity([[(n, r) for n, r, _ in g] for g in history], prior=1.0, prior_sd=0.15)
    assert elasticity.source == "history" and 0.3 < elasticity.slope < 0.8
    fresh = [req for g in _requests(rng, networks=60) for req in g]
    ref_level = 4.0  # the reference's figure at the build, without noise
    full = [math.log(base * r / ref_level / n) for n, r, base in fresh]
    partial = [math.log(base * elasticity.factor(r / ref_level) / n) for n, r, base in fresh]
    assert np.mean(np.square(partial)) < 0.8 * np.mean(np.square(full))


def test_few_repeats_lean_on_the_prior_and_the_exponent_stays_within_0_and_1() -> None:
    rng = np.random.default_rng(2)
    two = [[(n, r) for n, r, _ in g] for g in _requests(rng, networks=2)]
    assert estimate_elasticity(two, prior=0.75, prior_sd=0.15).source == "prior"
    assert estimate_elasticity([], prior=0.75, prior_sd=0.15).slope == 0.75
    assert estimate_elasticity([], prior=0.75, prior_sd=0.15).band == DEFAULT_BAND
    many = [[(n, r) for n, r, _ in g] for g in _requests(rng, networks=80, reference_noise_sd=0.0, follows=0.2)]
    free = estimate_elasticity(many, prior=0.75, prior_sd=10.0)
    assert free.slope == pytest.approx(free.estimate.slope, abs=1e-3) and free.slope < 0.4
    shrunk = estimate_elasticity(many, prior=0.75, prior_sd=0.002)
    assert free.slope < shrunk.slope < 0.75 and shrunk.slope == pytest.approx(0.75, abs=0.02)
    assert estimate_elasticity(many, prior=0.75, prior_sd=0.0).slope == 0.75  # pinned
    # the band follows the reference's spread between requests where repeats show it
    assert free.band == pytest.approx(2 * free.estimate.reference_log_sd)
    # a reference that moves opposite to the networks: clipped to 0, never a negative exponent
    opposite = [[(1.0 / r, r) for r in (1.0, 1.1, 0.9)] for _ in range(5)]
    assert estimate_elasticity(opposite, prior=0.75, prior_sd=10.0).slope == 0.0


def test_inside_the_band_the_exponent_applies_beyond_it_the_full_ratio() -> None:
    e = dataclasses.replace(estimate_elasticity([], prior=0.5, prior_sd=0.15), band=0.1)
    assert e.factor(1.0) == 1.0 and e.factor(math.exp(0.08)) == pytest.approx(math.exp(0.04))
    # a device twice as slow as at the build: all of it beyond the band counts
    assert e.factor(2.0) == pytest.approx(math.exp(0.05 + math.log(2.0) - 0.1))
    assert e.factor(0.5) == pytest.approx(math.exp(-0.05 - math.log(2.0) + 0.1))
    ratios = np.exp(np.linspace(-1, 1, 401))
    factors = [e.factor(float(r)) for r in ratios]
    assert all(b > a for a, b in zip(factors, factors[1:], strict=False))  # monotone (and continuous: no jumps)
    assert max(abs(math.log(b / a)) for a, b in zip(factors, factors[1:], strict=False)) < 0.006
    assert e.factor(0.0) == 1.0 and e.factor(float("nan")) == 1.0


def test_the_store_groups_each_network_figure_with_the_reference_timed_beside_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    upgrade_database(url)
    method = Method().to_dict()
    store = Store(url, method=method)
    fp_id = store.ensure_fingerprint(fingerprint_for("onnxruntime", 1, 1))
    reference, big, small = "[['ref']]", "[['big']]", "[['small']]"

    def stats(ms: float) -> Stats:
        return Stats(median_ms=ms, iqr_ms=0.1, p90_ms=ms, mean_ms=ms, min_ms=ms, samples=30, warmup=10)

    for arch, ms, ref_ms in [(big, 9.0, 4.0), (big, 9.9, 4.4), (small, 5.0, 4.1), (big, 9.5, None)]:
        store.save_network(fp_id, arch, 32, stats(ms), {**method, "reference_ms": ref_ms}, None)
    store.save_network(fp_id, small, 224, stats(50.0), {**method, "reference_ms": 40.0}, None)  # other resolution
    store.save_network(fp_id, small, 32, stats(1.0), {**method, "reference_ms": 1.0, "time_scale": 0.01}, None)
    store.save_reference_figures(fp_id, reference, 32, [stats(4.0)], method)
    groups = store.network_reference_pairs(fp_id, reference, 32)
    assert sorted(sorted(g) for g in groups) == [[(5.0, 4.1)], [(9.0, 4.0), (9.9, 4.4)]]
