"""``nas search`` as a library call: tables (files or servers, one per target), held-out data, frozen supernet, the
search, its outputs and, with servers, the measured guarantee (one target's, or every target's of a fleet).

This module owns the wiring of one search run and the checks of its inputs; each step is done by the module that
owns it (:mod:`nas.latency.client`, :mod:`nas.data`, :mod:`nas.training.models`, :mod:`nas.search.driver`,
:mod:`nas.search.outputs`, :mod:`nas.search.guarantee`). torch is imported only when a search runs.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import astuple, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nas.search.driver import search, step_note
from nas.search.fleet import Target, check_distinct, check_fleet
from nas.search.fleet_guarantee import fleet_guarantee
from nas.search.guarantee import measured_guarantee
from nas.search.latency_limit import check_limit
from nas.search.noise_warning import NoiseWarnings
from nas.search.outputs import write_frontier, write_outputs
from nas.search.resource_limits import check_limits, resource_limits
from nas.search.result import SearchResult, SearchSettings
from shared.api_schemas import NetworkResponse
from shared.search_space import HARDCORENAS, SearchSpace, get_space

if TYPE_CHECKING:
    from nas.latency.table import LatencyTable

__all__ = ["run_search"]

log = logging.getLogger(__name__)


def run_search(
    data: str,
    out_dir: str | Path,
    settings: SearchSettings,
    *,
    lut_path: str | Path | None = None,
    latency_endpoint: str | None = None,
    targets: Sequence[Target] | None = None,
    token: str | None = None,
    supernet_path: str | Path | None = None,
    space: SearchSpace | str = HARDCORENAS,
    device: str = "cpu",
    progress: bool = True,
    max_retries: int = 3,
    use_correction: bool = True,
    sweep: Sequence[Sequence[float]] | None = None,
    max_params: float | None = None,
    max_macs: float | None = None,
) -> SearchResult | list[SearchResult]:
    """Tables -> models, held-out data, frozen supernet, BCFW, outputs, and (with endpoints) the measured
    guarantee (at most ``max_retries`` re-runs of the final steps). One target is ``lut_path`` or
    ``latency_endpoint`` with ``settings.latency_limit_ms``; a fleet is ``targets`` (the first one's limit and
    settings become ``settings``'). A server's table is used with its fitted whole-network correction unless
    ``use_correction`` is false. ``sweep``: points, each one factor per target scaling its limit: one search
    per point with the supernet and tables loaded once, each in ``OUT/sweep-N``, and the accuracy/latency
    frontier (:func:`~nas.search.outputs.write_frontier`); then the list of results is returned. ``max_params``
    / ``max_macs``: hard limits on the network's parameter count and MACs (at ``settings.resolution``, with the
    data's classes), met by every iterate and the returned network (:mod:`nas.search.resource_limits`; a sweep
    keeps them). Raises ``ValueError`` subclasses for user errors."""
    from nas.latency.client import LatencyClient

    space = get_space(space) if isinstance(space, str) else space
    space.check_resolution(settings.resolution)
    if targets is None:
        if (lut_path is None) == (latency_endpoint is None):
            raise ValueError("give exactly one of a latency table file or a latency endpoint")
        targets = [Target(settings.latency_limit_ms, endpoint=latency_endpoint,
                          lut=None if lut_path is None else str(lut_path), backend=settings.backend,
                          threads=settings.threads, batch_size=settings.latency_batch_size)]
    elif lut_path is not None or latency_endpoint is not None or not targets:
        raise ValueError("give either targets or one latency table file / endpoint, not both")
    check_distinct(targets)
    for target in targets:
        if not (math.isfinite(target.limit_ms) and target.limit_ms > 0):
            raise ValueError(f"latency limit must be a positive number of ms, got {target.limit_ms}")
    clients: dict[str, LatencyClient] = {}
    try:
        tables, targets = zip(*(_table(t, settings, space, clients, token, progress, use_correction)
                                for t in targets), strict=True)
        first = targets[0]
        settings = replace(settings, latency_limit_ms=first.limit_ms, backend=first.backend, threads=first.threads,
                           latency_batch_size=first.batch_size)
        models = [table.model(space) for table in tables]
        resources = _resources(data, settings, space, max_params, max_macs)
        points = [tuple(1.0 for _ in targets)] if sweep is None else [tuple(p) for p in sweep]
        for point in points:  # every limit checked before any data or network work
            if len(point) != len(targets):
                raise ValueError(f"sweep point {':'.join(map(str, point))}: {len(point)} factors for "
                                 f"{len(targets)} targets")
            constraints = [(m, f * t.limit_ms) for m, f, t in zip(models, point, targets, strict=True)]
            if resources:
                check_limits(constraints, resources, [t.label for t in targets])
            elif len(constraints) == 1:
                check_limit(*constraints[0])
            else:
                check_fleet(constraints, [t.label for t in targets])
        supernet, held_out, classes, judge = _load(data, settings, space, supernet_path, device)
        results = []
        for n, point in enumerate(points):
            point_targets = [replace(t, limit_ms=f * t.limit_ms) for f, t in zip(point, targets, strict=True)]
            point_dir = Path(out_dir) if sweep is None else Path(out_dir) / f"sweep-{n + 1}"
            results.append(_search_and_verify(data, replace(settings, latency_limit_ms=point_targets[0].limit_ms),
                                              space, tables, models, point_targets, clients, supernet, held_out,
                                              classes, supernet_path, device, progress, max_retries, point_dir,
                                              judge, resources))
        if sweep is not None:
            write_frontier(results, points, _accuracies(supernet, data, settings, results, device), out_dir)
    finally:
        for client in clients.values():
            client.close()
    return results[0] if sweep is None else results


def _search_and_verify(data, settings, space, tables, models, targets, clients, supernet, held_out, classes,
                       supernet_path, device, progress, max_retries, out_dir, judge, resources=()) -> SearchResult:
    """One search under ``targets``' limits, its outputs in ``out_dir`` and, with servers, the verdicts."""
    import torch

    from nas.search.gradients import SupernetGradients

    torch.manual_seed(settings.seed)
    grads = SupernetGradients(supernet, held_out, batch_size=settings.batch_size, seed=settings.seed,
                              aggregate_batches=settings.aggregate_batches, bn_statistics=settings.bn_statistics,
                              device=device)
    result = search(models[0], grads, settings, space=space, lut_fingerprint=tables[0].fingerprint,
                    progress=progress, others=[(m, t.limit_ms) for m, t in zip(models[1:], targets[1:], strict=True)],
                    judge=judge, resources=resources)
    if result.extended_steps:
        print(step_note(result.step_budget), file=sys.stderr, flush=True)
    result.extra.update({"data": data, "supernet": str(supernet_path) if supernet_path else None,
                         "num_classes": classes, "held_out_images": len(held_out), "skipped_batches": grads.skipped})
    result.target_info = [_describe(t, table) for t, table in zip(targets, tables, strict=True)]
    table = tables[0]
    result.extra["lut"] = {"source": table.source, "backend": table.backend, "batch_size": table.batch_size,
                           "threads": table.threads, "resolution": table.resolution, "fixed_ms": table.fixed_ms,
                           "correction": table.corrections.get("method")}
    write_outputs(result, out_dir)  # the table-guaranteed result is on disk before any measurement
    noise = NoiseWarnings()  # a too-noisy device is named once per target
    measures = [None if t.endpoint is None else _measure_fn(result, clients[t.endpoint], t, settings, space, noise)
                for t in targets]
    on_attempt = lambda: write_outputs(result, out_dir)  # noqa: E731
    if len(targets) == 1 and measures[0] is not None:
        measured_guarantee(result, measures[0], max_retries=max_retries, on_attempt=on_attempt)
    elif len(targets) > 1 and any(m is not None for m in measures):
        fleet_guarantee(result, measures, max_retries=max_retries, on_attempt=on_attempt)
    write_outputs(result, out_dir)
    return result


def _resources(data: str, settings: SearchSettings, space: SearchSpace, max_params: float | None,
               max_macs: float | None) -> tuple:
    """The parameter/MAC limits asked for, over the networks the search returns: the data's classes."""
    if max_params is None and max_macs is None:
        return ()
    from nas.data import build_dataset, num_classes

    classes = num_classes(build_dataset(data, "train", settings.resolution, train_transforms=False))
    return resource_limits(space, settings.resolution, classes, max_params=max_params, max_macs=max_macs)


def _accuracies(supernet, data: str, settings: SearchSettings, results: list[SearchResult], device: str) -> list:
    """Held-out top-1 of every result's network: the supernet's child, BN recalibrated, on the data's val split."""
    from nas.data import build_dataset
    from nas.evaluation.child_accuracy import ChildEvaluator

    train = build_dataset(data, "train", settings.resolution, train_transforms=False)
    val = build_dataset(data, "val", settings.resolution, train_transforms=False)
    evaluator = ChildEvaluator(supernet, train, val, seed=settings.seed, device=device)
    return [evaluator.evaluate(r.choice) for r in results]


def _table(target: Target, settings: SearchSettings, space: SearchSpace, clients: dict, token: str | None,
           progress: bool, use_correction: bool) -> tuple[LatencyTable, Target]:
    """A target's table (fetched from its server, or loaded) and the target with its settings filled in."""
    from nas.latency.client import LatencyClient
    from nas.latency.table import LatencyTable
    from nas.progress import table_build_bar

    if target.lut is not None:
        table = LatencyTable.load(target.lut)
        target = target.with_defaults(table.backend, table.threads or 1, table.batch_size)
    else:
        target = target.with_defaults(settings.backend, settings.threads, settings.latency_batch_size)
        endpoint = str(target.endpoint)
        if endpoint not in clients:
            clients[endpoint] = LatencyClient(endpoint, token=token)
        with table_build_bar(enabled=progress) as on_progress:
            table = clients[endpoint].fetch_table(space=space.name, resolution=settings.resolution,
                                                  backend=str(target.backend), batch_size=int(target.batch_size),
                                                  threads=int(target.threads), use_correction=use_correction,
                                                  on_progress=on_progress)
    table.check_matches(settings.resolution, str(target.backend), int(target.batch_size))
    return table, target


def _describe(target: Target, table: LatencyTable) -> dict:
    """A target's source and settings as result.json records them."""
    return {
        ("lut" if target.lut is not None else "endpoint"): target.lut or target.endpoint,
        "backend": target.backend,
        "threads": target.threads,
        "batch_size": target.batch_size,
        "source": table.source,
        "fingerprint": table.fingerprint,
        "resolution": table.resolution,
        "fixed_ms": table.fixed_ms,
        "correction": table.corrections.get("method"),
    }


def _load(data: str, settings: SearchSettings, space: SearchSpace, supernet_path: str | Path | None, device: str):
    """The frozen supernet, the held-out images the gradients come from, the number of classes and, when the final
    steps choose among candidates, the judge of their children (BN statistics from the search's training images,
    accuracy on the held-out ones)."""
    import torch

    from nas.data import build_dataset, num_classes, split_per_class
    from nas.models.supernet import ElasticSupernet
    from nas.training.models import load_supernet

    train = build_dataset(data, "train", settings.resolution, train_transforms=False)
    training, held_out = split_per_class(train, settings.train_percent)
    classes = num_classes(train)
    torch.manual_seed(settings.seed)
    if supernet_path is None:
        log.warning("no --supernet given: searching with a freshly initialised supernet (gradients are noise)")
        supernet = ElasticSupernet(space, num_classes=classes)
    else:
        supernet = load_supernet(supernet_path, space=space)
    judge = None
    if settings.child_candidates > 1:
        from nas.evaluation.child_accuracy import ChildEvaluator

        evaluator = ChildEvaluator(supernet, training, held_out, seed=settings.seed, device=device)
        # a child's figures depend on its choice alone (fixed batches), and the verdict's re-runs propose mostly
        # the same candidates again: each is evaluated once
        judge = functools.cache(lambda choice: astuple(evaluator.evaluate(choice)))
    return supernet, held_out, classes, judge


def _measure_fn(result: SearchResult, client, target: Target, settings: SearchSettings, space: SearchSpace,
                noise: NoiseWarnings | None = None):
    """``measure(arch, confidence)`` on ``target``'s server, recording the client's CPU time while it waits and
    printing the server's noise warning (once per target)."""

    def measure(arch: str, confidence: float) -> NetworkResponse:
        # this process only waits meanwhile: its CPU time shows it competed with the measurement (or not)
        cpu_s = time.process_time()
        answer = client.measure_network(arch, resolution=settings.resolution, backend=target.backend,
                                        batch_size=target.batch_size, threads=target.threads, space=space.name,
                                        confidence=confidence)
        result.attempts[-1].setdefault("client_cpu_s_while_measuring", 0.0)
        result.attempts[-1]["client_cpu_s_while_measuring"] += time.process_time() - cpu_s
        if noise is not None:
            noise.see(target.label, target.limit_ms, answer)
        return answer

    return measure
