"""The search driver: every iterate within the limit, the network it returns, its outputs and a re-run of the final
steps under a tighter internal limit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nas.search import BCFWConfig, SearchSettings, best_network, refinalize, search, write_outputs
from shared.search_space import HARDCORENAS
from tests.nas.search.helpers import latency_gradients

REL = 1e-9


def test_search_driver_keeps_the_limit_and_writes_outputs(make_model, tmp_path: Path) -> None:
    model = make_model(4)
    limit = model.min_latency_ms() + 0.35 * (model.max_latency_ms() - model.min_latency_ms())
    settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=60, bcfw=BCFWConfig(max_step=0.1), seed=3)
    result = search(model, latency_gradients(0, model), settings, lut_fingerprint="fp", progress=False)
    assert len(result.trajectory) == 60
    assert all(row.expected_latency_ms <= limit * (1 + REL) for row in result.trajectory)
    assert result.expected_latency_ms <= limit
    assert result.expected_latency_ms == model.choice_latency_ms(result.choice)
    # the loss falls with latency: the network is the best one under the limit by the search's own final objective
    assert result.finalization.score == result.score.of(result.choice, model.depths)
    assert result.finalization.score >= result.score.of(best_network(result.score, [(model, limit)]), model.depths)
    assert HARDCORENAS.choice_from_arch(result.arch) == result.choice

    paths = write_outputs(result, tmp_path)
    data = json.loads(paths["result"].read_text())
    for key in ("arch", "expected_latency_ms", "latency_limit_ms", "lut_fingerprint", "steps"):
        assert key in data
    assert data["steps"] == 60 and data["lut_fingerprint"] == "fp" and data["latency_limit_ms"] == limit
    assert np.asarray(data["alpha"]).shape == (5, 4, 12)
    assert np.array_equal(data["final_objective"]["option"], result.score.option)  # refinalize's input
    rows = list(csv.DictReader(paths["trajectory"].open()))
    assert len(rows) == 60 and float(rows[-1]["expected_latency_ms"]) == result.trajectory[-1].expected_latency_ms
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the final steps re-run under a tightened internal limit (a measured result above T)
    tighter = 0.9 * result.expected_latency_ms
    fin = refinalize(result, tighter)
    assert fin.latency_ms <= tighter and result.expected_latency_ms == fin.latency_ms
    assert [a["internal_limit_ms"] for a in result.to_json()["attempts"]] == [limit, tighter]
