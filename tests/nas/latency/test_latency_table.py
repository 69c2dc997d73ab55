"""Latency tables: JSON round trip, the original pickle import, setting checks."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from nas.latency.original_lut import import_original
from nas.latency.table import LatencyTable, LatencyTableError, LatencyTableMismatch
from shared.search_space import HARDCORENAS, ArchChoice


def _table(resolution: int = 224, seed: int = 0) -> LatencyTable:
    rng = np.random.default_rng(seed)
    keys = HARDCORENAS.searchable_keys(resolution)
    return LatencyTable(
        space="hardcorenas",
        resolution=resolution,
        backend="onnxruntime",
        batch_size=1,
        threads=1,
        fingerprint="abc123",
        fixed_ms=1.25,
        entries={str(k): float(v) for k, v in zip(keys, rng.uniform(0.01, 1.0, len(keys)), strict=True)},
        fixed={"stem": 0.5, "head": 0.75},
    )


def test_json_round_trip_and_dense_table(tmp_path) -> None:
    table = _table()
    path = table.save(tmp_path / "lut.json")
    data = json.loads(path.read_text())
    assert data["unit"] == "ms" and data["fingerprint"] == "abc123" and len(data["entries"]) == 120
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.fixed_ms == table.fixed_ms
    dense = loaded.block_ms()
    assert dense.shape == (5, 4, 12) and dense.dtype == np.float64
    key = HARDCORENAS.block_key(2, 3, 7, 224)
    assert dense[2, 3, 7] == table.entries[str(key)]
    # blocks 1-3 of a stage share one geometry
    np.testing.assert_array_equal(dense[:, 1], dense[:, 3])
    # the model's latency of a network equals the table sum of its block keys
    model = loaded.model()
    choice = ArchChoice(((0, 5), (11, 2, 3), (4, 4, 4, 4), (1, 2), (7, 8, 9)))
    expected = table.fixed_ms + sum(
        table.entries[str(HARDCORENAS.block_key(s, j, i, 224))]
        for s, stage in enumerate(choice.options)
        for j, i in enumerate(stage)
    )
    assert model.choice_latency_ms(choice) == pytest.approx(expected, rel=1e-12)


def test_corrections_keep_the_model_bilinear() -> None:
    table = _table()
    offsets = np.zeros((5, 4, 12))
    offsets[0, 0, :] = 0.1
    table.corrections = {"position_offsets_ms": offsets.tolist(), "fixed_offset_ms": -0.25, "method": "test"}
    plain = _table()
    np.testing.assert_allclose(table.block_ms() - plain.block_ms(), offsets)
    assert table.model().fixed_ms == pytest.approx(1.0)


def test_check_matches_names_every_difference() -> None:
    table = _table(resolution=224)
    table.check_matches(224, "onnxruntime", 1)
    with pytest.raises(LatencyTableMismatch, match=r"resolution 224 \(search: 32\).*backend onnxruntime"):
        table.check_matches(32, "torch-cpu", 1)
    with pytest.raises(LatencyTableMismatch, match="batch size 1"):
        table.check_matches(224, "onnxruntime", 8)


def test_incomplete_or_bad_tables_are_refused(tmp_path) -> None:
    table = _table()
    table.entries.pop(next(iter(table.entries)))
    with pytest.raises(LatencyTableError, match="lacks 1 block"):
        table.block_ms()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**_table().to_json(), "unit": "s"}))
    with pytest.raises(LatencyTableError, match="unit 's'"):
        LatencyTable.load(bad)
    with pytest.raises(LatencyTableError, match="does not exist"):
        LatencyTable.load(tmp_path / "missing.json")


def _original_pickle(path, resolution: int = 224) -> dict:
    rng = np.random.default_rng(1)
    data = {k.to_original(): float(rng.uniform(1e-5, 1e-3)) for k in HARDCORENAS.searchable_keys(resolution)}
    data["general"] = np.float64(0.002)  # numpy scalars occur in the original files
    path.write_bytes(pickle.dumps(data))
    return data


def test_import_original_pickle_in_seconds(tmp_path) -> None:
    data = _original_pickle(tmp_path / "lut.pkl")
    table = import_original(tmp_path / "lut.pkl", unit="s", backend="torch-cpu")
    assert table.resolution == 224 and table.backend == "torch-cpu" and table.fingerprint.startswith("original:")
    assert table.fixed_ms == pytest.approx(2.0)
    key = HARDCORENAS.block_key(1, 0, 3, 224)
    assert table.entries[str(key)] == pytest.approx(data[key.to_original()] * 1000.0)
    table.block_ms()


def test_import_refuses_code_in_pickles(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"general": Evil()}))
    with pytest.raises(LatencyTableError, match="refusing to load builtins.print"):
        import_original(tmp_path / "evil.pkl", unit="s")


@pytest.mark.slow
def test_lut_import_command(tmp_path) -> None:
    _original_pickle(tmp_path / "lut.pkl")
    out = tmp_path / "lut.json"
    cmd = [sys.executable, "-m", "nas", "lut", "import", str(tmp_path / "lut.pkl"), "--unit", "s", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "120 block entries" in proc.stdout
    assert LatencyTable.load(out).fixed_ms == pytest.approx(2.0)
    proc = subprocess.run(cmd[:6] + ["--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --unit is required")
    assert "Traceback" not in proc.stderr
