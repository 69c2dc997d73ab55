"""The measured guarantee, supernet gradients, the ``nas search`` command, and an end-to-end run on a real server."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm

from nas.latency.local_server import LocalServer
from nas.latency.table import LatencyTable
from nas.search import BCFWConfig, SearchSettings, measured_guarantee, search
from nas.search.gradients import SupernetGradients
from nas.search.guarantee import bound_at, verdict_confidence
from shared.api_schemas import LatencyStats, NetworkResponse, Verdict
from shared.search_space import HARDCORENAS
from tests.live import TOKEN
from tests.nas.search.helpers import latency_gradients

REL = 1e-9


def _answer(central_ms: float, upper_ms: float, confidence: float = 0.95) -> NetworkResponse:
    """A ``POST /v1/latency/network`` answer of a simulated device: a verdict with its central figure and bound."""
    stats = LatencyStats(median_ms=central_ms, iqr_ms=0.0, p90_ms=central_ms, samples=1, warmup=0)
    verdict = Verdict(central_ms=central_ms, upper_ms=upper_ms, confidence=confidence, rounds=7, history=20, ratio=1.0,
                      reference_typical_ms=1.0, sd_device=0.05, sd_ratio=0.01, quantile="normal", method="simulated")
    return NetworkResponse(fingerprint="simulated", measured=stats, predicted_ms=None, spread_ms=0.0, verdict=verdict)


def _device(model, slowness: float = 1.0, margin: float = 1.05, first: float = 1.0):
    """A simulated device: central = table x slowness (x ``first`` on the first verdict only), bound = central x
    margin at a search's first-verdict confidence (97.5 %), its log growing with the normal quantile beyond."""
    factors = iter([first])

    def measure(arch: str, confidence: float = 0.95) -> NetworkResponse:
        central = model.choice_latency_ms(HARDCORENAS.choice_from_arch(arch)) * slowness * next(factors, 1.0)
        grown = margin ** (float(norm.ppf(confidence)) / float(norm.ppf(verdict_confidence(0.95, 1))))
        return _answer(central, grown * central, confidence)

    return measure


def test_measured_guarantee_steers_the_upper_bound_under_the_limit(make_model) -> None:
    """The first verdict comes in a slow stretch (15 % slow): the search tightens by the bound's ratio, finds it
    tightened too far, moves the internal limit back up and returns the accepted network with the highest bound."""
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert result.expected_latency_ms > 0.99 * limit  # the loss falls with latency: the budget is used
    met = measured_guarantee(result, _device(model, first=1.15), max_retries=3)
    attempts = result.attempts
    assert met and not attempts[0]["accepted"] and attempts[1]["accepted"]
    aim = 0.5 * (1 + 0.985) * limit  # the middle of the acceptance window [0.985 T, T]
    assert attempts[1]["internal_limit_ms"] == pytest.approx(
        attempts[0]["expected_latency_ms"] * aim / bound_at(attempts[0], attempts[1]["confidence"]))
    assert attempts[1]["upper_latency_ms"] < 0.9 * limit  # tightened too far by the slow stretch
    assert attempts[2]["internal_limit_ms"] > attempts[1]["internal_limit_ms"]  # so it moves back up
    assert all(a["expected_latency_ms"] <= a["internal_limit_ms"] <= limit for a in attempts)
    (returned,) = [a for a in attempts if a["returned"]]
    assert returned["arch"] == result.arch and returned["accepted"] and returned["upper_latency_ms"] <= limit
    assert returned["upper_latency_ms"] == max(a["upper_latency_ms"] for a in attempts if a["accepted"])
    assert result.extra["upper_latency_ms"] == returned["upper_latency_ms"]
    assert result.extra["measured_latency_ms"] == returned["measured_latency_ms"]  # the central figure
    assert result.extra["guarantee"]["confidence"] == 0.95 and result.extra["guarantee"]["met"]
    assert result.extra["guarantee"]["retries"] == len(attempts) - 1 <= 3
    # the search's 95 % is spent over its verdicts: the k-th asked at 1 - 0.05 / 2^k
    assert [a["confidence"] for a in attempts] == [verdict_confidence(0.95, k + 1) for k in range(len(attempts))]
    assert result.extra["guarantee"]["verdict_confidence"] == returned["confidence"] > 0.95
    # a device whose bound is always 15 % above the table: tightened once, then accepted near the limit
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert measured_guarantee(result, _device(model, slowness=1.1), max_retries=3)
    assert len(result.attempts) == 2 and result.extra["upper_latency_ms"] == pytest.approx(limit, rel=0.03)


def test_a_network_whose_bound_is_above_the_limit_is_rejected_even_with_its_median_under(make_model) -> None:
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)
    # central 5 % under the table (so under T), bound 10 % above the central figure: over T
    met = measured_guarantee(result, _device(model, slowness=0.95, margin=1.1), max_retries=0)
    (attempt,) = result.attempts
    assert attempt["measured_latency_ms"] < limit < attempt["upper_latency_ms"]
    assert not met and not attempt["accepted"] and not result.extra["guarantee"]["met"]
    assert "verified bound stayed above the limit" in result.extra["guarantee"]["reason"]
    # with re-runs left, it tightens until the bound fits
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert measured_guarantee(result, _device(model, slowness=0.95, margin=1.1), max_retries=3)
    assert result.extra["upper_latency_ms"] <= limit < result.attempts[0]["upper_latency_ms"]


def test_a_bound_moves_to_the_next_verdicts_confidence() -> None:
    """The next verdict is asked at a higher confidence, so the search steers by the bound as it would sit there:
    the log-margin over the central figure grows with the normal quantile."""
    figures = {"measured_latency_ms": 1.0, "upper_latency_ms": 1.2, "confidence": 0.975}
    assert bound_at(figures, 0.975) == 1.2
    assert bound_at(figures, 0.9875) == pytest.approx(1.2 ** (norm.ppf(0.9875) / norm.ppf(0.975)))
    assert bound_at(figures, 0.9875) > 1.2 > bound_at(figures, 0.95) > 1.0
    assert bound_at({**figures, "confidence": None}, 0.9875) == 1.2  # no stated confidence: kept as it is


def test_a_fixed_cost_the_table_misses_is_met_by_the_secant(make_model) -> None:
    """A device whose bound carries a fixed cost the table misses (U = c + E): scaling E by T / U undershoots the
    cost each time; from the second rejection the secant through the last two (E, U) lands where U reaches T."""
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    cost = 0.2 * limit

    def measure(arch: str, confidence: float = 0.95) -> NetworkResponse:
        central = cost + model.choice_latency_ms(HARDCORENAS.choice_from_arch(arch))
        return _answer(central, central)

    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert measured_guarantee(result, measure, max_retries=4)
    first, second, third = result.attempts[:3]
    assert not first["accepted"] and not second["accepted"]  # the ratio rule alone falls short twice
    (e0, u0), (e1, u1) = [(a["expected_latency_ms"], a["upper_latency_ms"]) for a in (first, second)]
    aim = 0.5 * (1 + 0.985) * limit
    assert third["internal_limit_ms"] == pytest.approx(e1 + (aim - u1) * (e1 - e0) / (u1 - u0))
    assert third["accepted"] and result.extra["upper_latency_ms"] <= limit


def test_the_last_retry_aims_lower(make_model) -> None:
    """Re-runs aim the bound at the middle of the acceptance window [0.985 T, T]; the last one a window's width under
    it (0.97 T), because a miss there would end the search without a guarantee."""
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    for retries, aim in ((3, 0.9925), (1, 0.97)):
        result = search(model, latency_gradients(1, model), settings, progress=False)
        assert measured_guarantee(result, _device(model, margin=1.3), max_retries=retries)
        first, second = result.attempts[:2]
        assert not first["accepted"] and second["accepted"]
        assert second["internal_limit_ms"] == pytest.approx(
            first["expected_latency_ms"] * aim * limit / bound_at(first, second["confidence"]))


def test_the_tightening_stops_at_the_lightest_network(make_model) -> None:
    """A first verdict 50x over the table asks for an internal limit below the table's minimum: the lightest network
    is tried instead of giving up, and accepted once its own verdict fits."""
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert measured_guarantee(result, _device(model, first=50.0, margin=1.0), max_retries=3)
    assert result.attempts[1]["internal_limit_ms"] == model.min_latency_ms()
    assert result.attempts[1]["expected_latency_ms"] == model.min_latency_ms() and result.attempts[1]["accepted"]
    # the lightest network used little of the limit: the internal limit moves back up from there
    assert result.attempts[1]["upper_latency_ms"] < 0.9 * limit
    assert len(result.attempts) > 2 and result.attempts[2]["internal_limit_ms"] > model.min_latency_ms()
    assert result.extra["upper_latency_ms"] == max(a["upper_latency_ms"] for a in result.attempts if a["accepted"])
    assert result.extra["upper_latency_ms"] > result.attempts[1]["upper_latency_ms"]
    # a device on which even the lightest network's bound misses the limit: tried once, then reported
    result = search(model, latency_gradients(1, model), settings, progress=False)
    assert not measured_guarantee(result, _device(model, slowness=10.0), max_retries=5)
    assert len(result.attempts) == 2 and "lightest network" in result.extra["guarantee"]["reason"]
    # a limit below the table's minimum (a device far faster than the table's): nothing is tried above the limit
    result = search(model, latency_gradients(1, model), settings, progress=False)
    below = 0.8 * model.min_latency_ms()
    result.settings = replace(settings, latency_limit_ms=below)
    assert not measured_guarantee(result, _device(model, first=50.0), max_retries=3)
    assert len(result.attempts) == 1 and "cannot tighten" in result.extra["guarantee"]["reason"]


def test_a_server_without_a_verdict_is_judged_by_median_plus_spread(make_model) -> None:
    model = make_model(6)
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)

    def measure(arch: str, confidence: float = 0.95) -> NetworkResponse:
        m = 0.9 * model.choice_latency_ms(HARDCORENAS.choice_from_arch(arch))
        stats = LatencyStats(median_ms=m, iqr_ms=0.0, p90_ms=m, samples=1, warmup=0)
        return NetworkResponse(fingerprint="old server", measured=stats, predicted_ms=None, spread_ms=0.05 * m)

    assert measured_guarantee(result, measure, max_retries=0)
    assert result.extra["upper_latency_ms"] == pytest.approx(0.9 * 1.05 * result.expected_latency_ms)
    assert result.extra["guarantee"]["confidence"] is None and "median + spread" in result.extra["guarantee"][
        "criterion"]


@pytest.fixture(scope="module")
def held_out():
    from nas.data import build_dataset, split_per_class

    train = build_dataset("digits", "train", 32, train_transforms=False)
    return split_per_class(train, 80.0)[1]


def _supernet(seed: int = 0):
    from nas.models.supernet import ElasticSupernet

    torch.manual_seed(seed)
    return ElasticSupernet(HARDCORENAS, num_classes=10)


def test_supernet_gradients_frozen_eval_and_reproducible(held_out) -> None:
    net = _supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    alpha = np.full((5, 4, 12), 1 / 12)
    beta = np.full((5, 3), 1 / 3)
    g1 = SupernetGradients(net, held_out, batch_size=4, seed=7)(alpha, beta)
    assert g1.alpha.shape == (5, 4, 12) and g1.beta.shape == (5, 3)
    assert np.all(np.isfinite(g1.alpha)) and np.all(np.isfinite(g1.beta)) and np.isfinite(g1.loss)
    assert np.count_nonzero(g1.alpha) > 200 and np.count_nonzero(g1.beta) > 5  # every option runs on every image
    assert not net.training
    for k, v in net.state_dict().items():  # frozen: no weight or BN statistic changes
        assert torch.equal(v, before[k]), k
    g2 = SupernetGradients(net, held_out, batch_size=4, seed=7)(alpha, beta)
    np.testing.assert_array_equal(g1.alpha, g2.alpha)


def test_batch_statistics_normalise_with_the_batch_and_leave_the_supernet_as_it_was(held_out) -> None:
    import copy

    from nas.training.bn import batch_statistics

    net = _supernet(2).eval()
    x = torch.stack([held_out[i][0] for i in range(8)])
    net.set_child(HARDCORENAS.heaviest())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        running = net(x)
        with batch_statistics(net):
            batch = net(x)
        trained = copy.deepcopy(net).train()(x)  # training mode: the batch's statistics
    torch.testing.assert_close(batch, trained)
    assert not torch.allclose(batch, running)
    assert not net.training and not any(m.training for m in net.modules())
    for k, v in net.state_dict().items():  # running statistics and counters untouched
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="at least 2 images"):
        SupernetGradients(net, held_out, batch_size=1)
    with pytest.raises(ValueError, match="bn_statistics"):
        SupernetGradients(net, held_out, bn_statistics="mixed")


@pytest.mark.parametrize("bn_statistics", ["batch", "running"])
def test_supernet_gradients_match_finite_differences(held_out, bn_statistics: str) -> None:
    """d loss / d (weight of option i at one block, on every image) against a central difference (float64), with
    each option's batch statistics (the default) and with the running statistics (the original's eval mode)."""
    import contextlib

    import torch.nn.functional as F

    from nas.training.bn import batch_statistics

    net = _supernet().double()
    choice = HARDCORENAS.lightest()
    alpha = np.zeros((5, 4, 12))
    alpha[:, :, 0] = 1.0
    beta = np.zeros((5, 3))
    beta[:, 0] = 1.0  # one-hot: the sampled weights are deterministic
    source = SupernetGradients(net, held_out, batch_size=4, seed=1, bn_statistics=bn_statistics)
    g = source(alpha, beta)
    assert choice.depths == (2,) * 5
    images, targets = next(SupernetGradients(net, held_out, batch_size=4, seed=1)._batches)  # the same batch
    images = images.double()
    a_w = torch.zeros(5, 4, 12, 4, dtype=torch.float64)
    a_w[:, :, 0, :] = 1.0
    b_w = torch.zeros(5, 3, 4, dtype=torch.float64)
    b_w[:, 0, :] = 1.0

    def loss_at(s: int, j: int, i: int, eps: float) -> float:
        w = a_w.clone()
        w[s, j, i, :] += eps
        stats = batch_statistics(net) if bn_statistics == "batch" else contextlib.nullcontext()
        with torch.no_grad(), stats:
            return float(F.cross_entropy(net.forward_weighted(images, w, b_w), targets))

    eps = 1e-5
    for s, j, i in [(0, 0, 0), (1, 1, 5), (4, 0, 11), (2, 1, 3)]:
        fd = (loss_at(s, j, i, eps) - loss_at(s, j, i, -eps)) / (2 * eps)
        assert g.alpha[s, j, i] == pytest.approx(fd, rel=1e-4, abs=1e-9)


def test_same_seed_same_architecture(held_out, make_model) -> None:
    model = make_model(9)
    limit = model.min_latency_ms() + 0.4 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(
        latency_limit_ms=limit, bcfw_steps=4, batch_size=4, resolution=32, bcfw=BCFWConfig(max_step=0.5), seed=5
    )

    def run(seed: int):
        grads = SupernetGradients(_supernet(seed), held_out, batch_size=4, seed=seed)
        return search(model, grads, settings, progress=False)

    a, b = run(5), run(5)
    assert a.arch == b.arch
    assert [r.expected_latency_ms for r in a.trajectory] == [r.expected_latency_ms for r in b.trajectory]
    np.testing.assert_array_equal(a.alpha, b.alpha)


def _nas(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=timeout)


def _lut_file(tmp_path: Path, resolution: int = 32) -> tuple[Path, LatencyTable]:
    rng = np.random.default_rng(0)
    keys = HARDCORENAS.searchable_keys(resolution)
    table = LatencyTable(
        "hardcorenas",
        resolution,
        "onnxruntime",
        1,
        1,
        "fp-test",
        0.5,
        {str(k): float(v) for k, v in zip(keys, rng.uniform(0.01, 0.1, len(keys)), strict=True)},
    )
    return table.save(tmp_path / "lut.json"), table


@pytest.mark.slow
def test_command_stops_at_once_below_the_minimum(tmp_path: Path) -> None:
    path, table = _lut_file(tmp_path)
    minimum = table.model().min_latency_ms()
    proc = _nas(
        "search",
        "digits",
        "--lut",
        str(path),
        "--resolution",
        "32",
        "--latency-limit-ms",
        str(minimum * 0.9),
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 2
    assert f"smallest achievable latency {minimum:.6g} ms" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = _nas("search", "digits", "--lut", str(path), "--latency-limit-ms", "5", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "resolution 32 (search: 224)" in proc.stderr


@pytest.mark.slow
def test_command_chooses_among_candidates_by_their_children(tmp_path: Path) -> None:
    """--child-candidates: the returned network is the recorded candidate marked chosen, the best by held-out top-1."""
    path, table = _lut_file(tmp_path)
    model = table.model()
    limit = model.min_latency_ms() + 0.6 * (model.max_latency_ms() - model.min_latency_ms())
    args = ("search", "digits", "--lut", str(path), "--resolution", "32", "--latency-limit-ms", repr(limit),
            "--bcfw-steps", "5", "--no-progress")
    proc = _nas(*args, "--child-candidates", "0", "--out", str(tmp_path / "bad"))
    assert proc.returncode == 2 and "--child-candidates" in proc.stderr
    proc = _nas(*args, "--child-candidates", "3", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    candidates = result["attempts"][-1]["candidates"]
    assert 2 <= len(candidates) <= 3 and len({c["arch"] for c in candidates}) == len(candidates)
    chosen = [c for c in candidates if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["arch"] == result["arch"]
    assert chosen[0]["held_out_top1"] == max(c["held_out_top1"] for c in candidates)
    assert all(0.0 <= c["held_out_top1"] <= 100.0 and c["expected_latency_ms"] <= limit for c in candidates)


@pytest.mark.slow
def test_end_to_end_with_a_real_latency_server(module_server: LocalServer, tmp_path: Path) -> None:
    """Real server process on loopback (SQLite, token): fetch the table, search digits at 32, measure the network."""
    from shared.builders import build_network

    url, token = module_server.url, TOKEN
    proc = _nas("lut", "--latency-endpoint", url, "--resolution", "32", "--out", str(tmp_path / "lut.json"))
    assert proc.returncode == 2 and "401" in proc.stderr  # the table build needs the token
    proc = _nas(
        "lut", "--latency-endpoint", url, "--token", token, "--resolution", "32", "--out", str(tmp_path / "lut.json")
    )
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "lut.json")
    assert table.resolution == 32 and table.backend == "onnxruntime" and len(table.entries) == 120
    model = table.model()
    limit = model.min_latency_ms() + 0.5 * (model.max_latency_ms() - model.min_latency_ms())

    out = tmp_path / "search"
    proc = _nas(
        "search",
        "digits",
        "--latency-endpoint",
        url,
        "--token",
        token,
        "--resolution",
        "32",
        "--latency-limit-ms",
        repr(limit),
        "--bcfw-steps",
        "3",
        "--batch-size",
        "8",
        "--max-step",
        "0.5",
        "--seed",
        "1",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "freshly initialised supernet" in proc.stderr  # no --supernet: warned
    result = json.loads((out / "result.json").read_text())
    assert result["latency_limit_ms"] == limit and result["steps"] == 3
    assert result["lut_fingerprint"] == table.fingerprint
    assert result["expected_latency_ms"] <= limit
    assert 0 < result["measured_latency_ms"] <= result["upper_latency_ms"] and result["guarantee"]["confidence"] == 0.95
    returned = next(k for k, a in enumerate(result["attempts"]) if a["returned"])
    assert result["confidence"] == pytest.approx(verdict_confidence(0.95, returned + 1))  # the verdict's own
    assert result["verdict"]["network_rounds_ms"] and result["raw_median_ms"] > 0
    # the server's own (corrected) table prediction of the found network equals ours (same keys, same correction)
    assert result["predicted_table_ms"] == pytest.approx(result["expected_latency_ms"], rel=1e-6)
    # the headline figures are the returned attempt's (not always the last: on a busy machine an earlier attempt
    # can be the one measured under the limit)
    (returned,) = [a for a in result["attempts"] if a["returned"]]
    assert returned["measured_latency_ms"] == result["measured_latency_ms"] and returned["arch"] == result["arch"]
    assert result["guarantee"]["returned_attempt"] == result["attempts"].index(returned)
    choice = HARDCORENAS.choice_from_arch(result["arch"])
    assert model.choice_latency_ms(choice) == pytest.approx(result["expected_latency_ms"], rel=1e-12)
    net = build_network(result["arch"], num_classes=10).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert len(list(csv.DictReader((out / "trajectory.csv").open()))) == 3
    assert (out / "trajectory.png").stat().st_size > 1000
