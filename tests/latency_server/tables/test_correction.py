"""The whole-network correction (pure): the fit recovers known parameters, the client applies served corrections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latency_server.tables.correction import (
    Correction,
    CorrectionError,
    FitNetwork,
    block_features,
    fit_correction,
    parse_features,
    sample_choices,
)
from nas.latency.table import LatencyTable
from shared.search_space import HARDCORENAS

RES = 224


def _raw_table(seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {str(k): float(rng.uniform(0.1, 1.2)) for k in HARDCORENAS.all_keys(RES)}


def _networks(raw: dict[str, float], truth: Correction, fixed_raw: float, count: int, seed: int,
              noise: float = 0.0) -> list[FitNetwork]:
    rng = np.random.default_rng(seed)
    out = []
    for choice in sample_choices(HARDCORENAS, count, seed):
        keys = tuple(HARDCORENAS.block_key(s, j, o, RES)
                     for s, st in enumerate(choice.options) for j, o in enumerate(st))
        measured = truth.predict_ms(fixed_raw, [(k, raw[str(k)]) for k in keys]) * (1 + noise * rng.standard_normal())
        out.append(FitNetwork(str(HARDCORENAS.arch_from_choice(choice)), keys, measured))
    return out


@pytest.mark.parametrize("features", [("scale", "per_block"), ("scale", "per_block", "io"), ("per_block",)])
def test_fit_recovers_known_parameters(features: tuple[str, ...]) -> None:
    raw = _raw_table()
    fixed_raw = sum(raw[str(k)] for k in HARDCORENAS.fixed_keys(RES).values())
    coefs = {"scale": 0.85, "per_block": -0.04, "io": -0.02}
    truth = Correction(features, {f: coefs[f] for f in features}, 0.3)
    nets = _networks(raw, truth, fixed_raw, 14, seed=5)
    fitted = fit_correction(nets, raw, fixed_raw, features=features)
    for name in features:
        assert fitted.coefficients[name] == pytest.approx(coefs[name], abs=1e-8)
    assert fitted.fixed_offset_ms == pytest.approx(0.3, abs=1e-7)
    assert fitted.report["loo_mape_pct"] < 1e-6 and fitted.report["networks"] == 14
    assert len(fitted.report["fit_networks"]) == 14
    # JSON round trip (what the table's meta stores and the server serves)
    again = Correction.from_json(fitted.to_json())
    key = HARDCORENAS.searchable_keys(RES)[7]
    assert again.entry_ms(key, raw[str(key)]) == pytest.approx(fitted.entry_ms(key, raw[str(key)]))


def test_fit_with_noise_reports_an_honest_leave_one_out_error() -> None:
    raw = _raw_table(1)
    fixed_raw = 1.5
    truth = Correction(("scale", "per_block"), {"scale": 1.1, "per_block": -0.08}, -0.5)
    nets = _networks(raw, truth, fixed_raw, 16, seed=9, noise=0.02)
    fitted = fit_correction(nets, raw, fixed_raw)
    assert fitted.coefficients["scale"] == pytest.approx(1.1, rel=0.1)
    assert 0.5 < fitted.report["loo_mape_pct"] < 5  # about the injected 2 % noise, not zero
    assert fitted.report["loo_mape_pct"] >= fitted.report["fit_mape_pct"]
    assert fitted.report["naive_mape_pct"] > fitted.report["loo_mape_pct"]


def test_fit_needs_more_networks_than_parameters_and_known_features() -> None:
    raw = _raw_table()
    truth = Correction(("scale", "per_block"), {"scale": 1.0, "per_block": 0.0}, 0.0)
    with pytest.raises(CorrectionError, match="at least 4 networks"):
        fit_correction(_networks(raw, truth, 1.0, 3, seed=1), raw, 1.0)
    with pytest.raises(CorrectionError, match="per_stage"):
        parse_features("scale,per_stage")


def test_corrected_entries_never_go_negative() -> None:
    c = Correction(("scale", "per_block"), {"scale": 1.0, "per_block": -5.0}, 0.0)
    key = HARDCORENAS.searchable_keys(RES)[0]
    assert c.unfloored_entry_ms(key, 0.2) < 0 < c.entry_ms(key, 0.2) == pytest.approx(0.01)
    f = block_features(key, 0.2)
    assert f["io"] == pytest.approx((16 * 112**2 + 24 * 56**2) / 1e6)


def test_client_table_uses_served_corrections_by_default() -> None:
    raw = _raw_table(2)
    fixed = {str(k): raw[str(k)] for k in HARDCORENAS.fixed_keys(RES).values()}
    entries = {str(k): raw[str(k)] for k in HARDCORENAS.searchable_keys(RES)}
    c = Correction(("scale", "per_block"), {"scale": 0.8, "per_block": -0.02}, 0.25)
    body = {
        "space": "hardcorenas", "fingerprint": "fp", "unit": "ms", "backend": "onnxruntime", "batch_size": 1,
        "threads": 1, "resolution": RES, "fixed_ms": sum(fixed.values()), "fixed": fixed, "entries": entries,
        "stats": {}, "corrected_entries": {k: c.entry_ms(HARDCORENAS.searchable_keys(RES)[0].parse(k), v)
                                           for k, v in entries.items()},
        "corrected_fixed_ms": c.fixed_ms(sum(fixed.values())), "correction": {**c.to_json(), "loo_mape_pct": 1.5},
    }
    choice = sample_choices(HARDCORENAS, 1, 3)[0]
    pairs = [(k, raw[str(k)]) for s, st in enumerate(choice.options) for j, o in enumerate(st)
             for k in (HARDCORENAS.block_key(s, j, o, RES),)]
    corrected = LatencyTable.from_json(body)
    assert corrected.model().choice_latency_ms(choice) == pytest.approx(c.predict_ms(sum(fixed.values()), pairs))
    assert "leave-one-out MAPE 1.50 %" in corrected.corrections["method"]
    raw_table = LatencyTable.from_json(body, use_correction=False)
    assert raw_table.model().choice_latency_ms(choice) == pytest.approx(
        sum(fixed.values()) + math.fsum(t for _, t in pairs))
    # the saved table keeps the corrections (a search from the file predicts the same)
    assert LatencyTable.from_json(corrected.to_json()).model().choice_latency_ms(choice) == pytest.approx(
        corrected.model().choice_latency_ms(choice))
