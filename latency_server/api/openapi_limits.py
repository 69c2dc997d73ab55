"""The served OpenAPI schema declares this server's limits: ranges, enums, the arch-string pattern, sizes.

The request models in :mod:`shared.api_schemas` carry only the bounds every server shares (finite numbers,
integers below ``INT_CAP``); the limits a server is configured with are checked by
:mod:`latency_server.admission.validate` and written into the schema here, when it is first built, so that a client or a
schema fuzzer sees the contract the server enforces. ``docs/openapi.json`` is this schema under the default
settings (and every backend, as the schema is built without a running service there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from latency_server.admission.validate import arch_pattern
from latency_server.config import Settings

__all__ = ["apply_limits", "install_limited_openapi"]

_MEASURING = ("BlocksRequest", "NetworkRequest")


def _odd_kernels(max_kernel: int) -> list[int]:
    return list(range(1, max_kernel + 1, 2))


def _measuring_settings(props: dict[str, Any], settings: Settings, backends: list[str] | None) -> None:
    props["batch_size"]["maximum"] = settings.max_batch_size
    props["threads"]["maximum"] = settings.max_threads
    if backends is not None:
        props["backend"]["enum"] = list(backends)


def _block_spec(spec: dict[str, Any], settings: Settings) -> None:
    props = spec["properties"]
    for name in ("in_chs", "out_chs"):
        props[name]["maximum"] = settings.max_channels
    props["resolution"]["maximum"] = settings.max_resolution
    props["exp_ratio"]["maximum"] = settings.max_exp_ratio
    props["num_classes"]["maximum"] = settings.max_num_classes
    props["kernel"].pop("minimum", None)
    props["kernel"].pop("maximum", None)
    props["kernel"]["enum"] = _odd_kernels(settings.max_kernel)
    # a head block classifies: it needs classes (JSON Schema 2020-12, which OpenAPI 3.1 schemas are)
    spec["if"] = {"properties": {"type": {"const": "head"}}, "required": ["type"]}
    spec["then"] = {"properties": {"num_classes": {"minimum": 1}}, "required": ["num_classes"]}
    _across_fields(spec, f"an ir block's in_chs x exp_ratio is at most {settings.max_channels}; batch_size x the "
                         f"widest channel count x resolution^2 is at most {settings.max_activation_elements}")


def _across_fields(spec: dict[str, Any], limits: str) -> None:
    """Say in the description what the schema cannot: limits that combine fields."""
    spec["description"] = f"{spec.get('description', '').strip()} Limits across fields: {limits}.".strip()


def _network_request(spec: dict[str, Any], settings: Settings) -> None:
    props = spec["properties"]
    props["arch"]["maxLength"] = settings.max_arch_length
    props["arch"]["pattern"] = arch_pattern(settings)
    props["resolution"]["maximum"] = settings.max_resolution
    for name in ("stem_size", "num_features"):
        props[name]["maximum"] = settings.max_channels
    _across_fields(spec, f"at most {settings.max_network_blocks} blocks in all (repeats counted); batch_size x the "
                         f"widest channel count x (resolution/2)^2 is at most {settings.max_activation_elements}")


def _outside(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` breaks the limits written into ``schema`` (a default beyond a configured maximum)."""
    return ("maximum" in schema and value > schema["maximum"]) or ("enum" in schema and value not in schema["enum"])


def _required_beyond_default(spec: dict[str, Any]) -> None:
    """A property whose default this server refuses (224 px over a 64 px limit) is required instead."""
    for name, prop in spec["properties"].items():
        if "default" in prop and _outside(prop, prop["default"]):
            del prop["default"]
            spec.setdefault("required", []).append(name)


def _operations(paths: dict[str, Any], settings: Settings, backends: list[str] | None) -> None:
    """Query limits, and the bearer token optional where the server has none."""
    maxima = {"batch_size": settings.max_batch_size, "threads": settings.max_threads,
              "resolution": settings.max_resolution}
    token = settings.token.get_secret_value() if settings.token is not None else ""
    for methods in paths.values():
        for op in methods.values():
            if op.get("security") and not token:
                op["security"] = [{}, *op["security"]]
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                if param.get("in") != "query":
                    continue
                if param["name"] in maxima:
                    schema["maximum"] = maxima[param["name"]]
                elif param["name"] == "backend" and backends is not None:
                    schema["enum"] = list(backends)
                if "default" in schema and _outside(schema, schema["default"]):
                    del schema["default"]
                    param["required"] = True


def apply_limits(schema: dict[str, Any], settings: Settings, backends: list[str] | None = None) -> dict[str, Any]:
    """Write ``settings``' limits (and, if given, the available ``backends``) into an OpenAPI ``schema``."""
    components = schema.get("components", {}).get("schemas", {})
    for name in _MEASURING:
        _measuring_settings(components[name]["properties"], settings, backends)
    components["BlocksRequest"]["properties"]["blocks"]["maxItems"] = settings.max_blocks_per_request
    _block_spec(components["BlockSpec"], settings)
    _network_request(components["NetworkRequest"], settings)
    for name in (*_MEASURING, "BlockSpec"):
        _required_beyond_default(components[name])
    _operations(schema.get("paths", {}), settings, backends)
    info = schema.setdefault("info", {})
    limits = (f"Request bodies are at most {settings.max_body_bytes} bytes (413 beyond). Limits in this schema are "
              "the serving process's settings (LATENCY_SERVER_MAX_*).")
    info["description"] = "\n\n".join(text for text in (info.get("description"), limits) if text)
    return schema


def install_limited_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` build FastAPI's schema once, then write the app's limits into it.

    Built while serving, the backend enums list only the backends this device runs.
    """
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            service = getattr(app.state, "service", None)
            backends = list(service.available) if service is not None else None
            app.openapi_schema = apply_limits(build(), app.state.settings, backends)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
