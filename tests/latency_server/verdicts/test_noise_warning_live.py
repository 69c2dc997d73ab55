"""With a real server at resolution 32: a device whose reference history spreads widely answers its verdict with a
noise warning in words, ``nas search``'s printer shows it, and the demo's results explain a low budget used from
that verdict and quote the warning."""

from __future__ import annotations

import io
import json
import math
import sqlite3
import uuid
from pathlib import Path

import pytest

from nas.demo.noise import noise_paragraph, noise_warnings
from nas.latency.client import LatencyClient
from nas.search.noise_warning import NoiseWarnings
from shared.search_space import HARDCORENAS

pytestmark = pytest.mark.slow  # a real server process measuring networks

RES = 32


def _widen_reference_history(db_path: Path, series: int = 40, spread: float = 1.0) -> None:
    """Copy a stored reference figure ``series`` times, each as a measurement of its own, alternately
    ``exp(spread)`` times faster and slower: a device whose speed drifts by about e between measurements."""
    with sqlite3.connect(db_path) as conn:
        columns = [row[1] for row in conn.execute("pragma table_info(network_measurements)") if row[1] != "id"]
        rows = conn.execute(f"select {', '.join(columns)} from network_measurements").fetchall()
        source = next(dict(zip(columns, row, strict=True)) for row in rows
                      if json.loads(row[columns.index("method")]).get("role") == "reference")
        for i in range(series):
            factor = math.exp(spread if i % 2 else -spread)
            row = {**source, "method": json.dumps({**json.loads(source["method"]), "series": uuid.uuid4().hex})}
            for name in ("median_ms", "mean_ms", "min_ms", "p90_ms", "iqr_ms"):
                if row.get(name) is not None:
                    row[name] *= factor
            conn.execute(f"insert into network_measurements ({', '.join(columns)}) values "
                         f"({', '.join('?' * len(columns))})", [row[c] for c in columns])


def test_a_device_with_a_wide_spread_says_it_is_too_noisy(live_server, tmp_path: Path) -> None:
    server = live_server(LATENCY_SERVER_TOO_NOISY_RATIO="1.5")
    arch = str(HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest()))
    with LatencyClient(server.url) as client:
        client.measure_network(arch, resolution=RES)  # stores the reference's figures of this configuration
        _widen_reference_history(tmp_path / "live.db")
        answer = client.measure_network(arch, resolution=RES)
    verdict = answer.verdict
    assert verdict is not None and verdict.upper_ms > 1.5 * verdict.central_ms
    warning = verdict.noise_warning
    assert warning is not None and warning.startswith("the device is too noisy for a tight bound")
    for words in ("drifts by about", "best bound reachable now", "fewer threads", "pinning the server to one core",
                  "quieter moment"):
        assert words in warning
    printed = io.StringIO()
    noise = NoiseWarnings(printed)
    noise.see("http://device:8000", 2.5, answer)
    noise.see("http://device:8000", 2.5, answer)  # once per target
    assert printed.getvalue().count("too noisy") == 1
    assert "http://device:8000 (limit 2.5 ms)" in printed.getvalue()
    # the demo's row for a search that accepted this network with its bound right at the limit
    limit = verdict.upper_ms
    row = {"limit_ms": limit, "table_ms": answer.predicted_ms or verdict.central_ms,
           "verified_central_ms": verdict.central_ms, "verified_upper_ms": verdict.upper_ms,
           "budget_used": verdict.central_ms / limit}
    lines = noise_paragraph([row], noise_warnings([], [answer]))
    text = "\n".join(lines)
    assert "the device was noisy" in text
    assert f"= {verdict.upper_ms / verdict.central_ms:.2f}x, budget used {100 * row['budget_used']:.0f} %" in text
    assert "quieter moment" in text and f"> {warning}" in lines
