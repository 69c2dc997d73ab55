"""The exact discretisation: the best network by an additive score under latency limits, checked by enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.latency.expected_latency import LatencyModel
from nas.search.discretize import DiscretizationError, NetworkScore, best_network
from shared.search_space import ArchChoice

SMALL = (3, 3, 3)  # stages, blocks, options: (9 + 27) ** 3 = 46,656 networks at depths (2, 3)
DEPTHS = (2, 3)


STAGE_CHOICES = [opts for d in DEPTHS for opts in itertools.product(range(SMALL[2]), repeat=d)]


def _brute_force(score: NetworkScore, constraints) -> tuple[float, ArchChoice | None]:
    """The best score by enumerating all networks, with its own sums (not the code under test)."""
    num_s = SMALL[0]

    def per_stage(values, depth_values=None):
        return np.array([[math.fsum([*(float(values[s, j, i]) for j, i in enumerate(opts)),
                                     0.0 if depth_values is None else float(depth_values[s, DEPTHS.index(len(opts))])])
                          for opts in STAGE_CHOICES] for s in range(num_s)])

    value = per_stage(score.option, score.depth)
    total = value[0][:, None, None] + value[1][None, :, None] + value[2][None, None, :]
    fits = np.ones(total.shape, dtype=bool)
    for model, limit in constraints:
        lat = per_stage(model.block_ms)
        approx = model.fixed_ms + lat[0][:, None, None] + lat[1][None, :, None] + lat[2][None, None, :]
        fits &= approx <= limit + 1e-9 * abs(limit)
        for idx in zip(*np.nonzero(fits & (approx > limit - 1e-9 * abs(limit))), strict=True):  # exact near T
            exact = math.fsum([model.fixed_ms, *(float(model.block_ms[s, j, i]) for s, k in enumerate(idx)
                                                 for j, i in enumerate(STAGE_CHOICES[k]))])
            fits[idx] = exact <= limit
    if not fits.any():
        return -math.inf, None
    idx = np.unravel_index(np.argmax(np.where(fits, total, -np.inf)), total.shape)
    return float(total[idx]), ArchChoice(tuple(STAGE_CHOICES[k] for k in idx))


def _random_case(seed: int, integer: bool):
    rng = np.random.default_rng(seed)
    if integer:  # ties in latency and score
        block_ms = rng.integers(1, 4, size=SMALL).astype(float)
        score = NetworkScore(rng.integers(-2, 3, size=SMALL).astype(float), rng.integers(-2, 3, size=(3, 2)))
    else:
        block_ms = rng.uniform(0.05, 2.0, size=SMALL)
        score = NetworkScore(rng.normal(size=SMALL) + 0.5 * block_ms, rng.normal(size=(3, 2)))
    return LatencyModel(block_ms, float(rng.uniform(0.5, 3.0)), DEPTHS), score


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), integer=st.booleans(), u=st.floats(0.0, 1.0))
def test_best_network_is_the_optimum_by_enumeration(seed: int, integer: bool, u: float) -> None:
    model, score = _random_case(seed, integer)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    limit = lo + u * (hi - lo)
    choice = best_network(score, [(model, limit)])
    assert model.choice_latency_ms(choice) <= limit
    best, _ = _brute_force(score, [(model, limit)])
    assert score.of(choice, DEPTHS) >= best - 1e-6 * max(1.0, abs(best))  # HiGHS's optimality gap
    # no option rated higher fits in place of a chosen one
    for s, stage in enumerate(choice.options):
        for j, i in enumerate(stage):
            for alt in range(SMALL[2]):
                swapped = ArchChoice(tuple(tuple(alt if (k, b) == (s, j) else o for b, o in enumerate(opts))
                                           for k, opts in enumerate(choice.options)))
                if score.option[s, j, alt] > score.option[s, j, i]:
                    assert model.choice_latency_ms(swapped) > limit


def test_a_limit_at_a_networks_exact_latency_is_met_not_exceeded() -> None:
    """Limits equal to exact table sums of random networks (where the MILP's tolerance matters): never above."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        model = LatencyModel(rng.uniform(0.01, 3.0, size=SMALL) * 10.0 ** rng.integers(-3, 2), 0.3, DEPTHS)
        target = ArchChoice(tuple(STAGE_CHOICES[int(k)] for k in rng.integers(len(STAGE_CHOICES), size=3)))
        limit = model.choice_latency_ms(target)
        score = NetworkScore(model.block_ms * rng.uniform(0.9, 1.1, size=SMALL), np.zeros((3, 2)))
        choice = best_network(score, [(model, limit)])
        assert model.choice_latency_ms(choice) <= limit
        assert score.of(choice, DEPTHS) >= score.of(target, DEPTHS) - 1e-9 * limit


def test_a_limit_at_the_lightest_network_returns_it_even_past_the_solvers_tolerance() -> None:
    """An option a hair heavier than the cheapest (inside the MILP's feasibility tolerance) that the score prefers,
    under a limit at the table's minimum: the solver's pick runs over by a rounding error, the tightened problem
    has no solution, and the answer is the lightest network, not an error (a search tightening to its floor)."""
    model, _ = _random_case(5, integer=False)
    block_ms = model.block_ms.copy()
    lightest = model.lightest_choice()
    for s, stage in enumerate(lightest.options):
        for j, i in enumerate(stage):
            other = (i + 1) % SMALL[2]
            block_ms[s, j, other] = block_ms[s, j, i] + 5e-8
    model = LatencyModel(block_ms, model.fixed_ms, DEPTHS)
    score = NetworkScore(np.where(block_ms == block_ms.min(axis=2, keepdims=True), 0.0, 1.0), np.zeros((3, 2)))
    limit = model.min_latency_ms()
    choice = best_network(score, [(model, limit)])
    assert model.choice_latency_ms(choice) <= limit


def test_a_score_that_prefers_small_networks_returns_the_lightest() -> None:
    """Upgrades with negative score are never taken, however much latency is left."""
    model, _ = _random_case(5, integer=False)
    score = NetworkScore(-model.block_ms, np.zeros((3, 2)))
    for limit in (model.min_latency_ms(), model.max_latency_ms(), 10 * model.max_latency_ms()):
        choice = best_network(score, [(model, limit)])
        assert model.choice_latency_ms(choice) == model.min_latency_ms()
    # a single positive upgrade is taken, and nothing else
    score.option[1, 0] = -model.block_ms[1, 0]
    upgrade = int(np.argmax(model.block_ms[1, 0]))
    score.option[1, 0, upgrade] = 1.0
    choice = best_network(score, [(model, model.max_latency_ms())])
    light = model.lightest_choice()
    assert choice.options[1][0] == upgrade
    assert [o for k, stage in enumerate(choice.options) for o in stage if k != 1] == [
        o for k, stage in enumerate(light.options) for o in stage if k != 1]


def test_several_latency_limits_at_once() -> None:
    rng = np.random.default_rng(11)
    for seed in range(5):
        model, score = _random_case(seed, integer=False)
        other = LatencyModel(model.block_ms[:, :, ::-1] * rng.uniform(0.5, 2.0, size=SMALL), 1.0, DEPTHS)
        limits = [(model, model.min_latency_ms() + 0.4 * (model.max_latency_ms() - model.min_latency_ms())),
                  (other, other.min_latency_ms() + 0.4 * (other.max_latency_ms() - other.min_latency_ms()))]
        best, arg = _brute_force(score, limits)
        if arg is None:
            with pytest.raises(DiscretizationError):
                best_network(score, limits)
            continue
        choice = best_network(score, limits)
        assert all(m.choice_latency_ms(choice) <= limit for m, limit in limits)
        assert score.of(choice, DEPTHS) >= best - 1e-6 * max(1.0, abs(best))


def test_no_network_within_the_limit_is_an_error() -> None:
    model, score = _random_case(1, integer=False)
    with pytest.raises(DiscretizationError):
        best_network(score, [(model, 0.5 * model.min_latency_ms())])
    with pytest.raises(ValueError, match="different spaces"):
        best_network(NetworkScore(np.zeros((5, 4, 12)), np.zeros((5, 3))), [(model, 10.0)])
