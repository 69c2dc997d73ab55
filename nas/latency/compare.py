"""Searched networks and published baselines measured on one latency server, one verdict at a time.

``nas compare`` and the demo's baselines step both use this module: what to measure is a list of :class:`Entry`
(an arch string, a timm name or an ONNX file), :func:`measure_entries` asks the server for each one's verdict in
turn (never two at once: the server's device is one, and two requests would time each other), and
:class:`Measured` holds the figures a comparison shows: the verdict's central figure and bound, parameters and
MACs. The table and ``--json`` forms are here too; the plot is :mod:`nas.latency.compare_plot`.

Parameters and MACs of an arch string are counted here (the server's network answer carries none), on the
network the server measures: the space's classifier width at the measured resolution, as timm's models are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from nas.latency.client import LatencyClient
from nas.latency.table import LatencyTableError

__all__ = ["PUBLISHED_BASELINES", "CompareError", "Entry", "Measured", "Settings", "baseline_entries",
           "comparison_json", "format_table", "measure_entries", "measure_entry", "search_entries", "sort_by_latency"]

#: ``--baselines published``: the paper's six networks and the two MobileNetV3 they are set against
PUBLISHED_BASELINES = ("hardcorenas_a", "hardcorenas_b", "hardcorenas_c", "hardcorenas_d", "hardcorenas_e",
                       "hardcorenas_f", "mobilenetv3_small_100", "mobilenetv3_large_100")

Kind = Literal["arch", "timm", "onnx"]


class CompareError(LatencyTableError):
    """What to compare cannot be read (a missing file, a result without an architecture)."""


@dataclass(frozen=True)
class Settings:
    """How every entry is measured: the same settings for all, so that their figures compare."""

    resolution: int = 224
    backend: str = "onnxruntime"
    threads: int = 1
    confidence: float = 0.95


@dataclass(frozen=True)
class Entry:
    """One network to measure: ``source`` is an arch string, a timm name or an ONNX file's path (``kind``).
    ``searched`` marks the networks a search returned (highlighted beside the baselines)."""

    name: str
    kind: Kind
    source: str
    searched: bool = False
    space: str = "hardcorenas"
    latency_limit_ms: float | None = None  # a search result's limit, shown beside its figures


@dataclass(frozen=True)
class Measured:
    """One entry's figures on the device: the verdict's central figure and upper bound (the raw median where the
    server gives no verdict), its parameters and MACs, and the server's noise warning if the verdict had one."""

    name: str
    kind: Kind
    source: str
    searched: bool
    central_ms: float
    upper_ms: float
    confidence: float | None
    raw_median_ms: float
    parameters: int
    macs: int
    fingerprint: str
    noise_warning: str | None = None
    latency_limit_ms: float | None = None
    seconds: float = 0.0  # wall time of the request (for the demo's time budget)

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 3) if k == "seconds" else v) for k, v in asdict(self).items()}


def search_entries(paths: Sequence[str | Path]) -> list[Entry]:
    """One searched entry per ``--search-result``: a search's folder (its ``result.json``) or the file itself,
    named after the folder. Raises :class:`CompareError` for a missing or unreadable file."""
    entries = []
    for given in paths:
        path = Path(given)
        file = path / "result.json" if path.is_dir() else path
        try:
            result = json.loads(file.read_text())
        except OSError as exc:
            raise CompareError(f"--search-result {given}: cannot read {file}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise CompareError(f"--search-result {given}: {file} is not JSON ({exc})") from None
        if not isinstance(result, dict) or not isinstance(result.get("arch"), str):
            raise CompareError(f"--search-result {given}: {file} has no 'arch' (is it a search's result.json?)")
        name = file.parent.name if file.name == "result.json" and file.parent.name else file.stem
        entries.append(Entry(name=name or "search", kind="arch", source=result["arch"], searched=True,
                             space=str(result.get("space") or "hardcorenas"),
                             latency_limit_ms=result.get("latency_limit_ms")))
    return entries


def baseline_entries(timm: Sequence[str] = (), onnx: Sequence[str | Path] = ()) -> list[Entry]:
    """Baselines by timm name and by ONNX file (each file checked now, before any measurement starts)."""
    entries = [Entry(name=name, kind="timm", source=name) for name in timm]
    for given in onnx:
        path = Path(given)
        if not path.is_file():
            raise CompareError(f"--onnx {given}: no such file")
        entries.append(Entry(name=path.name, kind="onnx", source=str(path)))
    return entries


def _arch_costs(arch: str, space: str, resolution: int) -> tuple[int, int]:
    """Parameters and MACs of the network the server builds for ``arch`` (the space's classifier width)."""
    import torch

    from shared.builders import build_network
    from shared.costs import count_macs, count_params
    from shared.search_space import get_space

    net = build_network(arch, num_classes=get_space(space).num_classes)
    return count_params(net), count_macs(net, torch.zeros(1, 3, resolution, resolution))


def measure_entry(client: LatencyClient, entry: Entry, settings: Settings) -> Measured:
    """One entry's verdict on ``client``'s server (``POST /v1/latency/network`` for an arch string,
    ``/v1/latency/model`` for a timm name or an ONNX file). Server errors propagate as
    :class:`~nas.latency.client.LatencyServerError` with the server's own message (a 422 names close matches)."""
    started = time.monotonic()
    if entry.kind == "arch":
        answer: Any = client.measure_network(entry.source, resolution=settings.resolution, backend=settings.backend,
                                             threads=settings.threads, space=entry.space,
                                             confidence=settings.confidence)
        parameters, macs = _arch_costs(entry.source, entry.space, settings.resolution)
    else:
        source = {"timm": entry.source} if entry.kind == "timm" else {"onnx": entry.source}
        answer = client.measure_model(**source, resolution=settings.resolution, backend=settings.backend,
                                      threads=settings.threads, confidence=settings.confidence)
        parameters, macs = answer.parameters, answer.macs
    verdict = answer.verdict
    median = answer.measured.median_ms
    return Measured(
        name=entry.name, kind=entry.kind, source=entry.source, searched=entry.searched,
        # a server without a drift reference gives no verdict: the median and median + spread, as the search reads it
        central_ms=verdict.central_ms if verdict else median,
        upper_ms=verdict.upper_ms if verdict else median + answer.spread_ms,
        confidence=verdict.confidence if verdict else None,
        raw_median_ms=median, parameters=int(parameters), macs=int(macs), fingerprint=answer.fingerprint,
        noise_warning=verdict.noise_warning if verdict else None, latency_limit_ms=entry.latency_limit_ms,
        seconds=time.monotonic() - started,
    )


def measure_entries(
    client: LatencyClient,
    entries: Sequence[Entry],
    settings: Settings,
    *,
    before_each: Callable[[int, Entry, list[Measured]], bool] | None = None,
    after_each: Callable[[Measured], None] | None = None,
) -> list[Measured]:
    """Each entry's figures, strictly one request after another. ``before_each(i, entry, done)`` may stop the run
    (False: measure no more; the demo's time budget), ``after_each`` sees each result as it arrives."""
    done: list[Measured] = []
    for i, entry in enumerate(entries):
        if before_each is not None and not before_each(i, entry, done):
            break
        done.append(measure_entry(client, entry, settings))
        if after_each is not None:
            after_each(done[-1])
    return done


def sort_by_latency(rows: Sequence[Measured]) -> list[Measured]:
    """Fastest first by central figure (then bound, then name, so that ties print the same every time)."""
    return sorted(rows, key=lambda r: (r.central_ms, r.upper_ms, r.name))


def _millions(value: int) -> str:
    return f"{value / 1e6:.2f} M"


def format_table(rows: Sequence[Measured]) -> str:
    """The plain-text table ``nas compare`` prints: fastest first, searched networks marked ``*``, figures
    right-aligned."""
    header = ("", "name", "central (ms)", "bound (ms)", "params", "MACs")
    cells = [header] + [("*" if r.searched else "", r.name, f"{r.central_ms:.3f}", f"{r.upper_ms:.3f}",
                         _millions(r.parameters), _millions(r.macs)) for r in sort_by_latency(rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                             strict=True))).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])


def comparison_json(rows: Sequence[Measured], settings: Settings, endpoint: str) -> dict[str, Any]:
    """The ``--json`` object: the settings every row was measured with, and the rows fastest first."""
    return {"endpoint": endpoint, **asdict(settings), "batch_size": 1,
            "networks": [r.to_json() for r in sort_by_latency(rows)]}
