"""The measurement worker's CPU discipline: pinned to the configured CPUs at the configured priority, both applied
before torch starts a thread, reported in the hello, and the pinned CPU set part of the fingerprint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from latency_server.worker.discipline import parse_cpus

PROBE = """
import json, os, sys, threading
from latency_server.worker.discipline import apply_discipline
applied = apply_discipline(tuple(json.loads(sys.argv[1])), int(sys.argv[2]))
seen = {}
thread = threading.Thread(target=lambda: seen.update(cpus=sorted(os.sched_getaffinity(0))))
thread.start(); thread.join()
print(json.dumps({"applied": applied, "process": sorted(os.sched_getaffinity(0)), "thread": seen["cpus"],
                  "nice": os.getpriority(os.PRIO_PROCESS, 0)}))
"""


def _probe(cpus: list[int], nice: int) -> dict:
    """apply_discipline in a fresh interpreter (it pins and re-prioritises the process that calls it)."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cpus), str(nice)], capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout)


@pytest.mark.parametrize(("text", "cpus"), [("", ()), ("1", (1,)), ("0-2,5", (0, 1, 2, 5)), ("3,1,1", (1, 3))])
def test_cpu_lists_parse(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["a", "3-1", "1-x", "-1"])
def test_a_bad_cpu_list_names_the_part(text: str) -> None:
    with pytest.raises(ValueError, match="CPU"):
        parse_cpus(text)


def test_pinning_and_priority_hold_for_threads_started_later() -> None:
    cpu = min(os.sched_getaffinity(0))
    out = _probe([cpu], 3)
    assert out["applied"]["pinned"] == [cpu]
    assert out["process"] == out["thread"] == [cpu]
    assert out["nice"] >= 3 and out["applied"]["nice"] == out["nice"]


def test_a_cpu_not_allowed_is_reported_and_nothing_pinned() -> None:
    allowed = os.sched_getaffinity(0)
    out = _probe([max(allowed) + 64], 0)
    assert out["applied"]["pinned"] is None and "allowed" in out["applied"]["pin_error"]
    assert out["process"] == sorted(allowed)


@pytest.mark.slow
def test_a_pinned_worker_reports_its_cpu_and_gets_its_own_fingerprint(live_server: Callable) -> None:
    cpu = max(os.sched_getaffinity(0))
    plain = live_server()
    with httpx.Client(base_url=plain.url, timeout=60) as client:
        free = client.get("/v1/device").json()
    plain.stop()
    pinned = live_server(LATENCY_SERVER_WORKER_CPUS=str(cpu), LATENCY_SERVER_WORKER_NICE="2")
    with httpx.Client(base_url=pinned.url, timeout=60) as client:
        device = client.get("/v1/device").json()
        assert device["software"]["cpu_affinity"] == str(cpu)
        assert device["software"]["worker_discipline"]["pinned"] == [cpu]
        assert device["software"]["worker_discipline"]["nice"] >= 2
        blocks = client.post("/v1/latency/blocks", json={"blocks": [{"type": "cn", "in_chs": 8, "out_chs": 16,
                                                                     "stride": 1, "resolution": 8, "kernel": 1}]})
        assert blocks.status_code == 200, blocks.text
    assert (device["fingerprint"] != free["fingerprint"]) == (len(os.sched_getaffinity(0)) > 1)
