"""The dashboard's pages in process: a real app on a SQLite file, its figures inserted through the store."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from latency_server.service import LatencyService
from latency_server.store.models import NetworkMeasurement, utcnow
from latency_server.tables.reference import reference_arch
from latency_server.ui.routes import TOKEN_COOKIE
from latency_server.worker.stats import Stats
from shared.api_schemas import MeasureSettings
from shared.arch_string import format_arch
from shared.search_space import get_space
from tests.live import TOKEN

RES = 32
SPACE = get_space("hardcorenas")


def _stats(ms: float) -> Stats:
    return Stats(median_ms=ms, iqr_ms=0.01 * ms, p90_ms=1.1 * ms, mean_ms=ms, min_ms=0.9 * ms, samples=5, warmup=10)


def _fill(service: LatencyService, *, networks: int = 3, references: int = 6) -> int:
    """A complete 32 px table, the reference's history and ``networks`` verdicts; the table's id."""
    store, method = service.store, service.measurer.method.to_dict()
    fp_id = store.ensure_fingerprint(service.fingerprint(MeasureSettings()))
    keys = list(SPACE.fixed_keys(RES).values()) + SPACE.searchable_keys(RES)
    for i, key in enumerate(keys):
        store.save_block(fp_id, key, _stats(0.01 + 0.001 * i), method)
    table = store.ensure_table(fp_id, SPACE.name, RES, len(keys))
    store.update_table_meta(table.id, {"reference": {"arch": reference_arch(SPACE), "median_ms": 1.0,
                                                     "build_drift_pct": 2.0, "measurements": []},
                                       "correction": {"loo_mape_pct": 3.25}})
    store.mark_table_complete(table.id)
    store.save_reference_figures(fp_id, reference_arch(SPACE), RES, [_stats(1.0 + 0.01 * i) for i in range(references)],
                                 method)
    arch = format_arch(SPACE.arch_from_choice(SPACE.heaviest()))
    for i in range(networks):
        verdict = {"central_ms": 2.0 + i, "upper_ms": 2.5 + i, "confidence": 0.95, "rounds": 7}
        store.save_network(fp_id, arch, RES, _stats(2.0 + i), {**method, "rounds": 7, "verdict": verdict},
                           predicted_ms=2.1 + i)
    return table.id


@pytest.fixture
def filled(make_client: Any) -> tuple[TestClient, int]:
    client = make_client()
    return client, _fill(client.app.state.service)


def test_overview_shows_the_device_worker_queue_and_counters(make_client: Any) -> None:
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and 'id="health" class="ok"' in page.text
    fingerprint = client.get("/v1/device").json()["fingerprint"]
    assert fingerprint in page.text
    assert re.search(r'id="queue-depth">0<', page.text)
    assert "Refusals by reason" in page.text and "none since start" in page.text


def test_tables_page_lists_the_table_and_its_heatmap_has_a_cell_per_option(filled: tuple[TestClient, int]) -> None:
    client, table_id = filled
    listing = client.get("/ui/tables").text
    assert f'data-table-id="{table_id}"' in listing
    assert re.search(r'class="num entries">120<', listing)  # every searchable entry, no "/ expected"
    assert "3.25 %" in listing and "1 ms" in listing  # the correction's LOO error and the reference level
    detail = client.get(f"/ui/tables/{table_id}").text
    cells = re.findall(r'<rect class="cell" data-key="([^"]+)"', detail)
    assert len(cells) == SPACE.num_blocks * SPACE.num_options  # stages x blocks rows, one column per option
    assert set(cells) == {str(k) for k in SPACE.searchable_keys(RES)}
    assert "#dddddd" not in detail  # every cell measured
    assert detail.count('class="optional"') == SPACE.num_stages * (SPACE.max_depth - min(SPACE.depths))
    assert client.get("/ui/tables/99999").status_code == 404


def test_drift_page_draws_the_reference_history_with_the_band(filled: tuple[TestClient, int]) -> None:
    client, table_id = filled
    page = client.get("/ui/drift").text
    chart = page.split(f'id="drift-{table_id}"')[1].split("</svg>")[0]
    assert chart.count('class="point"') == 6 and 'class="band"' in chart and 'class="level"' in chart
    assert "elasticity" in page and "+5.0 %" in page  # the newest reference figure, 1.05 ms, against 1.0 at the build


def test_verdicts_page_lists_the_measurements_and_charts_predicted_against_measured(
        filled: tuple[TestClient, int]) -> None:
    client, _ = filled
    page = client.get("/ui/verdicts").text
    assert page.count('<tr class="verdict">') == 3  # the reference's own rounds are not verdicts
    assert "2.5 ms" in page and "95 %" in page and "2.1 ms" in page
    chart = page.split('id="predicted-vs-measured"')[1].split("</svg>")[0]
    assert chart.count('class="point"') == 3 and 'class="diagonal"' in chart


def test_pages_stay_bounded_with_a_thousand_stored_figures(filled: tuple[TestClient, int]) -> None:
    client, _ = filled
    service: LatencyService = client.app.state.service
    fp_id = service.fingerprint(MeasureSettings()).id
    rows = [NetworkMeasurement(fingerprint_id=fp_id, arch=f"net{i}", resolution=RES, predicted_ms=1.0 + i / 1000,
                               method={}, settings_hash=service.store.settings_hash,
                               measured_at=utcnow() - timedelta(seconds=i), **asdict(_stats(1.0 + i / 900)))
            for i in range(1200)]
    with service.store.sessions() as session:
        session.add_all(rows)
        session.commit()
    page = client.get("/ui/verdicts").text
    assert page.count('<tr class="verdict">') == 100
    assert page.split('id="predicted-vs-measured"')[1].split("</svg>")[0].count('class="point"') == 1000


def test_pages_with_clients_networks_need_the_token(make_client: Any) -> None:
    client = make_client(token=TOKEN)
    for path in ("/ui/verdicts", "/ui/jobs"):
        assert client.get(path).status_code == 401
        assert client.get(path, params={"token": "wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for path in ("/", "/ui/tables", "/ui/drift"):  # what the JSON serves without a token
        assert client.get(path).status_code == 200
    opened = client.get("/ui/jobs", params={"token": TOKEN})
    assert opened.status_code == 200 and opened.cookies.get(TOKEN_COOKIE) == TOKEN
    assert client.get("/ui/verdicts").status_code == 200  # the cookie the browser kept
    client.cookies.clear()
    assert client.get("/ui/verdicts").status_code == 401
