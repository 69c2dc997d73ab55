"""The table's level against later measurements: a shift of every network's ratio to the reference followed once
enough networks show it, a network's own figures never fed back into its own prediction, one client's repeats
unable to move it (simulated residuals, no server)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latency_server.verdicts.table_level import table_level


def test_a_shared_offset_of_the_networks_is_followed_once_many_networks_show_it() -> None:
    """Every network runs 3.5 % under the table (its ratio to the reference moved under contention), each with 2 %
    noise of its own: after 40 other networks the prediction is unbiased within a fraction of a percent, where the
    build's level alone is 3.5 % high."""
    rng = np.random.default_rng(5)
    shift = math.log(0.965)
    errors, unfollowed = [], []
    for _ in range(200):
        residuals = [(f"net{i}", shift + rng.normal(0.0, 0.02)) for i in range(40)]
        level = table_level(residuals, exclude="new", prior_sd=0.03)
        truth = math.exp(shift + rng.normal(0.0, 0.02))
        errors.append(level.factor / truth - 1.0)
        unfollowed.append(1.0 / truth - 1.0)
    assert abs(float(np.mean(errors))) < 0.005
    assert float(np.mean(unfollowed)) > 0.03


def test_without_a_shift_the_level_stays_near_the_build() -> None:
    rng = np.random.default_rng(6)
    factors = [table_level([(i, rng.normal(0.0, 0.02)) for i in range(10)]).factor for _ in range(200)]
    assert abs(float(np.mean(factors)) - 1.0) < 0.003
    assert max(abs(f - 1.0) for f in factors) < 0.03


def test_few_networks_move_the_level_only_part_of_the_way() -> None:
    """One other network alone: its spread between networks is unknown, taken as large as the prior, so it counts
    half; none at all, or a prior of 0, keeps the build's level."""
    one = table_level([("a", 0.1)], prior_sd=0.03)
    assert one.networks == 1 and one.shrink == pytest.approx(0.5) and one.factor == pytest.approx(math.exp(0.05))
    assert table_level([]).factor == 1.0 and table_level([]).networks == 0
    assert table_level([("a", 0.1), ("b", 0.1)], prior_sd=0.0).factor == 1.0


def test_a_networks_own_figures_never_enter_its_level() -> None:
    assert table_level([("a", 0.2)] * 5, exclude="a").networks == 0
    level = table_level([("a", 0.2), ("b", 0.0), ("c", 0.0)], exclude="a")
    assert level.networks == 2 and level.residual == 0.0


def test_one_client_repeating_a_network_counts_as_one_network() -> None:
    """100 repeats of one network 20 % off among 10 networks on the table: the network counts once (its newest
    five), so a mean would move by 2 %, not by 18 %, and the median not at all."""
    residuals = [("loud", 0.2)] * 100 + [(f"n{i}", 0.0) for i in range(10)]
    level = table_level(residuals, prior_sd=1.0, max_repeats=5, location="mean")
    assert level.networks == 11
    assert level.residual == pytest.approx(0.2 / 11)
    assert table_level(residuals, prior_sd=1.0, max_repeats=5).residual == 0.0


def test_bursts_of_load_do_not_pull_the_level_up() -> None:
    """Every network runs 7 % under the table; a quarter of the requests caught a burst in their network rounds
    that their reference rounds missed (20-50 % slower). The median follows the 7 % within 1.5 %; the mean is pulled
    well above it."""
    rng = np.random.default_rng(7)
    shift = math.log(0.93)
    medians, means = [], []
    for _ in range(100):
        residuals = [(f"net{i}", shift + rng.normal(0.0, 0.02)
                      + (math.log(rng.uniform(1.2, 1.5)) if rng.random() < 0.25 else 0.0)) for i in range(60)]
        medians.append(math.log(table_level(residuals).factor))
        means.append(math.log(table_level(residuals, location="mean").factor))
    assert abs(float(np.mean(medians)) - shift) < 0.015
    assert float(np.mean(means)) - shift > 0.05
