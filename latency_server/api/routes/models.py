"""``POST /v1/latency/model``: the device's verdict for a model outside the search space.

Either JSON naming a timm model (:class:`~shared.api_schemas.ModelRequest`), or ``multipart/form-data`` with an
ONNX file in ``file`` and the same settings as form fields (the whole body within
``LATENCY_SERVER_MAX_ONNX_BYTES``). The worker inspects the model first (a known name; a valid, allowed graph;
its parameters, largest activation and multiply-accumulates), the budget admits it, then it is measured as a
network is; an ONNX file measured before at the same configuration is answered from the store.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from latency_server.admission.device_lock import refuse_if_read_only
from latency_server.admission.validate import InputError, check_resolution, check_settings
from latency_server.api.deps import ServiceDep, SettingsDep, require_token
from latency_server.api.routes.common import MEASURING_RESPONSES
from latency_server.api.waiting import results_or_release
from latency_server.worker.model_tasks import ModelInspection, ModelSource
from shared.api_schemas import ErrorResponse, ModelRequest, ModelResponse

router = APIRouter(prefix="/v1/latency", tags=["latency"], dependencies=[Depends(require_token)],
                   responses={**MEASURING_RESPONSES, 413: {
                       "model": ErrorResponse, "description": "the body exceeds LATENCY_SERVER_MAX_ONNX_BYTES"},
                       422: {"model": ErrorResponse, "description": "bad input, an unknown timm name, a refused "
                             "ONNX graph or a model over a limit (the field named in loc)"}})

#: where an ONNX graph's input is not a square image (no height), the drift reference's resolution
_DEFAULT_RESOLUTION = 224
_MIN_RESOLUTION = 32


class OnnxForm(ModelRequest):
    """The form fields beside an ONNX upload: :class:`ModelRequest`'s settings without a timm name."""

    timm: str = Field("", max_length=0, description="unused with a file")


def _form_value(text: str) -> Any:
    """A form field as the JSON value it spells (``1``, ``0.9``, ``true``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _validated(model: type[ModelRequest], data: Any, *, json: bool) -> ModelRequest:
    """``data`` validated, its errors answered as 422 with ``body`` locations."""
    try:
        return model.model_validate_json(data) if json else model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


_OPENAPI_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ModelRequest"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the ONNX model (weights inside the file)"},
        "backend": {"type": "string", "enum": ["onnxruntime"]},
        "threads": {"type": "integer"}, "batch_size": {"type": "integer"},
        "confidence": {"type": "number"}, "profile": {"type": "boolean"}}}},
}}}


def install_model_schemas(app: FastAPI) -> None:
    """Put :class:`ModelRequest` in the OpenAPI components: the route reads its body itself (JSON or a form), so
    FastAPI does not see the model the JSON body follows."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        spec = ModelRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        settings, service = app.state.settings, getattr(app.state, "service", None)
        props = spec["properties"]
        props["batch_size"]["maximum"] = settings.max_batch_size
        props["threads"]["maximum"] = settings.max_threads
        props["resolution"]["maximum"] = settings.max_resolution
        if service is not None:
            props["backend"]["enum"] = list(service.available)
        if props["resolution"]["default"] > settings.max_resolution:
            spec["required"] = [*spec.get("required", []), "resolution"]
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("ModelRequest", spec)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _parse(request: Request, max_json_bytes: int) -> tuple[ModelRequest, ModelSource]:
    """The settings and the model of a JSON or multipart request (JSON within the usual body limit: only an
    upload may use the ONNX limit)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await request.body()
        if len(body) > max_json_bytes:
            raise InputError(("body",), f"body: {len(body)} bytes of JSON exceed the limit {max_json_bytes} "
                                        "(LATENCY_SERVER_MAX_BODY_BYTES; only an ONNX upload may be larger)")
        req = _validated(ModelRequest, body, json=True)
        return req, ModelSource(timm=req.timm)
    if kind != "multipart/form-data":
        raise InputError(("body",), "body: expected application/json (a timm name) or multipart/form-data (an ONNX "
                                    f"file in 'file'), got {kind or 'no content type'!r}")
    async with request.form(max_files=1, max_fields=16) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InputError(("body", "file"), "file: missing (the ONNX model as a file part named 'file')")
        data = await upload.read()
        fields = {k: _form_value(v) for k, v in form.items() if k != "file" and isinstance(v, str)}
    req = _validated(OnnxForm, fields, json=False)
    if not data:
        raise InputError(("body", "file"), "file: empty")
    if req.backend != "onnxruntime":
        raise InputError(("body", "backend"), f"backend: an ONNX file runs on onnxruntime only, got {req.backend!r}")
    digest = await run_in_threadpool(lambda: hashlib.sha256(data).hexdigest())
    return req, ModelSource(onnx=data, sha256=digest)


@router.post("/model", response_model=ModelResponse, openapi_extra=_OPENAPI_BODY)
async def measure_model(request: Request, service: ServiceDep, settings: SettingsDep) -> ModelResponse:
    """Measure a timm model (by name, random weights) or an uploaded ONNX file: the verdict, parameters,
    multiply-accumulates and peak memory (and optionally ONNX Runtime's per-operator profile).

    JSON (`ModelRequest`) names a timm model; `multipart/form-data` uploads an ONNX file in `file` (its settings as
    form fields, the resolution taken from its input) within LATENCY_SERVER_MAX_ONNX_BYTES (413 beyond). Refused
    with 422 before any measuring: an unknown timm name (with close matches), a file that is not a valid ONNX
    model, a graph with custom-domain operators, external data, an input without a static shape or `Loop`/`Scan`/
    `If` control flow, and a model over the parameter, activation, memory or time limits (costed from the graph
    or, for timm, from the model built without weights). The same file at the same settings and confidence is
    answered from the store (`cached`)."""
    req, source = await _parse(request, settings.max_body_bytes)
    check_settings(req, settings, service.available)
    check_resolution(req.resolution, settings, ("body", "resolution"))
    refuse_if_read_only(request.app)
    models = service.models
    inspection: ModelInspection
    (inspection,) = await results_or_release(
        request, service.queue, [await run_in_threadpool(models.inspect, source, req.resolution, req.batch_size)])
    models.refuse(inspection)
    # an ONNX graph's drift reference runs at its input's height (at least the smallest a network request takes)
    resolution = req.resolution if source.onnx is None else max(_MIN_RESOLUTION,
                                                                  inspection.resolution or _DEFAULT_RESOLUTION)
    if source.onnx is not None:
        check_resolution(resolution, settings, ("body", "file"))
        if inspection.batch_size != req.batch_size:
            raise InputError(("body", "batch_size"), f"batch_size: the graph's input has batch {inspection.batch_size}"
                                                     f", the request {req.batch_size} (they must agree)")
        stored = await run_in_threadpool(models.cached, req, source, resolution, req.confidence, req.profile)
        if stored is not None:
            return stored
    future = await run_in_threadpool(functools.partial(
        models.submit, req, source, inspection, resolution, confidence=req.confidence, profile=req.profile))
    (answer,) = await results_or_release(request, service.queue, [future])
    return answer
