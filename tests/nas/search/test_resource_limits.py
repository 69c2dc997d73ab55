"""Parameter and MAC limits in the search: every iterate and the final network within every limit, the final network
the exact optimum (by enumeration on a small space whose counts come from the network builder), and the plain-word
refusals of limits no network meets."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.latency.expected_latency import LatencyModel
from nas.search import BCFWConfig, LatencyLimitError, SearchSettings, search
from nas.search.discretize import NetworkScore
from nas.search.driver import refinalize
from nas.search.fleet import FleetInfeasibleError
from nas.search.resource_limits import (
    ResourceInfeasibleError,
    check_limits,
    format_count,
    parse_count,
    resource_limits,
)
from shared.builders import build_network
from shared.costs import count_params, space_costs
from shared.search_space import ArchChoice, SearchSpace, StageSpec
from tests.nas.search.helpers import planted_gradients
from tests.nas.search.test_discretize import DEPTHS, SMALL, STAGE_CHOICES, _brute_force

REL = 1e-9

#: a real space of SMALL's shape (3 stages, 3 positions, 3 options, depths 2-3): its networks are timm networks
TINY = SearchSpace(name="tiny", stages=(StageSpec(24, 2, "relu"), StageSpec(40, 2, "relu"),
                                        StageSpec(80, 2, "hard_swish")),
                   exp_ratios=(3.0, 4.0, 6.0), kernels=(3,), se_ratios=(0.0,), depths=DEPTHS, num_classes=10)
RESOLUTION = 32


def _latency(seed: int) -> LatencyModel:
    rng = np.random.default_rng(seed)
    # correlated with the parameter counts (wider blocks are slower) plus noise, so the two limits trade off
    params = space_costs(TINY, RESOLUTION).params.astype(float)
    return LatencyModel(params / params.max() * rng.uniform(0.5, 1.5, size=SMALL) + 0.05, 0.3, DEPTHS)


def _at(lo: float, hi: float, u: float) -> float:
    return lo + u * (hi - lo)


def _all_networks() -> list[ArchChoice]:
    import itertools

    return [ArchChoice(stages) for stages in itertools.product(STAGE_CHOICES, repeat=SMALL[0])]


def test_counts_parse_with_suffixes_and_read_back() -> None:
    assert parse_count("3.5M") == 3.5e6 and parse_count("300m") == 3e8 and parse_count("250K") == 250_000
    assert parse_count("1G") == 1e9 and parse_count("3500000") == 3.5e6 and parse_count("2e6") == 2e6
    for bad in ("", "M", "3.5X", "-1M", "0", "nan", "inf", "3.5 M M"):
        with pytest.raises(ValueError, match="--max-params"):
            parse_count(bad, "--max-params")
    assert format_count(3.5e6) == "3.5M" and format_count(2_345_678) == "2.35M"
    assert format_count(3_500_100, unlike=3.5e6) == "3.5001M"


def test_a_params_limit_below_the_smallest_network_says_so_in_plain_words() -> None:
    (limit,) = resource_limits(TINY, RESOLUTION, 10, max_params=1e5)
    smallest = min(count_params(build_network(str(TINY.arch_from_choice(c)), num_classes=10))
                   for c in [TINY.lightest()])
    with pytest.raises(ResourceInfeasibleError) as info:
        check_limits([(_latency(0), 100.0)], [limit])
    message = str(info.value)
    assert message == f"no network in the space has at most 100K parameters: the smallest has " \
                      f"{format_count(limit.minimum())} (10 classes)"
    assert "\n" not in message and limit.minimum() <= smallest


def test_latency_and_params_no_network_meets_together_name_each_others_least() -> None:
    # a table on which the narrowest option is the slowest: the two limits pull apart
    model = LatencyModel(np.broadcast_to([1.0, 0.2, 0.1], SMALL) + 0.01 * np.arange(3)[:, None, None], 0.3, DEPTHS)
    (params,) = resource_limits(TINY, RESOLUTION, 10, max_params=1e9)
    nets = _all_networks()
    lat = np.array([model.choice_latency_ms(c) for c in nets])
    cnt = np.array([params.value(c) for c in nets])
    limit_ms = 2.0
    # a pair no network meets: the fewest parameters within the latency limit, less one
    fewest = int(cnt[lat <= limit_ms].min())
    (params,) = resource_limits(TINY, RESOLUTION, 10, max_params=fewest - 1)
    assert params.minimum() <= fewest - 1 and model.min_latency_ms() <= limit_ms  # each limit alone can be met
    with pytest.raises(ResourceInfeasibleError) as info:
        check_limits([(model, limit_ms)], [params])
    message = str(info.value)
    least_ms = float(lat[cnt <= fewest - 1].min())
    assert message.startswith(f"no network meets both latency <= {limit_ms:.4g} ms and at most "
                              f"{format_count(fewest - 1)} parameters: ")
    assert f"every network with latency <= {limit_ms:.4g} ms has at least {format_count(fewest, unlike=fewest - 1)} " \
           "parameters" in message
    assert re.search(r"every network with at most \S+ parameters has latency at least ([0-9.]+) ms", message)
    assert float(re.search(r"latency at least ([0-9.]+) ms", message).group(1)) == pytest.approx(least_ms, rel=1e-3)
    assert "\n" not in message and "status" not in message.lower()


def test_a_fleet_target_below_its_minimum_is_named() -> None:
    a, b = _latency(2), _latency(3)
    (params,) = resource_limits(TINY, RESOLUTION, 10, max_params=1e9)
    with pytest.raises(FleetInfeasibleError, match="^latency on second: latency limit"):
        check_limits([(a, 100.0), (b, 0.5 * b.min_latency_ms())], [params], ["first", "second"])
    with pytest.raises(LatencyLimitError):
        check_limits([(b, 0.5 * b.min_latency_ms())], [params])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), u_ms=st.floats(0.0, 1.0), u_params=st.floats(0.0, 1.0),
       u_macs=st.one_of(st.none(), st.floats(0.0, 1.0)), objective=st.sampled_from(["surrogate", "momentum"]))
def test_every_iterate_and_the_final_network_meet_the_latency_and_count_limits(
        seed: int, u_ms: float, u_params: float, u_macs: float | None, objective: str) -> None:
    model = _latency(seed % 1000)
    costs = space_costs(TINY, RESOLUTION)
    limit_ms = _at(model.min_latency_ms(), model.max_latency_ms(), u_ms)
    lo_p, hi_p = costs.params_of(TINY.lightest()), costs.params_of(TINY.heaviest())
    lo_m, hi_m = costs.macs_of(TINY.lightest()), costs.macs_of(TINY.heaviest())
    resources = resource_limits(TINY, RESOLUTION, 10, max_params=_at(lo_p, hi_p, u_params),
                                max_macs=None if u_macs is None else _at(lo_m, hi_m, u_macs))
    constraints = [(model, limit_ms), *(r.row for r in resources)]
    witness = _brute_force(NetworkScore(np.zeros(SMALL), np.zeros((3, 2))), constraints)[1]
    rng = np.random.default_rng(seed)
    utility = NetworkScore(rng.normal(size=SMALL) + model.block_ms, rng.normal(size=(3, 2)))
    grads = planted_gradients(model, utility, noise=0.5, seed=seed)
    iterates = []

    def recorded(alpha, beta):
        iterates.append((alpha.copy(), beta.copy()))
        return grads(alpha, beta)

    run = SearchSettings(latency_limit_ms=limit_ms, bcfw_steps=25, seed=seed % 1000,
                         bcfw=BCFWConfig(objective=objective))
    if witness is None:
        with pytest.raises((ResourceInfeasibleError, LatencyLimitError)):
            search(model, recorded, run, space=TINY, progress=False, resources=resources)
        return
    result = search(model, recorded, run, space=TINY, progress=False, resources=resources)
    iterates.append((result.alpha, result.beta))
    for alpha, beta in iterates:  # the start, every step's point and the final distribution
        assert model.expected_latency_ms(alpha, beta) <= limit_ms * (1 + REL)
        for r in resources:
            assert r.expected(alpha, beta) <= math.floor(r.limit) * (1 + REL)
    choice = result.choice
    assert model.choice_latency_ms(choice) <= limit_ms
    net = build_network(str(TINY.arch_from_choice(choice)), num_classes=10)
    for r in resources:
        assert r.value(choice) <= r.limit
    if resources[0].kind == "params":
        assert resources[0].value(choice) == count_params(net)  # the row's count is timm's count
    best, _ = _brute_force(result.score, constraints)  # the exact optimum of the final objective, by enumeration
    assert result.score.of(choice, DEPTHS) >= best - 1e-6 * max(1.0, abs(best))
    out = result.to_json()
    assert [x["kind"] for x in out["limits"]] == ["latency_ms", *(r.kind for r in resources)]
    assert all(x["value"] <= x["limit"] for x in out["limits"])
    assert out["limits"][1]["value"] == resources[0].value(choice)
    assert "targets" not in out["attempts"][0] and len(out["targets"]) == 1
    # a re-run of the final steps under a tighter latency keeps the count limits
    try:
        fin = refinalize(result, 0.5 * (limit_ms + model.min_latency_ms()))
    except Exception:  # the tighter latency alone can rule out every network within the counts
        return
    assert all(r.value(fin.choice) <= r.limit for r in resources)
    assert len(fin.limits_ms) == 1 + len(resources) and "targets" not in result.attempts[-1]


@pytest.mark.slow
def test_command_refuses_limits_no_network_meets_in_one_line(tmp_path) -> None:
    """``nas search --max-params``: an unreadable count or one below the smallest network is a user error (exit 2,
    one line, no solver status), and nothing is written."""
    from tests.nas.search.test_search import _nas

    base = ("search", "digits", "--lut", "tests/data/lut_onnxruntime_32.json", "--resolution", "32",
            "--latency-limit-ms", "0.9", "--out", str(tmp_path / "out"))
    proc = _nas(*base, "--max-params", "1M")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: no network in the space has at most 1M parameters: the smallest has 1.98M (10 classes)"]
    proc = _nas(*base, "--max-macs", "3.5Q")
    assert proc.returncode == 2 and "--max-macs" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
