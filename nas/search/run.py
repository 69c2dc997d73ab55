"""``nas search`` as a library call: table (file or server), held-out data, frozen supernet, the search, its
outputs and, with a server, the measured guarantee.

This module owns the wiring of one search run and the checks of its inputs; each step is done by the module that
owns it (:mod:`nas.client`, :mod:`nas.data`, :mod:`nas.training.models`, :mod:`nas.search.driver`,
:mod:`nas.search.outputs`, :mod:`nas.search.guarantee`). torch is imported only when a search runs.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from nas.search.bcfw import check_limit
from nas.search.driver import search
from nas.search.guarantee import measured_guarantee
from nas.search.outputs import write_outputs
from nas.search.result import SearchResult, SearchSettings
from shared.api_schemas import NetworkResponse
from shared.search_space import HARDCORENAS, SearchSpace, get_space

__all__ = ["run_search"]

log = logging.getLogger(__name__)


def run_search(
    data: str,
    out_dir: str | Path,
    settings: SearchSettings,
    *,
    lut_path: str | Path | None = None,
    latency_endpoint: str | None = None,
    token: str | None = None,
    supernet_path: str | Path | None = None,
    space: SearchSpace | str = HARDCORENAS,
    device: str = "cpu",
    progress: bool = True,
    max_retries: int = 3,
    use_correction: bool = True,
) -> SearchResult:
    """Table -> model, held-out data, frozen supernet, BCFW, outputs, and (with an endpoint) the measured
    guarantee (:func:`~nas.search.guarantee.measured_guarantee`, at most ``max_retries`` re-runs of the final
    steps). The server's table is used with its fitted whole-network correction unless ``use_correction`` is
    false. Raises ``ValueError`` subclasses for user errors."""
    import torch

    from nas.client import LatencyClient
    from nas.data import build_dataset, num_classes, split_per_class
    from nas.latency_table import LatencyTable
    from nas.progress import table_build_bar
    from nas.search.gradients import SupernetGradients
    from nas.supernet import ElasticSupernet
    from nas.training.models import load_supernet

    space = get_space(space) if isinstance(space, str) else space
    space.check_resolution(settings.resolution)
    if (lut_path is None) == (latency_endpoint is None):
        raise ValueError("give exactly one of a latency table file or a latency endpoint")
    if not (math.isfinite(settings.latency_limit_ms) and settings.latency_limit_ms > 0):
        raise ValueError(f"latency limit must be a positive number of ms, got {settings.latency_limit_ms}")
    client = LatencyClient(latency_endpoint, token=token) if latency_endpoint else None
    try:
        if client is not None:
            with table_build_bar(enabled=progress) as on_progress:
                table = client.fetch_table(
                    space=space.name,
                    resolution=settings.resolution,
                    backend=settings.backend,
                    batch_size=settings.latency_batch_size,
                    threads=settings.threads,
                    use_correction=use_correction,
                    on_progress=on_progress,
                )
        else:
            table = LatencyTable.load(lut_path)  # type: ignore[arg-type]
        table.check_matches(settings.resolution, settings.backend, settings.latency_batch_size)
        model = table.model(space)
        check_limit(model, settings.latency_limit_ms)  # stop before any data or network work

        train = build_dataset(data, "train", settings.resolution, train_transforms=False)
        _, held_out = split_per_class(train, settings.train_percent)
        classes = num_classes(train)
        torch.manual_seed(settings.seed)
        if supernet_path is None:
            log.warning("no --supernet given: searching with a freshly initialised supernet (gradients are noise)")
            supernet = ElasticSupernet(space, num_classes=classes)
        else:
            supernet = load_supernet(supernet_path, space=space)
        grads = SupernetGradients(
            supernet,
            held_out,
            batch_size=settings.batch_size,
            seed=settings.seed,
            aggregate_batches=settings.aggregate_batches,
            bn_statistics=settings.bn_statistics,
            device=device,
        )
        result = search(model, grads, settings, space=space, lut_fingerprint=table.fingerprint, progress=progress)
        result.extra.update(
            {
                "data": data,
                "supernet": str(supernet_path) if supernet_path else None,
                "num_classes": classes,
                "held_out_images": len(held_out),
                "skipped_batches": grads.skipped,
                "lut": {
                    "source": table.source,
                    "backend": table.backend,
                    "batch_size": table.batch_size,
                    "threads": table.threads,
                    "resolution": table.resolution,
                    "fixed_ms": table.fixed_ms,
                    "correction": table.corrections.get("method"),
                },
            }
        )
        write_outputs(result, out_dir)  # the table-guaranteed result is on disk before any measurement
        if client is not None:

            def measure(arch: str) -> NetworkResponse:
                # this process only waits meanwhile: its CPU time shows it competed with the measurement (or not)
                cpu_s = time.process_time()
                answer = client.measure_network(
                    arch,
                    resolution=settings.resolution,
                    backend=settings.backend,
                    batch_size=settings.latency_batch_size,
                    threads=settings.threads,
                    space=space.name,
                    confidence=settings.confidence,
                )
                result.attempts[-1]["client_cpu_s_while_measuring"] = time.process_time() - cpu_s
                return answer

            measured_guarantee(result, measure, max_retries=max_retries,
                               on_attempt=lambda: write_outputs(result, out_dir))
            write_outputs(result, out_dir)
    finally:
        if client is not None:
            client.close()
    return result
