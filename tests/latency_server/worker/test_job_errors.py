"""A failed job tells its client a reason code and a request id; the exception's text goes to the log only."""

from __future__ import annotations

import logging
from concurrent.futures import Future

import pytest

from latency_server.errors import TaskKilled
from latency_server.worker.jobs import Job

SECRET = "SELECT password FROM users WHERE name = 'nas'"


def test_a_raw_exception_is_served_as_a_reason_and_a_request_id(caplog: pytest.LogCaptureFixture) -> None:
    job = Job("table", total=2)
    ok, bad = Future(), Future()
    job.track([("block a", ok), ("block b", bad)])
    ok.set_result(None)
    with caplog.at_level(logging.ERROR, logger="latency_server.worker.jobs"):
        bad.set_exception(RuntimeError(SECRET))
    assert job.state == "failed" and job.reason == "error" and job.request_id
    assert job.error == f"block b: error; details in the server log under request id {job.request_id}"
    assert SECRET not in job.error
    logged = caplog.text
    assert job.request_id in logged and SECRET in logged


def test_a_killed_step_keeps_its_reason_code() -> None:
    job = Job("table", total=1)
    job.fail_with("block a", TaskKilled("block a", "timeout", "over 900 s, SELECT 1"))
    assert job.reason == "timeout" and "SELECT" not in (job.error or "")
