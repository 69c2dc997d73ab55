"""Timing whole networks in the test process: what the worker's NetworkSet does, for tests that need a figure."""

from __future__ import annotations

from collections.abc import Sequence

from latency_server.worker.backends import Backend
from latency_server.worker.stats import Method, NetworkFigure
from latency_server.worker.timing import NetworkSet
from shared.arch_string import ArchDef, parse_arch

__all__ = ["measure_network", "measure_networks"]


def measure_networks(
    backend: Backend,
    archs: Sequence[ArchDef | str],
    resolution: int,
    method: Method,
    *,
    batch_size: int = 1,
    rounds: int = 1,
    num_classes: int = 1000,
    seed: int = 0,
) -> list[NetworkFigure]:
    """Several whole networks over ``rounds`` independent rounds, interleaved in time (exported once each)."""
    parsed = [parse_arch(a) if isinstance(a, str) else a for a in archs]
    nets = NetworkSet(backend, parsed, resolution, method, batch_size=batch_size, num_classes=num_classes, seed=seed)
    for _ in range(max(1, rounds)):
        nets.measure_round()
    return nets.figures()


def measure_network(
    backend: Backend,
    arch: ArchDef | str,
    resolution: int,
    method: Method,
    *,
    batch_size: int = 1,
    rounds: int = 1,
    num_classes: int = 1000,
    seed: int = 0,
) -> NetworkFigure:
    """One whole network over ``rounds`` independent rounds (a fresh session each, exported once)."""
    return measure_networks(backend, [arch], resolution, method, batch_size=batch_size, rounds=rounds,
                            num_classes=num_classes, seed=seed)[0]
