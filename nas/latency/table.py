"""Latency tables on the search side: the JSON file format in ms with its measuring identity, and the dense
per-position array the expected-latency model needs. (The server client is :mod:`nas.latency.client`; the original
project's pickle import is :mod:`nas.latency.original_lut`.)

A table is keyed by ``str(BlockKey)`` (milliseconds per image, medians) plus a fixed part (stem, first stage,
last conv, head). It records where and how it was measured (fingerprint, backend, batch size, threads,
resolution); a search refuses a table measured under other settings. ``corrections`` (optional) hold
per-position additive offsets and a fixed offset, so a corrected model stays bilinear in (alpha, beta).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.latency.expected_latency import LatencyModel
from shared.search_space import HARDCORENAS, SearchSpace, get_space

__all__ = ["FORMAT", "LatencyTable", "LatencyTableError", "LatencyTableMismatch"]

FORMAT = "hardcore-nas-lut/1"


class LatencyTableError(ValueError):
    """A table file, pickle or server answer that cannot be used."""


class LatencyTableMismatch(LatencyTableError):
    """A table measured under other settings than the search needs."""


@dataclass
class LatencyTable:
    """One latency table in milliseconds per image, with its measuring identity."""

    space: str
    resolution: int
    backend: str
    batch_size: int
    threads: int | None
    fingerprint: str
    fixed_ms: float
    entries: dict[str, float]
    fixed: dict[str, float] = field(default_factory=dict)
    fixed_names: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    #: optional bilinear corrections: {"position_offsets_ms": [S][D][O] list, "fixed_offset_ms": x, "method": str}
    corrections: dict[str, Any] = field(default_factory=dict)

    # -- JSON ------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "", use_correction: bool = True) -> LatencyTable:
        """From a saved file or a ``GET /v1/lut`` 200 body (unit must be ms).

        A server answer's ``corrected_entries``/``corrected_fixed_ms`` (the table's fitted whole-network
        correction) become ``corrections`` unless ``use_correction`` is false or the data already has some.
        """
        if not isinstance(data, dict):
            raise LatencyTableError(f"{source or 'table'}: expected a JSON object")
        unit = data.get("unit", "ms")
        if unit != "ms":
            raise LatencyTableError(f"{source or 'table'}: unit {unit!r} is not supported, expected 'ms'")
        missing = [k for k in ("resolution", "backend", "batch_size", "fixed_ms", "entries") if k not in data]
        if missing:
            raise LatencyTableError(f"{source or 'table'}: missing field(s) {missing}")
        entries = {str(k): float(v) for k, v in dict(data["entries"]).items()}
        bad = [k for k, v in entries.items() if not math.isfinite(v) or v < 0]
        if bad or not math.isfinite(float(data["fixed_ms"])):
            raise LatencyTableError(f"{source or 'table'}: non-finite or negative latency for {bad[:3] or 'fixed_ms'}")
        threads = data.get("threads")
        table = cls(
            space=str(data.get("space", HARDCORENAS.name)),
            resolution=int(data["resolution"]),
            backend=str(data["backend"]),
            batch_size=int(data["batch_size"]),
            threads=None if threads is None else int(threads),
            fingerprint=str(data.get("fingerprint", "")),
            fixed_ms=float(data["fixed_ms"]),
            entries=entries,
            fixed={str(k): float(v) for k, v in dict(data.get("fixed", {})).items()},
            fixed_names=dict(data.get("fixed_names", {})),
            stats=dict(data.get("stats", {})),
            meta=dict(data.get("meta", {})),
            source=source or str(data.get("source", "")),
            corrections=dict(data.get("corrections", {})),
        )
        if use_correction and not table.corrections and data.get("corrected_entries"):
            table.corrections = table._served_corrections(data)
        elif not use_correction:
            table.corrections = {}
        return table

    def _served_corrections(self, data: dict[str, Any]) -> dict[str, Any]:
        """Per-position offsets from a server's ``corrected_entries`` (the model stays bilinear)."""
        corrected = {str(k): float(v) for k, v in dict(data["corrected_entries"]).items()}
        try:
            space = get_space(self.space)
        except ValueError:
            return {}
        keys = space.block_keys_table(self.resolution)
        missing = [str(k) for stage in keys for block in stage for k in block if str(k) not in corrected]
        if missing or any(not math.isfinite(v) or v < 0 for v in corrected.values()):
            raise LatencyTableError(f"corrected_entries: missing or bad values (e.g. {missing[:1]})")
        offsets = [[[corrected[str(k)] - self.entries[str(k)] for k in block] for block in stage] for stage in keys]
        fixed = data.get("corrected_fixed_ms")
        info = data.get("correction") or {}
        return {
            "position_offsets_ms": offsets,
            "fixed_offset_ms": 0.0 if fixed is None else float(fixed) - self.fixed_ms,
            "method": f"server fit {info.get('model', '?')}: {info.get('coefficients', {})}, "
            f"leave-one-out MAPE {info.get('loo_mape_pct', float('nan')):.2f} % on {info.get('networks', '?')} "
            "networks",
            "loo_mape_pct": info.get("loo_mape_pct"),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "space": self.space,
            "unit": "ms",
            "fingerprint": self.fingerprint,
            "backend": self.backend,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "resolution": self.resolution,
            "fixed_ms": self.fixed_ms,
            "fixed": self.fixed,
            "fixed_names": self.fixed_names,
            "entries": self.entries,
            "stats": self.stats,
            "meta": self.meta,
            "source": self.source,
            "corrections": self.corrections,
        }

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LatencyTableError(f"latency table {path} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise LatencyTableError(f"cannot read latency table {path}: {exc}") from None
        return cls.from_json(data, source=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        return path

    # -- use in a search --------------------------------------------------------------------------------
    def describe(self) -> str:
        return (
            f"resolution {self.resolution}, backend {self.backend}, batch size {self.batch_size}, "
            f"threads {self.threads if self.threads is not None else 'unknown'}"
        )

    def check_matches(self, resolution: int, backend: str, batch_size: int, threads: int | None = None) -> None:
        """Raise :class:`LatencyTableMismatch` unless the table was measured under these settings."""
        wrong = []
        if self.resolution != resolution:
            wrong.append(f"resolution {self.resolution} (search: {resolution})")
        if self.backend != backend:
            wrong.append(f"backend {self.backend} (search: {backend})")
        if self.batch_size != batch_size:
            wrong.append(f"batch size {self.batch_size} (search: {batch_size})")
        if threads is not None and self.threads is not None and self.threads != threads:
            wrong.append(f"threads {self.threads} (search: {threads})")
        if wrong:
            raise LatencyTableMismatch(
                f"latency table {self.source or ''} does not match the search: measured at " + ", ".join(wrong)
            )

    def block_ms(self, space: SearchSpace | None = None) -> np.ndarray:
        """Dense ``[stage, block, option]`` table (float64 ms) of the space at the table's resolution."""
        space = space or get_space(self.space)
        if space.name != self.space:
            raise LatencyTableMismatch(f"latency table is for space {self.space!r}, not {space.name!r}")
        out = np.empty((space.num_stages, space.max_depth, space.num_options))
        missing: list[str] = []
        for s, stage in enumerate(space.block_keys_table(self.resolution)):
            for j, block in enumerate(stage):
                for i, key in enumerate(block):
                    value = self.entries.get(str(key))
                    if value is None:
                        missing.append(str(key))
                        value = math.nan
                    out[s, j, i] = value
        if missing:
            raise LatencyTableError(
                f"latency table lacks {len(set(missing))} block(s) of space {space.name!r} at resolution "
                f"{self.resolution}, e.g. {missing[0]}"
            )
        offsets = self.corrections.get("position_offsets_ms")
        if offsets is not None:
            offsets = np.asarray(offsets, dtype=np.float64)
            if offsets.shape != out.shape:
                raise LatencyTableError(f"corrections: position_offsets_ms has shape {offsets.shape}, not {out.shape}")
            out = out + offsets
        return out

    def total_fixed_ms(self) -> float:
        return self.fixed_ms + float(self.corrections.get("fixed_offset_ms", 0.0))

    def model(self, space: SearchSpace | None = None) -> LatencyModel:
        """The bilinear expected-latency model of this table (corrections applied)."""
        space = space or get_space(self.space)
        return LatencyModel.from_space(space, self.block_ms(space), self.total_fixed_ms())
