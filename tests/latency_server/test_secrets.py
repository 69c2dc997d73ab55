"""Secrets stay out of output: a database password never appears in what the command line prints or logs, and
other clients' networks stay hidden from readers without the token."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.latency_server.conftest import BIN, TOKEN

PASSWORD = "PASSWORD"  # noqa: S105 - the secret the output must not show
URL = f"postgresql+psycopg://nas:{PASSWORD}@127.0.0.1:1/x"  # nothing listens on port 1


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "1"]])
def test_a_database_password_is_in_no_output(command: list[str]) -> None:
    env = {**os.environ, "LATENCY_SERVER_LOG_LEVEL": "debug"}
    proc = subprocess.run([str(BIN / "latency-server"), *command, "--db", URL], capture_output=True, text=True,
                          timeout=120, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "cannot migrate database" in output, output[-2000:]
    assert PASSWORD not in output, output[-2000:]
    assert "nas:***@127.0.0.1" in output


def test_other_clients_networks_are_hidden_from_readers_without_the_token(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(token=TOKEN)
    service = client.app.state.service  # type: ignore[attr-defined]
    label = "block ir_r1_k5_s2_e6_c40_se0.25@r56 of another client"
    started, release = threading.Event(), threading.Event()
    future = service.queue.submit(("probe",), lambda: (started.set(), release.wait(30)), label=label)
    try:
        assert started.wait(30)
        service.worker.last_error = "timeout: network [['ds_r1_k3_s1_e1_c16']] at 224 px"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        hidden, shown = client.get("/v1/stats").json(), client.get("/v1/stats", headers=auth).json()
        assert hidden["current_task"]["label"] == "block" and shown["current_task"]["label"] == label
        health = client.get("/healthz").json()["worker"]["last_error"]
        assert health == "timeout" and "ds_r1" in client.get("/healthz", headers=auth).json()["worker"]["last_error"]
    finally:
        release.set()
        future.result(30)
