"""Whole-network correction of a latency table: a few global parameters fitted on whole networks.

A table of standalone block medians does not add up to a whole network (ORT with full graph optimisation:
the naive sum is 18-40 % too high, most for small networks; eager torch: too low). Each entry is corrected
with the same few global parameters,

    t'(key) = scale * t(key) + per_block + io * (in + out activation elements of key, in millions)
    fixed'  = scale * fixed + fixed_offset

so the corrected table stays one number per key and the search's expected latency stays bilinear. The
parameters are fitted by relative least squares on whole networks measured on the device while the table is
built (never on the networks of an accuracy benchmark), with a leave-one-out error reported beside them.
No per-stage constants: on a dozen networks they overfit. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.block_key import BlockKey
from shared.search_space import ArchChoice, SearchSpace

__all__ = [
    "BLOCK_FEATURES",
    "CORRECTION_MODEL",
    "Correction",
    "CorrectionError",
    "FitNetwork",
    "block_features",
    "fit_correction",
    "parse_features",
    "sample_choices",
]

CORRECTION_MODEL = "global-affine/1"
#: Per-block features a correction may use (``scale`` multiplies the raw entry).
BLOCK_FEATURES = ("scale", "per_block", "io")
#: Corrected entries never fall below this share of the raw entry (reported when they would).
FLOOR_FRACTION = 0.05


class CorrectionError(ValueError):
    """A correction that cannot be fitted or applied (unknown feature, too few networks)."""


def sample_choices(space: SearchSpace, count: int, seed: int) -> list[ArchChoice]:
    """``count`` networks drawn uniformly from ``space`` (each stage's depth, then each block's option)."""
    rng = random.Random(seed)
    return [space.random_choice(rng) for _ in range(count)]


def parse_features(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"scale,per_block"`` -> ``("scale", "per_block")``, checked against :data:`BLOCK_FEATURES`."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in BLOCK_FEATURES]
    if unknown or not names:
        raise CorrectionError(f"correction features: {unknown or 'none'} not in {BLOCK_FEATURES}")
    return tuple(dict.fromkeys(names))


def block_features(key: BlockKey, raw_ms: float) -> dict[str, float]:
    """The per-block feature values of one table entry."""
    out_res = key.resolution // key.stride
    io = (key.in_chs * key.resolution**2 + key.out_chs * out_res**2) / 1e6
    return {"scale": float(raw_ms), "per_block": 1.0, "io": float(io)}


@dataclass(frozen=True)
class FitNetwork:
    """One whole network of the fit: its searchable blocks' keys, and its measured latency (drift-normalised)."""

    arch: str
    keys: tuple[BlockKey, ...]
    measured_ms: float
    role: str = "random"  # random | lightest | heaviest


@dataclass(frozen=True)
class Correction:
    """Fitted global parameters and the fit's record (what is stored with the table and served)."""

    features: tuple[str, ...]
    coefficients: dict[str, float]
    fixed_offset_ms: float
    report: dict[str, Any] = field(default_factory=dict)

    def unfloored_entry_ms(self, key: BlockKey, raw_ms: float) -> float:
        """``scale * t + per_block + io * size`` (the raw entry with weight 1 when ``scale`` is not fitted)."""
        f = block_features(key, raw_ms)
        base = 0.0 if "scale" in self.features else float(raw_ms)
        return base + math.fsum(self.coefficients[name] * f[name] for name in self.features)

    def entry_ms(self, key: BlockKey, raw_ms: float) -> float:
        """The corrected entry of ``key``, floored at a small share of the raw entry (never negative)."""
        return max(self.unfloored_entry_ms(key, raw_ms), FLOOR_FRACTION * raw_ms)

    def fixed_ms(self, raw_fixed_ms: float) -> float:
        """The corrected fixed part: ``scale * fixed + fixed_offset``."""
        return self.coefficients.get("scale", 1.0) * raw_fixed_ms + self.fixed_offset_ms

    def predict_ms(self, fixed_raw_ms: float, entries: Sequence[tuple[BlockKey, float]]) -> float:
        """Corrected latency of a network from its raw fixed part and its (key, raw entry) pairs."""
        return self.fixed_ms(fixed_raw_ms) + math.fsum(self.entry_ms(k, t) for k, t in entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": CORRECTION_MODEL,
            "features": list(self.features),
            "coefficients": dict(self.coefficients),
            "fixed_offset_ms": self.fixed_offset_ms,
            **self.report,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Correction:
        if data.get("model") != CORRECTION_MODEL:
            raise CorrectionError(f"correction model {data.get('model')!r} is not {CORRECTION_MODEL!r}")
        features = parse_features(list(data["features"]))
        report = {k: v for k, v in data.items() if k not in ("model", "features", "coefficients", "fixed_offset_ms")}
        return cls(features, {k: float(v) for k, v in dict(data["coefficients"]).items()},
                   float(data["fixed_offset_ms"]), report)


def _design(
    networks: Sequence[FitNetwork], raw: Mapping[str, float], fixed_raw_ms: float, features: tuple[str, ...]
) -> np.ndarray:
    """One row per network: summed block features (``scale`` includes the fixed part) and a constant."""
    rows = []
    for net in networks:
        sums = dict.fromkeys(features, 0.0)
        for key in net.keys:
            f = block_features(key, raw[str(key)])
            for name in features:
                sums[name] += f[name]
        if "scale" in features:
            sums["scale"] += fixed_raw_ms
        rows.append([sums[name] for name in features] + [1.0])
    return np.asarray(rows, dtype=np.float64)


def _solve(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Relative least squares: minimise sum(((x c + offset - y) / y)^2)."""
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(x * w[:, None], (y - offset) * w, rcond=None)
    return coef


def fit_correction(
    networks: Sequence[FitNetwork],
    raw: Mapping[str, float],
    fixed_raw_ms: float,
    *,
    features: Sequence[str] = ("scale", "per_block"),
) -> Correction:
    """Fit the global parameters on ``networks`` (relative least squares) and report the fit.

    ``raw`` maps ``str(key)`` to the raw table median. The report holds each network's naive, fitted and
    measured latency, the residuals, and the leave-one-out error (each network predicted by a fit on the
    others), the honest estimate of the error on unseen networks.
    """
    feats = parse_features(list(features))
    n_params = len(feats) + 1
    if len(networks) < n_params + 1:
        raise CorrectionError(f"a fit of {n_params} parameters needs at least {n_params + 1} networks, "
                              f"got {len(networks)}")
    x = _design(networks, raw, fixed_raw_ms, feats)
    y = np.array([n.measured_ms for n in networks], dtype=np.float64)
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise CorrectionError("fit networks need positive finite measured latencies")
    # without 'scale' the raw sum enters with weight 1 as an offset
    naive = np.array([fixed_raw_ms + math.fsum(raw[str(k)] for k in n.keys) for n in networks])
    offset = np.zeros_like(y) if "scale" in feats else naive
    coef = _solve(x, y, offset)
    fitted = x @ coef + offset
    loo = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        c = _solve(x[keep], y[keep], offset[keep])
        loo[i] = x[i] @ c + offset[i]
    rel = (fitted - y) / y
    loo_rel = (loo - y) / y
    naive_rel = (naive - y) / y
    coefficients = {name: float(c) for name, c in zip(feats, coef[:-1], strict=True)}
    report = {
        "networks": len(networks),
        "parameters": n_params,
        "fit_mape_pct": float(100 * np.mean(np.abs(rel))),
        "loo_mape_pct": float(100 * np.mean(np.abs(loo_rel))),
        "loo_max_abs_pct": float(100 * np.max(np.abs(loo_rel))),
        "naive_mape_pct": float(100 * np.mean(np.abs(naive_rel))),
        "naive_mean_pct": float(100 * np.mean(naive_rel)),
        "fit_networks": [
            {
                "arch": n.arch,
                "role": n.role,
                "measured_ms": float(y[i]),
                "naive_ms": float(naive[i]),
                "fitted_ms": float(fitted[i]),
                "residual_pct": float(100 * rel[i]),
                "loo_residual_pct": float(100 * loo_rel[i]),
            }
            for i, n in enumerate(networks)
        ],
    }
    return Correction(feats, coefficients, float(coef[-1]), report)
