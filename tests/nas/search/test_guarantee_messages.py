"""Why a measured guarantee ended unmet, as the user reads it: the target and its limit in plain words, the best bound
reached, what would help; never the solver's status line (that stays in the debug log)."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import numpy as np
import pytest

from nas.search import BCFWConfig, SearchSettings, measured_guarantee, search
from nas.search.discretize import DiscretizationError, NetworkScore, best_network
from nas.search.fleet_guarantee import fleet_guarantee
from nas.search.guarantee_messages import ADVICE, describe_target
from tests.nas.search.helpers import latency_gradients
from tests.nas.search.test_fleet import _at, _pair, _slow_device
from tests.nas.search.test_search import _device

SOLVER_WORDS = re.compile(r"HiGHS|Status|MILP|model_status|infeasible", re.IGNORECASE)


def _plain(reason: str) -> None:
    assert not SOLVER_WORDS.search(reason), reason
    assert reason.endswith(ADVICE)


def _one_target(make_model, limit_share: float = 0.5):
    model = make_model(6)
    limit = _at(model, limit_share)
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=40, bcfw=BCFWConfig(max_step=0.2), seed=1)
    result = search(model, latency_gradients(1, model), settings, progress=False)
    result.target_info = [{"endpoint": "http://device-a:8000", "backend": "onnxruntime", "threads": 1,
                           "batch_size": 1}]
    return model, result


def test_cannot_tighten_names_the_target_and_the_limit(make_model, caplog) -> None:
    """A limit below the table's minimum (a device far faster than at the table's build, then a slow verdict): the
    search cannot tighten, and says so for that target at that limit, with the best bound it reached."""
    model, result = _one_target(make_model)
    below = 0.8 * model.min_latency_ms()
    result.settings = replace(result.settings, latency_limit_ms=below)
    with caplog.at_level(logging.DEBUG, logger="nas.search"):
        assert not measured_guarantee(result, _device(model, first=50.0), max_retries=3)
    reason = result.extra["guarantee"]["reason"]
    bound = result.attempts[0]["upper_latency_ms"]
    assert reason.startswith(f"cannot tighten further for onnxruntime (1 thread) on http://device-a:8000 at "
                             f"{below:.2f} ms: no network in the space has a verified bound under its limit")
    assert f"the best bound reached was {bound:.2f} ms" in reason
    assert f"table latency of {result.attempts[0]['expected_latency_ms']:.2f} ms" in reason
    _plain(reason)
    assert any("the final steps stopped" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_a_bound_that_stays_above_names_the_target_and_the_limit(make_model) -> None:
    model, result = _one_target(make_model)
    limit = result.settings.latency_limit_ms
    assert not measured_guarantee(result, _device(model, slowness=0.95, margin=1.1), max_retries=0)
    reason = result.extra["guarantee"]["reason"]
    assert f"onnxruntime (1 thread) on http://device-a:8000 at {limit:.2f} ms" in reason
    assert "verified bound stayed above the limit after 0 re-run(s)" in reason
    _plain(reason)
    # even the lightest network's bound misses: said for the target at its limit
    model, result = _one_target(make_model)
    assert not measured_guarantee(result, _device(model, slowness=10.0), max_retries=5)
    reason = result.extra["guarantee"]["reason"]
    assert "lightest network's verified bound is above the limit" in reason and f"at {limit:.2f} ms" in reason
    _plain(reason)


def test_a_fleet_that_cannot_tighten_names_the_target_held_back_and_its_limit(caplog) -> None:
    """Two targets that disagree on which options are cheap; the second device runs far over its table, so its
    internal limit falls to its table's minimum, where no network meets the first target's limit too: the message
    names the second target and its limit (not the first, which accepted), never the solver's words."""
    a, b = _pair(7, shape=(5, 4, 12), depths=(2, 3, 4))
    limits = [_at(a, 0.1), _at(b, 0.1)]
    settings = SearchSettings(latency_limit_ms=limits[0], bcfw_steps=30, seed=3)
    result = search(a, latency_gradients(3, a), settings, progress=False, others=[(b, limits[1])])
    result.target_info = [{"endpoint": "http://a:1", "backend": "onnxruntime", "threads": 1, "batch_size": 1},
                          {"endpoint": "http://b:2", "backend": "torch-cpu", "threads": 2, "batch_size": 8}]
    with caplog.at_level(logging.DEBUG, logger="nas.search"):
        assert not fleet_guarantee(result, [_slow_device(a, 0.8), _slow_device(b, 3.0)], max_retries=3)
    reason = result.extra["guarantee"]["reason"]
    assert reason.startswith(f"cannot tighten further for torch-cpu (2 threads, batch 8) on http://b:2 at "
                             f"{limits[1]:.2f} ms (best bound reached "), reason
    assert "onnxruntime" not in reason and "no network in the space meets every target's tightened" in reason
    _plain(reason)


def test_the_exact_discretisation_says_no_network_fits_in_words(make_model) -> None:
    model = make_model(3)
    score = NetworkScore(model.block_ms, np.zeros(model.beta_shape))
    with pytest.raises(DiscretizationError) as info:
        best_network(score, [(model, 0.5 * model.min_latency_ms())])
    assert str(info.value) == "no network meets the latency limits"


def test_a_target_is_described_by_its_settings_and_its_place(make_model) -> None:
    _, result = _one_target(make_model)
    assert describe_target(result) == "onnxruntime (1 thread) on http://device-a:8000"
    result.target_info = []
    assert describe_target(result) == "onnxruntime (1 thread)"
