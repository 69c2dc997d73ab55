"""The dashboard in a real browser: a live server builds a 32 px table, headless Chromium renders the pages.

Chromium (Debian's ``chromium`` package) renders each page and dumps its DOM, which the test reads: the table
with its 120 entries, a heatmap cell per option of every block position, points on the drift chart, and a
build's progress on the jobs page while it runs. With ``DASHBOARD_SCREENSHOTS=DIR`` it also saves screenshots of
the overview, the table's heatmap and the drift chart into ``DIR`` (the README's pictures come from there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.search_space import get_space
from tests.live import wait_table

pytestmark = pytest.mark.slow

RES = 32
SPACE = get_space("hardcorenas")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str) -> str:
    """Run headless Chromium with its own throw-away profile; its stdout."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (Debian's package)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dom(url: str) -> str:
    """The page's DOM as Chromium rendered it."""
    return _chromium("--dump-dom", url)


def screenshot(url: str, name: str) -> None:
    """Save a 1280x900 screenshot of ``url`` as ``name`` under $DASHBOARD_SCREENSHOTS (when it is set)."""
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        _chromium(f"--screenshot={Path(folder).resolve() / name}", "--window-size=1280,900", url)


def _progress_while_building(base: str, client: httpx.Client) -> str:
    """The jobs page's DOM caught while a build runs (a build of another thread count starts afresh)."""
    for threads in (2, 3, 4):
        started = client.get("/v1/lut", params={"resolution": RES, "threads": threads})
        assert started.status_code == 202, started.text
        page = dom(f"{base}/ui/jobs")
        for _state, done, total in re.findall(
                r'<tr class="job" data-state="(queued|running)">.*?class="progress-text">(\d+) / (\d+)', page, re.S):
            if int(done) < int(total):
                return page
    pytest.fail("no table build was caught running on the jobs page")


def test_dashboard_pages_render_a_real_table_build(live_server: Callable) -> None:
    server = live_server()
    base = server.url.rstrip("/")
    with httpx.Client(base_url=base, timeout=120.0) as client:
        table = wait_table(client, RES)
        assert len(table["entries"]) == 120

        overview = dom(f"{base}/")
        assert 'id="health" class="ok"' in overview and "Measurements since start" in overview
        screenshot(f"{base}/", "dashboard-overview.png")

        tables = dom(f"{base}/ui/tables")
        (table_id,) = re.findall(r'<tr class="table-row" data-table-id="(\d+)">', tables)
        row = tables.split(f'data-table-id="{table_id}"')[1].split("</tr>")[0]
        assert re.search(r'class="num entries">120<', row), row

        detail = dom(f"{base}/ui/tables/{table_id}")
        cells = re.findall(r'<rect class="cell" data-key="([^"]+)"[^>]*fill="(#[0-9a-f]{6})"', detail)
        assert len(cells) == SPACE.num_blocks * SPACE.num_options
        assert {key for key, _ in cells} == {str(k) for k in table["entries"]}
        assert all(colour != "#dddddd" for _, colour in cells)  # each one measured
        screenshot(f"{base}/ui/tables/{table_id}", "dashboard-table.png")

        drift = dom(f"{base}/ui/drift")
        chart = drift.split(f'id="drift-{table_id}"')[1].split("</svg>")[0]
        assert chart.count('class="point"') >= 1 and 'class="band"' in chart
        screenshot(f"{base}/ui/drift", "dashboard-drift.png")

        jobs = _progress_while_building(base, client)
        assert 'role="progressbar"' in jobs
