"""The original HardCoRe-NAS project's latency table (``lut.pkl``) converted to this project's table in ms.

This module owns reading those pickles safely (only plain containers and numbers are unpickled, never code from a
downloaded file), their key format, their unit, and inferring the resolution they were measured at; the result is
a :class:`~nas.latency.table.LatencyTable` like any other.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from pathlib import Path
from typing import Any

from nas.latency.table import LatencyTable, LatencyTableError
from shared.block_key import BlockKey, BlockKeyError
from shared.search_space import HARDCORENAS, SearchSpace

__all__ = ["import_original"]


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numbers (no arbitrary code from a downloaded file)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a latency table pickle")


def import_original(
    path: str | Path,
    *,
    unit: str,
    backend: str = "onnxruntime",
    batch_size: int = 1,
    threads: int | None = None,
    space: SearchSpace = HARDCORENAS,
    resolution: int | None = None,
) -> LatencyTable:
    """Convert an original HardCoRe-NAS ``lut.pkl`` (flat dict, its key format, ``'general'``) to a table in ms.

    ``unit`` is the pickle's unit (``s`` for the original project). The original files do not record how
    they were measured, so ``backend``/``batch_size``/``threads`` state it; the resolution is inferred.
    """
    scale = {"s": 1000.0, "ms": 1.0}.get(unit)
    if scale is None:
        raise LatencyTableError(f"unit: expected 's' or 'ms', got {unit!r}")
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
        raw = _PlainUnpickler(io.BytesIO(raw_bytes)).load()
    except FileNotFoundError:
        raise LatencyTableError(f"{path} does not exist") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise LatencyTableError(f"{path}: not a latency table pickle ({exc})") from None
    if not isinstance(raw, dict):
        raise LatencyTableError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
    if "general" not in raw:
        raise LatencyTableError(f"{path}: no 'general' entry (the fixed part of the network)")
    entries: dict[str, float] = {}
    for key, value in raw.items():
        if key == "general":
            continue
        try:
            block = BlockKey.from_original(str(key))
        except BlockKeyError as exc:
            raise LatencyTableError(f"{path}: {exc}") from None
        latency_ms = float(value) * scale
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise LatencyTableError(f"{path}: bad latency {value!r} for {key}")
        entries[str(block)] = latency_ms
    if resolution is None:
        resolution = _infer_resolution(entries, space)
    table = LatencyTable(
        space=space.name,
        resolution=resolution,
        backend=backend,
        batch_size=batch_size,
        threads=threads,
        fingerprint="original:" + hashlib.sha256(raw_bytes).hexdigest()[:16],
        fixed_ms=float(raw["general"]) * scale,
        entries=entries,
        fixed={"general": float(raw["general"]) * scale},
        meta={"imported_from": path.name, "original_unit": unit},
        source=str(path),
    )
    table.block_ms(space)  # every searchable block present
    return table


def _infer_resolution(entries: dict[str, float], space: SearchSpace) -> int:
    """The input resolution whose searchable keys the table holds."""
    keys = [BlockKey.parse(k) for k in entries]
    first = space.searchable_keys(224)[0]  # stage 1, block 0: resolution = input / 2 at any input size
    for key in keys:
        if (key.in_chs, key.out_chs, key.stride) == (first.in_chs, first.out_chs, first.stride):
            return key.resolution * 2
    raise LatencyTableError(f"cannot infer the resolution: no block {first.in_chs}->{first.out_chs} in the table")


