"""With real servers at resolution 32: the fitted correction is served and used, drift is measured and scales the
prediction, and a search re-runs its final steps until the device measures the network under the limit."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from latency_server.correction import Correction
from nas.client import LatencyClient
from nas.search import BCFWConfig, Gradients, SearchSettings, measured_guarantee, search
from shared.search_space import HARDCORENAS

pytestmark = pytest.mark.slow  # real server processes building tables

RES = 32
SLOWDOWN = 2.0


def test_correction_drift_and_measured_guarantee(live_server) -> None:
    # 1. a build measures entries, the reference (start/middle/end + each fit round) and 6 fit networks, then fits
    first = live_server()
    with LatencyClient(first.url) as client:
        table = client.wait_for_table(resolution=RES, poll_interval_s=0.1).model_dump()
        stats = client.stats().model_dump()
    first.stop()
    correction = table["correction"]
    assert correction["model"] == "global-affine/1" and correction["features"] == ["scale", "per_block"]
    assert correction["networks"] == 6 and {n["role"] for n in correction["fit_networks"]} == {
        "lightest", "heaviest", "random"}
    assert correction["seed"] == 7001 and correction["rounds"] == 3 and "loo_mape_pct" in correction
    assert stats["calibration_measurements"] == 3 + 3 * 7  # 3 reference runs, 3 rounds of 6 fit nets + reference
    ref = table["reference"]
    assert ref["arch"] == str(HARDCORENAS.arch_from_choice(HARDCORENAS.lightest()))
    assert [m["phase"] for m in ref["measurements"]][:3] == ["start", "middle", "end"]
    assert len(ref["measurements"]) == 6 and ref["median_ms"] > 0
    c = Correction.from_json(correction)
    for key in HARDCORENAS.searchable_keys(RES)[:10]:
        assert table["corrected_entries"][str(key)] == pytest.approx(c.entry_ms(key, table["entries"][str(key)]))
    assert table["corrected_fixed_ms"] == pytest.approx(c.fixed_ms(table["fixed_ms"]))

    # 2. the same database on a device that now runs 2x slower: the reference shows it, the prediction follows
    slow = live_server(LATENCY_SERVER_TIME_SCALE=str(SLOWDOWN))
    arch = str(HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest()))
    with LatencyClient(slow.url) as client:
        answer = client.measure_network(arch, resolution=RES)
    assert answer.drift_ratio == pytest.approx(SLOWDOWN, rel=0.25)
    assert answer.reference.table_ms == pytest.approx(ref["median_ms"])
    assert answer.predicted_ms == pytest.approx(answer.predicted_table_ms * answer.drift_ratio)
    assert len(answer.rounds) == 5
    # the paired figure is back at the table-time speed (as is the raw figure over the drift ratio)
    assert answer.normalized_ms == pytest.approx(answer.measured.median_ms / answer.drift_ratio, rel=0.2)

    # 3. the measured guarantee: a limit between the lightest network and the found one *as measured now* makes
    #    the found network miss it, so the final steps re-run under a tighter internal limit until one fits
    with LatencyClient(slow.url) as client:
        model = client.fetch_table(resolution=RES).model()
        limit0 = model.min_latency_ms() + 0.9 * (model.max_latency_ms() - model.min_latency_ms())
        settings = SearchSettings(latency_limit_ms=limit0, bcfw_steps=40, resolution=RES, seed=0,
                                  bcfw=BCFWConfig(max_step=0.5))
        result = search(model, _gradients(0), settings, space=HARDCORENAS, progress=False)
        probe = client.measure_network(result.arch, resolution=RES)
        lightest_now = probe.reference.measured_ms  # the reference is the space's lightest network
        limit = (lightest_now + probe.measured.median_ms) / 2
        assert probe.measured.median_ms - probe.spread_ms > limit
        result.settings = replace(settings, latency_limit_ms=limit)
        met = measured_guarantee(result, lambda arch: client.measure_network(arch, resolution=RES), max_retries=4)
    attempts = result.attempts
    assert len(attempts) >= 2 and not attempts[0]["within_limit"]
    assert attempts[0]["measured_latency_ms"] > limit + attempts[0]["measured_spread_ms"]
    assert attempts[1]["internal_limit_ms"] == pytest.approx(min(  # the observed ratio, never above T
        attempts[0]["expected_latency_ms"] * limit / attempts[0]["measured_latency_ms"], limit))
    (final,) = [a for a in attempts if a["returned"]]
    assert met and result.extra["guarantee"]["met"] and final["within_limit"] and final["arch"] == result.arch
    assert final["measured_latency_ms"] <= limit + final["measured_spread_ms"]
    under = [a["measured_latency_ms"] for a in attempts if a["under_limit"]]  # preferred: measured under T
    assert final["measured_latency_ms"] == max(under or [a["measured_latency_ms"] for a in attempts
                                                         if a["within_limit"]])
    assert result.extra["guarantee"]["under_limit"] == bool(under)
    assert result.extra["guarantee"]["retries"] == len(attempts) - 1
    assert result.extra["guarantee"]["returned_attempt"] == attempts.index(final)
    assert all(a["expected_latency_ms"] <= a["internal_limit_ms"] <= limit for a in attempts)
    assert json.loads(json.dumps(result.to_json()))["attempts"] == attempts  # what result.json records


def _gradients(seed: int):
    rng = np.random.default_rng(seed)

    def grads(alpha: np.ndarray, beta: np.ndarray) -> Gradients:
        # prefers big options and deep stages (so the limit binds), plus noise
        ga = -np.linspace(0, 1, alpha.shape[-1]) + 0.3 * rng.normal(size=alpha.shape)
        gb = -np.linspace(0, 1, beta.shape[-1]) + 0.3 * rng.normal(size=beta.shape)
        return Gradients(ga, gb, 1.0)

    return grads
