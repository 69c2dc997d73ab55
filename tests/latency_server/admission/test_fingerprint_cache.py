"""The fingerprints a server keeps in memory: read-only queries add none, and churning many measuring settings
never evicts the default settings' fingerprint (which every default request and table build uses)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from latency_server.admission import measurer as measurer_module
from latency_server.admission.measurer import Measurer
from latency_server.config import Settings
from latency_server.store.crud import Store
from latency_server.store.database import upgrade_database
from latency_server.worker.queue import MeasurementQueue
from latency_server.worker.tasks import WorkerHello
from shared.api_schemas import MeasureSettings


def _measurer(tmp_path: Path) -> Measurer:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(url)
    # the fingerprint reads only the worker's hello: what the device and its libraries are
    worker = SimpleNamespace(hello=WorkerHello(pid=1, backends=["onnxruntime"], hardware={"cpu": "test"},
                                               software={"onnxruntime": "test"}))
    return Measurer(Settings(db=url), Store(url), MeasurementQueue(), worker)  # type: ignore[arg-type]


def test_churned_settings_never_evict_the_default_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measurer_module, "_FINGERPRINTS_KEPT", 4)
    measurer = _measurer(tmp_path)
    default = measurer.fingerprint(MeasureSettings())
    for threads in range(2, 12):
        for batch in (1, 2):
            measurer.fingerprint(MeasureSettings(threads=threads, batch_size=batch))
    assert measurer.known_fingerprint(MeasureSettings()) == default
    assert measurer.known_fingerprint(MeasureSettings(threads=2, batch_size=1)) is None  # the oldest others go


def test_read_only_fingerprints_are_neither_kept_nor_stored(tmp_path: Path) -> None:
    measurer = _measurer(tmp_path)
    measurer.fingerprint(MeasureSettings())
    for threads in range(2, 40):
        fp = measurer.fingerprint(MeasureSettings(threads=threads), store=False)
        assert fp.threads == threads and measurer.known_fingerprint(MeasureSettings(threads=threads)) is None
