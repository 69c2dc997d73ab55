"""``GET /metrics`` and ``GET /v1/tables`` against a real server: the counters move with real work."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.published import PUBLISHED
from tests.live import wait_table

pytestmark = pytest.mark.slow  # a real server process building a table

RES = 32
BLOCK = {"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 16, "exp_ratio": 3, "kernel": 3,
         "se_ratio": 0, "act": "relu"}


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by name and sorted labels (the text must parse as Prometheus' format)."""
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_real_work_and_tables_report_their_drift(live_server) -> None:
    server = live_server()
    with server.client() as client:
        before = _samples(client)
        assert _value(before, "latency_server_worker_up") == 1

        resp = client.post("/v1/latency/blocks", json={"blocks": [BLOCK]})
        assert resp.status_code == 200 and resp.json()["results"][0]["cached"] is False
        huge = {**BLOCK, "type": "cn", "in_chs": 1024, "out_chs": 1024, "resolution": 1024, "kernel": 1}
        over = client.post("/v1/latency/blocks", json={"blocks": [huge], "batch_size": 256})
        assert over.status_code == 422 and over.json()["detail"][0]["type"] == "over_budget"
        invalid = client.post("/v1/latency/blocks", json={"blocks": [{**BLOCK, "kernel": 4}]})
        assert invalid.status_code == 422
        assert client.get("/v1/jobs/no-such-job").status_code == 404

        after = _samples(client)
        measured = ("latency_server_measurements_total", {"kind": "block", "backend": "onnxruntime"})
        assert _value(after, measured[0], **measured[1]) == _value(before, measured[0], **measured[1]) + 1
        assert _value(after, "latency_server_refusals_total", reason="over_budget", status="422") == 1
        assert sum(v for (name, labels), v in after.items()
                   if name == "latency_server_refusals_total" and ("reason", "over_budget") not in labels) == 1
        # requests are counted by the route's template, never by the raw path
        routes = {dict(labels)["route"] for (name, labels), _ in after.items()
                  if name == "latency_server_http_requests_total"}
        assert "/v1/jobs/{job_id}" in routes and "/v1/latency/blocks" in routes
        assert not any("no-such-job" in r for r in routes)
        assert _value(after, "latency_server_http_requests_total", route="/v1/latency/blocks", method="POST",
                      status="200") == 1

        # a table build and a network verdict: drift, the verdict's margin, the build's progress, /v1/tables
        wait_table(client, RES)
        arch = PUBLISHED["B"].arch
        net = client.post("/v1/latency/network", json={"arch": arch, "resolution": RES})
        assert net.status_code == 200, net.text
        body = net.json()
        final = _samples(client)
        drift = _value(final, "latency_server_drift_ratio", backend="onnxruntime", threads="1", batch="1",
                       resolution=str(RES))
        assert drift == pytest.approx(body["drift_ratio"])
        assert _value(final, "latency_server_verdict_bound_ratio_count", backend="onnxruntime") == 1
        done = [v for (name, labels), v in final.items() if name == "latency_server_job_done_steps"]
        total = [v for (name, labels), v in final.items() if name == "latency_server_job_total_steps"]
        assert done and done == total  # the finished build, every step done
        assert _value(final, "latency_server_measurements_total", kind="network", backend="onnxruntime") == 1
        assert _value(final, "latency_server_measurements_total", kind="reference", backend="onnxruntime") >= 1
        assert arch not in client.get("/metrics").text  # no client's network leaks through the metrics

        tables = client.get("/v1/tables").json()["tables"]
        assert len(tables) == 1
        table = tables[0]
        assert (table["space"], table["resolution"], table["backend"], table["threads"], table["batch_size"]) == \
            ("hardcorenas", RES, "onnxruntime", 1, 1)
        assert table["complete"] and table["entries"] > 0 and table["built_at"] and table["loo_error_pct"] is not None
        assert table["reference_now_at"] and table["drift_ratio"] == pytest.approx(
            table["reference_now_ms"] / table["reference_ms"])
        assert arch not in client.get("/v1/tables").text

        stats = client.get("/v1/stats").json()
        assert stats["last_verdict"]["upper_ms"] == pytest.approx(body["verdict"]["upper_ms"])
