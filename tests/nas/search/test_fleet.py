"""A fleet of targets: target specs, the joint feasibility check, the start, BCFW and the final network under
every target's limit (checked by enumeration), and the per-target measured guarantee on simulated devices."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.latency.expected_latency import LatencyModel
from nas.search import BCFWConfig, SearchSettings, search
from nas.search.bcfw import BCFW
from nas.search.discretize import NetworkScore, best_network
from nas.search.finalize import finalize, search_score
from nas.search.fleet import FleetInfeasibleError, Target, check_distinct, check_fleet, parse_target, parse_target_lut
from nas.search.fleet_guarantee import fleet_guarantee
from nas.search.guarantee import bound_at
from nas.search.start import fleet_start, max_entropy_start
from shared.search_space import HARDCORENAS
from tests.nas.search.helpers import latency_gradients, planted_gradients
from tests.nas.search.test_discretize import DEPTHS, SMALL, _brute_force
from tests.nas.search.test_search import _answer

REL = 1e-9


def test_target_specs_parse_with_their_settings() -> None:
    t = parse_target("http://127.0.0.1:8000?backend=torch-cpu&threads=2&batch_size=16=3.5")
    assert (t.endpoint, t.backend, t.threads, t.batch_size, t.limit_ms) == ("http://127.0.0.1:8000", "torch-cpu", 2,
                                                                           16, 3.5)
    plain = parse_target("https://host/latency=0.8")
    assert (plain.endpoint, plain.backend, plain.limit_ms) == ("https://host/latency", None, 0.8)
    assert plain.with_defaults("onnxruntime", 1, 1).backend == "onnxruntime"
    assert parse_target_lut("tables/lut_32.json=1.25") == Target(1.25, lut="tables/lut_32.json")


@pytest.mark.parametrize(("spec", "message"), [
    ("127.0.0.1:8000=1", "not an http(s) URL"),
    ("ftp://host=1", "not an http(s) URL"),
    ("http://host?device=gpu=1", "unknown query key 'device'"),
    ("http://host?threads=2&threads=3=1", "threads given twice"),
    ("http://host?threads=two=1", "threads must be a positive integer"),
    ("http://host?batch_size=0=1", "batch_size must be a positive integer"),
    ("http://host?backend==1", "backend is empty"),
    ("http://host=0", "positive number of ms"),
    ("http://host=-2", "positive number of ms"),
    ("http://host=inf", "positive number of ms"),
    ("http://host=fast", "must be a number of ms"),
    ("http://host", "expected URL"),
])
def test_bad_target_specs_say_why_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_target(spec)
    assert "\n" not in str(info.value)


def test_a_target_given_twice_is_refused() -> None:
    same = [parse_target("http://host:1/?threads=2=1"), parse_target("http://host:1?threads=2=2")]
    with pytest.raises(ValueError, match="given twice"):
        check_distinct(same)
    check_distinct([parse_target("http://host:1?threads=2=1"), parse_target("http://host:1?threads=1=1")])
    with pytest.raises(ValueError, match="given twice"):
        check_distinct([parse_target_lut("a.json=1"), parse_target_lut("./a.json=2")])


def _pair(seed: int, shape=SMALL, depths=DEPTHS) -> tuple[LatencyModel, LatencyModel]:
    """Two targets that disagree on which options are cheap (the second reverses the first's order, rescaled)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.05, 2.0, size=shape)
    b = a[:, :, ::-1] * rng.uniform(0.5, 2.0, size=shape)
    return LatencyModel(a, 0.7, depths), LatencyModel(b, 1.3, depths)


def _at(model: LatencyModel, u: float) -> float:
    return model.min_latency_ms() + u * (model.max_latency_ms() - model.min_latency_ms())


def test_a_fleet_that_no_network_can_meet_stops_at_once_saying_why() -> None:
    a, b = _pair(2)
    with pytest.raises(FleetInfeasibleError, match=r"fast: .*smallest achievable latency"):
        check_fleet([(a, _at(a, 0.5)), (b, 0.9 * b.min_latency_ms())], ["slow", "fast"])
    # each limit at its own table's minimum: the lightest networks differ, so together no network fits
    with pytest.raises(FleetInfeasibleError, match=r"within the other limits (A|B) needs >= .* ms, above its limit"
                       ) as info:
        check_fleet([(a, a.min_latency_ms()), (b, b.min_latency_ms())], ["A", "B"])
    assert "each alone: A >= " in str(info.value)
    witness = check_fleet([(a, _at(a, 0.5)), (b, _at(b, 0.5))])
    assert a.choice_latency_ms(witness) <= _at(a, 0.5) and b.choice_latency_ms(witness) <= _at(b, 0.5)


def test_the_fleet_start_is_the_single_start_for_identical_targets() -> None:
    a, _ = _pair(4, shape=(5, 4, 12), depths=(2, 3, 4))
    limit = _at(a, 0.3)
    alpha, beta = fleet_start([(a, limit), (a, limit)])
    ref_alpha, ref_beta = max_entropy_start(a, limit)
    np.testing.assert_allclose(alpha, ref_alpha, atol=1e-5)
    np.testing.assert_allclose(beta, ref_beta, atol=1e-5)
    assert a.expected_latency_ms(alpha, beta) <= limit


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), u=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
       three=st.booleans(), objective=st.sampled_from(["surrogate", "momentum"]))
def test_every_iterate_and_the_final_network_meet_every_limit(seed: int, u: list[float], three: bool,
                                                               objective: str) -> None:
    a, b = _pair(seed)
    rng = np.random.default_rng(seed)
    models = [a, b] + ([LatencyModel(rng.uniform(0.05, 2.0, size=SMALL), 0.2, DEPTHS)] if three else [])
    constraints = [(m, _at(m, x)) for m, x in zip(models, u, strict=False)]
    try:
        check_fleet(constraints)
    except FleetInfeasibleError:
        assert _brute_force(NetworkScore(np.zeros(SMALL), np.zeros((3, 2))), constraints)[1] is None
        return
    utility = NetworkScore(rng.normal(size=SMALL) + a.block_ms, rng.normal(size=(3, 2)))
    opt = BCFW(a, constraints[0][1], BCFWConfig(objective=objective), seed=seed, others=tuple(constraints[1:]))
    grads = planted_gradients(a, utility, noise=0.5, seed=seed)
    for _ in range(30):
        g = grads(opt.alpha, opt.beta)
        opt.step(g.alpha, g.beta)
        for m, limit in constraints:
            assert m.expected_latency_ms(opt.alpha, opt.beta) <= limit * (1 + REL)
    score = search_score(opt)
    fin = finalize(a, score, constraints[0][1], constraints[1:])
    assert all(m.choice_latency_ms(fin.choice) <= limit for m, limit in constraints)  # strict, by exact sums
    best, _ = _brute_force(score, constraints)
    assert score.of(fin.choice, DEPTHS) >= best - 1e-6 * max(1.0, abs(best))  # the MILP optimum (HiGHS's gap)
    assert fin.latencies_ms == tuple(m.choice_latency_ms(fin.choice) for m, _ in constraints)


def _slow_device(model, slowness: float):
    def measure(arch: str, confidence: float = 0.95):
        central = model.choice_latency_ms(HARDCORENAS.choice_from_arch(arch)) * slowness
        return _answer(central, 1.02 * central, confidence)

    return measure


def test_a_target_over_its_limit_tightens_only_its_own_limit() -> None:
    a, b = _pair(7, shape=(5, 4, 12), depths=(2, 3, 4))
    limits = [_at(a, 0.5), _at(b, 0.5)]
    settings_ = SearchSettings(latency_limit_ms=limits[0], bcfw_steps=30, seed=3)
    result = search(a, latency_gradients(3, a), settings_, progress=False, others=[(b, limits[1])])
    assert all(e <= t for e, t in zip(result.finalization.latencies_ms, limits, strict=True))
    # the second device runs 10 % over its table: only its internal limit moves
    assert fleet_guarantee(result, [_slow_device(a, 0.8), _slow_device(b, 1.1)], max_retries=3)
    first, *rest = result.attempts
    assert not first["accepted"] and first["targets"][0]["accepted"] and not first["targets"][1]["accepted"]
    assert rest and rest[0]["targets"][0]["internal_limit_ms"] == limits[0]
    assert rest[0]["targets"][1]["internal_limit_ms"] == pytest.approx(
        first["targets"][1]["expected_latency_ms"] * limits[1]
        / bound_at(first["targets"][1], rest[0]["targets"][1]["confidence"]))  # at the next verdict's confidence
    (returned,) = [x for x in result.attempts if x["returned"]]
    assert returned["accepted"] and returned["arch"] == result.arch
    targets = result.to_json()["targets"]
    assert [t["latency_limit_ms"] for t in targets] == limits
    for t, limit in zip(targets, limits, strict=True):
        assert t["expected_latency_ms"] <= limit and t["upper_latency_ms"] <= limit
        assert t["measured_latency_ms"] <= t["upper_latency_ms"] and t["confidence"] > 0.95  # spent per verdict
        assert t["attempts"] == len(result.attempts)
    assert result.to_json()["upper_latency_ms"] == targets[0]["upper_latency_ms"]  # one-target fields: the first's
    assert result.extra["guarantee"]["met"]


def test_a_table_file_target_is_judged_by_its_table() -> None:
    a, b = _pair(8, shape=(5, 4, 12), depths=(2, 3, 4))
    limits = [_at(a, 0.4), _at(b, 0.6)]
    result = search(a, latency_gradients(1, a), SearchSettings(latency_limit_ms=limits[0], bcfw_steps=10),
                    progress=False, others=[(b, limits[1])])
    assert fleet_guarantee(result, [_slow_device(a, 0.9), None])
    assert len(result.attempts) == 1 and result.attempts[0]["targets"][1]["verdict"] is None
    # a device that stays over its limit whatever the network: not met, the least-over network returned
    result = search(a, latency_gradients(1, a), SearchSettings(latency_limit_ms=limits[0], bcfw_steps=10),
                    progress=False, others=[(b, limits[1])])
    never = 2.0 * limits[0] / a.min_latency_ms()
    assert not fleet_guarantee(result, [_slow_device(a, never), None], max_retries=2)
    assert result.extra["guarantee"]["reason"] and len(result.attempts) <= 3


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), u=st.tuples(st.floats(0.1, 0.9), st.floats(0.1, 0.9)))
def test_a_planted_preference_is_recovered_under_two_limits(seed: int, u: tuple[float, float]) -> None:
    """Small gradient noise: the fleet search returns the exact optimum of the utility under both limits."""
    a, b = _pair(seed, shape=(5, 4, 12), depths=(2, 3, 4))
    constraints = [(a, _at(a, u[0])), (b, _at(b, u[1]))]
    try:
        witness = check_fleet(constraints)
    except FleetInfeasibleError:
        return
    rng = np.random.default_rng(seed)
    gain = np.log(a.block_ms / a.block_ms.min(axis=-1, keepdims=True)) + 0.5
    utility = NetworkScore(gain * rng.lognormal(0.0, 0.3, size=gain.shape), rng.normal(0.0, 0.3, a.beta_shape))
    grads = planted_gradients(a, utility, 0.05 * float(np.std(utility.option)), seed)
    result = search(a, grads, SearchSettings(constraints[0][1], seed=seed), progress=False, others=constraints[1:])
    assert all(m.choice_latency_ms(result.choice) <= limit for m, limit in constraints)
    optimum = best_network(utility, constraints)
    found, best = utility.of(result.choice, a.depths), utility.of(optimum, a.depths)
    trivial = [c for c in (witness, a.lightest_choice(), b.lightest_choice())
               if all(m.choice_latency_ms(c) <= limit for m, limit in constraints)]
    # within 1 % of the gain over a trivial network: over 270 random draws the worst was 0.4 %, and the tightest
    # limits (10 % of both ranges), where that gain is smallest, reached 0.7 %
    assert (best - found) <= 0.01 * (best - min(utility.of(c, a.depths) for c in trivial))


def test_the_next_limit_follows_a_bound_that_falls_more_slowly_than_the_table() -> None:
    from nas.search.guarantee import next_internal_limit as _next_limit

    limit = 10.47
    assert _next_limit([(10.2, 13.1)], limit) == pytest.approx(10.2 * limit / 13.1)  # the bound scaled onto T
    # a fixed cost the table misses: the bound fell 1.6 ms for 2 ms of table; the secant reaches T lower
    seen = [(10.2, 13.1), (8.2, 11.5)]
    assert _next_limit(seen, limit) == pytest.approx(8.2 + (limit - 11.5) * 2.0 / 1.6)
    assert _next_limit(seen, limit) < 8.2 * limit / 11.5
    # noise that made the bound rise as the table fell: the ratio rule alone
    assert _next_limit([(10.2, 11.0), (8.2, 11.5)], limit) == pytest.approx(8.2 * limit / 11.5)
    # noise that left the bound nearly flat (3.51 -> 3.28 for 2.53 -> 1.68 of table): the secant reaches the aim below
    # zero; one re-run goes no further than half the scaled bound's limit
    flat = [(2.53, 3.51), (1.68, 3.28)]
    assert _next_limit(flat, 2.5) == pytest.approx(0.5 * 1.68 * 2.5 / 3.28)
