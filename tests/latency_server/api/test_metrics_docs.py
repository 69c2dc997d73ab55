"""The shipped Grafana dashboard and alert rules name only metrics the server exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from latency_server.api.metrics import metric_catalogue

GRAFANA = Path(__file__).resolve().parents[3] / "docs" / "grafana"
_SUFFIXES = ("_bucket", "_sum", "_count")


def _exposed() -> set[str]:
    names = set()
    for name, kind, _, _ in metric_catalogue():
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in _SUFFIXES)
    return names


def _named(expr: str) -> set[str]:
    return set(re.findall(r"latency_server_[a-z_]+", expr))


def test_dashboard_and_alerts_use_exposed_metrics() -> None:
    exposed = _exposed()
    dashboard = json.loads((GRAFANA / "latency-server-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())["groups"][0]["rules"]
    exprs += [rule["expr"] for rule in rules]
    used = set().union(*map(_named, exprs))
    assert used and used <= exposed, used - exposed
    assert {"LatencyWorkerDown", "LatencyDriftBeyondBand", "LatencyQueueSaturated"} <= {r["alert"] for r in rules}


def test_catalogue_has_one_entry_per_metric_with_help() -> None:
    catalogue = metric_catalogue()
    assert len({name for name, *_ in catalogue}) == len(catalogue)
    assert all(help_text for *_, help_text in catalogue)
    assert all(name.endswith("_total") for name, kind, *_ in catalogue if kind == "counter")
