"""The REST client of the latency server, for every caller: the search, ``nas lut``, ``nas validate``, the demo,
benchmarks and tests.

This module owns the HTTP side of the contract in :mod:`shared.api_schemas`: requests are built from its pydantic
models and answers parsed into them; the table's build flow (``GET /v1/lut`` -> 202 + ``Location`` -> poll
``/v1/jobs/{id}`` until done or failed -> 200) is written here once (:meth:`LatencyClient.wait_for_table`); and
server faults are retried: connection errors by httpx's transport, 5xx and 429 answers with a bounded exponential
backoff that honours ``Retry-After``. Other 4xx answers are the caller's error and are never retried. It imports
only httpx, pydantic, numpy and the project's vocabulary, so it works where only one side's dependencies are
installed.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from nas.latency.table import LatencyTable, LatencyTableError
from shared.api_schemas import (
    NETWORK_NUM_FEATURES,
    NETWORK_STEM_SIZE,
    DeviceResponse,
    HealthResponse,
    JobAccepted,
    JobStatus,
    LutResponse,
    MeasureSettings,
    ModelRequest,
    ModelResponse,
    NetworkRequest,
    NetworkResponse,
    ServerStats,
)
from shared.search_space import HARDCORENAS

__all__ = ["LatencyClient", "LatencyServerError", "ProgressFn", "retry_delay_s"]

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
#: called with every job status polled while a table is built
ProgressFn = Callable[[JobStatus], None]

#: a build that ends "done" while ``GET /v1/lut`` still answers 202 is started again, at most this often
MAX_BUILDS = 1000


class LatencyServerError(LatencyTableError):
    """The server could not be reached, answered an error, or answered outside the contract."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _retryable(status_code: int) -> bool:
    """Server faults and rate limits: worth another try. Other 4xx answers say the request is wrong."""
    return status_code >= 500 or status_code == 429


def retry_delay_s(response: httpx.Response, attempt: int, *, backoff_s: float, max_backoff_s: float) -> float:
    """Seconds to wait before retrying after ``response`` (0-based ``attempt``): its ``Retry-After`` (seconds or
    an HTTP date) when it has one, else ``backoff_s * 2**attempt``; never more than ``max_backoff_s``."""
    delay = backoff_s * 2.0**attempt
    value = response.headers.get("Retry-After")
    if value is not None:
        try:
            delay = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                delay = (when - datetime.now(timezone.utc)).total_seconds()
            except (TypeError, ValueError):
                pass  # unreadable: keep the backoff
    return min(max(delay, 0.0), max_backoff_s)


def _detail(response: httpx.Response) -> str:
    """The server's error message in one line (FastAPI's ``detail``: a string or a list of field errors)."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" if isinstance(d, dict) else str(d)
            for d in detail[:5]
        )
    return str(detail)[:300]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"


def _request(model: type[Model], **fields: Any) -> Model:
    """A query or body checked on this side before it is sent; a bad field is the caller's error, named."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise LatencyTableError(_first_error(exc)) from None


class LatencyClient:
    """A client of one latency server. ``retries`` bounds the extra tries of one request (connection errors,
    5xx, 429); waits double from ``backoff_s`` up to ``max_backoff_s``. ``transport`` replaces httpx's retrying HTTP
    transport (connection errors are then retried only if it retries them). ``http`` speaks through an existing
    client with httpx's interface instead (e.g. an in-process app's test client); it stays the caller's to close."""

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout_s: float = 600.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http: Any = None,
    ) -> None:
        if retries < 0 or backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("retries, backoff_s and max_backoff_s must be >= 0")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # no log line per poll
        self.endpoint = endpoint.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(
            base_url=self.endpoint,
            headers=headers,
            timeout=timeout_s,
            transport=transport if transport is not None else httpx.HTTPTransport(retries=retries),
        )

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> LatencyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on server faults; raises :class:`LatencyServerError` for any answer >= 400."""
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:  # the transport has retried connection errors already
                raise LatencyServerError(f"cannot reach the latency server at {self.endpoint}: {exc}") from None
            if not _retryable(response.status_code) or attempt == self.retries:
                break
            delay = retry_delay_s(response, attempt, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s)
            log.info("latency server answered %d to %s %s; retrying in %.1f s", response.status_code, method, url,
                     delay)
            time.sleep(delay)
        if response.status_code >= 400:
            raise LatencyServerError(
                f"latency server {self.endpoint} answered {response.status_code} to {method} {url}: "
                f"{_detail(response)}",
                status_code=response.status_code,
            )
        return response

    def _parse(self, model: type[Model], response: httpx.Response) -> Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise LatencyServerError(
                f"latency server {self.endpoint} answered {response.request.url.path} outside the contract "
                f"({model.__name__}): {_first_error(exc)}",
                status_code=response.status_code,
            ) from None

    # -- the API -------------------------------------------------------------------------------------------
    def health(self) -> HealthResponse:
        """``GET /healthz``."""
        return self._parse(HealthResponse, self._send("GET", "/healthz"))

    def device(self, *, backend: str = "onnxruntime", batch_size: int = 1, threads: int = 1) -> DeviceResponse:
        """``GET /v1/device``: the device's fingerprint, hardware and software under these settings."""
        params = _request(MeasureSettings, backend=backend, batch_size=batch_size, threads=threads).model_dump()
        return self._parse(DeviceResponse, self._send("GET", "/v1/device", params=params))

    def stats(self) -> ServerStats:
        """``GET /v1/stats``: what the server process has measured since it started."""
        return self._parse(ServerStats, self._send("GET", "/v1/stats"))

    def job_status(self, location: str) -> JobStatus:
        """``GET /v1/jobs/{id}`` (``location`` as the 202 answer's ``Location`` header, or the job id)."""
        url = location if location.startswith("/") else f"/v1/jobs/{location}"
        return self._parse(JobStatus, self._send("GET", url))

    def wait_for_table(
        self,
        *,
        space: str = HARDCORENAS.name,
        resolution: int = 224,
        backend: str = "onnxruntime",
        batch_size: int = 1,
        threads: int = 1,
        poll_interval_s: float = 0.5,
        on_progress: ProgressFn | None = None,
    ) -> LutResponse:
        """``GET /v1/lut`` until the table is complete: on 202, poll the job at ``Location`` (every
        ``poll_interval_s``, each status passed to ``on_progress``) until it is done, then ask again.

        Raises :class:`LatencyServerError` when the build fails or an answer breaks the contract.
        """
        settings = _request(MeasureSettings, backend=backend, batch_size=batch_size, threads=threads)
        params = {"space": space, "resolution": resolution, **settings.model_dump()}
        for _ in range(MAX_BUILDS):
            response = self._send("GET", "/v1/lut", params=params)
            if response.status_code == 200:
                return self._parse(LutResponse, response)
            if response.status_code != 202:
                raise LatencyServerError(f"unexpected answer {response.status_code} from {self.endpoint}/v1/lut",
                                         status_code=response.status_code)
            job = self._parse(JobAccepted, response)
            location = response.headers.get("Location") or f"/v1/jobs/{job.job_id}"
            while True:
                status = self.job_status(location)
                if on_progress is not None:
                    on_progress(status)
                if status.state in ("failed", "cancelled"):
                    raise LatencyServerError(f"the server's table build {status.state}: {status.error}")
                if status.state == "done":
                    break
                time.sleep(poll_interval_s)
        raise LatencyServerError("the server kept answering 202 after its build jobs finished")

    def fetch_table(
        self,
        *,
        space: str = HARDCORENAS.name,
        resolution: int = 224,
        backend: str = "onnxruntime",
        batch_size: int = 1,
        threads: int = 1,
        use_correction: bool = True,
        poll_interval_s: float = 0.5,
        on_progress: ProgressFn | None = None,
    ) -> LatencyTable:
        """The complete table as a :class:`~nas.latency.table.LatencyTable` (:meth:`wait_for_table`), with the
        server's fitted whole-network correction unless ``use_correction`` is false."""
        answer = self.wait_for_table(space=space, resolution=resolution, backend=backend, batch_size=batch_size,
                                     threads=threads, poll_interval_s=poll_interval_s, on_progress=on_progress)
        source = f"{self.endpoint}/v1/lut"
        return LatencyTable.from_json(answer.model_dump(mode="json"), source=source, use_correction=use_correction)

    def measure_network(
        self,
        arch: str,
        *,
        resolution: int = 224,
        backend: str = "onnxruntime",
        batch_size: int = 1,
        threads: int = 1,
        space: str = HARDCORENAS.name,
        confidence: float = 0.95,
        stem_size: int = NETWORK_STEM_SIZE,
        num_features: int = NETWORK_NUM_FEATURES,
    ) -> NetworkResponse:
        """``POST /v1/latency/network``: the measured statistics, the verdict (central figure and upper bound at
        ``confidence``) and the server's table prediction. ``stem_size`` and ``num_features`` build another stem
        and head (a timm model's, e.g. 16 and 1024 for mobilenetv3_small_100; no table prediction then)."""
        body = _request(NetworkRequest, arch=arch, resolution=resolution, space=space, backend=backend,
                        batch_size=batch_size, threads=threads, confidence=confidence, stem_size=stem_size,
                        num_features=num_features)
        # the default stem and head are left out, so the body stays what servers without these fields accept
        defaults = {name for name, value in (("stem_size", NETWORK_STEM_SIZE), ("num_features", NETWORK_NUM_FEATURES))
                    if getattr(body, name) == value}
        response = self._send("POST", "/v1/latency/network", json=body.model_dump(exclude=defaults))
        return self._parse(NetworkResponse, response)

    def measure_model(
        self,
        *,
        timm: str | None = None,
        onnx: str | Path | None = None,
        resolution: int = 224,
        backend: str = "onnxruntime",
        batch_size: int = 1,
        threads: int = 1,
        confidence: float = 0.95,
        profile: bool = False,
    ) -> ModelResponse:
        """``POST /v1/latency/model``: the verdict for a timm model by name (random weights, at ``resolution``) or
        an ONNX file (uploaded; its input shape sets the resolution), with parameters, MACs and peak memory."""
        if (timm is None) == (onnx is None):
            raise LatencyTableError("measure_model: give exactly one of timm (a model name) or onnx (a file)")
        body = _request(ModelRequest, timm=timm or "onnx", resolution=resolution, backend=backend,
                        batch_size=batch_size, threads=threads, confidence=confidence, profile=profile)
        if timm is not None:
            response = self._send("POST", "/v1/latency/model", json=body.model_dump())
        else:
            try:
                data = Path(onnx).read_bytes()  # type: ignore[arg-type]
            except OSError as exc:
                raise LatencyTableError(f"onnx: cannot read {onnx}: {exc}") from None
            fields = {k: str(v).lower() if isinstance(v, bool) else str(v)
                      for k, v in body.model_dump(exclude={"timm", "resolution"}).items()}
            response = self._send("POST", "/v1/latency/model", data=fields,
                                  files={"file": (Path(onnx).name, data, "application/octet-stream")})
        return self._parse(ModelResponse, response)
