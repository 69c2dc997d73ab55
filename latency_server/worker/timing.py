"""The timing code (run in the measurement worker): warm up, time repeats that fill a budget, summarise.

The method and the figures it yields are plain values in :mod:`latency_server.worker.stats` (re-exported here).
Reusable pieces: :func:`time_runner` (one prepared runner), :func:`measure_module` (one module),
:func:`measure_interleaved` (several modules timed round-robin, so slow drift hits all alike),
:func:`measure_block`, and :class:`NetworkSet` (whole networks over independent rounds, interleaved in time, a
fresh session each: a network and the drift reference, or the networks a table's correction is fitted on).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence

import torch
from torch import nn

from latency_server.worker.backends import Backend, Runner
from latency_server.worker.stats import Method, NetworkFigure, RoundSeries, Stats
from shared.api_schemas import NETWORK_NUM_FEATURES, NETWORK_STEM_SIZE
from shared.arch_string import ArchDef
from shared.block_key import BlockKey
from shared.builders import block_input, build_block, build_network

__all__ = [
    "Method",
    "NetworkFigure",
    "NetworkSet",
    "Stats",
    "measure_block",
    "measure_interleaved",
    "measure_module",
    "time_runner",
]


def _warm(runner: Runner, count: int) -> None:
    for _ in range(count):
        runner.run()


def _timed_loop(
    runner: Runner, min_repeats: int, max_repeats: int, budget_s: float, scale: float = 1.0
) -> list[float]:
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        while len(samples) < max_repeats:
            samples.append(runner.timed() * scale)
            if len(samples) >= min_repeats and time.perf_counter() - start >= budget_s:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def time_runner(runner: Runner, method: Method) -> list[float]:
    """Warm up, then time forwards (seconds each) with garbage collection off."""
    _warm(runner, method.warmup)
    return _timed_loop(runner, method.min_repeats, method.max_repeats, method.budget_s, method.time_scale)


def measure_module(
    backend: Backend, module: nn.Module, example: torch.Tensor, method: Method, *, batch_size: int | None = None
) -> Stats:
    """Prepare ``module`` (eval mode) on ``backend`` and measure it."""
    runner = backend.prepare(module.eval(), example)
    try:
        samples = time_runner(runner, method)
    finally:
        runner.close()
    return Stats.from_seconds(samples, batch_size=batch_size or example.shape[0], warmup=method.warmup)


def measure_interleaved(
    backend: Backend,
    items: Sequence[tuple[nn.Module, torch.Tensor]],
    method: Method,
    *,
    rounds: int = 5,
) -> list[Stats]:
    """Measure several modules round-robin: each round gives every module ``1/rounds`` of the budget.

    All are prepared and warmed first, so drift over the call affects every module alike (used for
    reference networks and correction fits).
    """
    if not items:
        return []
    rounds = max(1, rounds)
    runners = [backend.prepare(module.eval(), example) for module, example in items]
    try:
        for runner in runners:
            _warm(runner, method.warmup)
        per_round_min = max(1, math.ceil(method.min_repeats / rounds))
        per_round_max = max(per_round_min, method.max_repeats // rounds)
        samples: list[list[float]] = [[] for _ in runners]
        for _ in range(rounds):
            for i, runner in enumerate(runners):
                samples[i] += _timed_loop(
                    runner, per_round_min, per_round_max, method.budget_s / rounds, method.time_scale
                )
    finally:
        for runner in runners:
            runner.close()
    return [
        Stats.from_seconds(s, batch_size=example.shape[0], warmup=method.warmup)
        for s, (_, example) in zip(samples, items, strict=True)
    ]


def measure_block(backend: Backend, key: BlockKey, method: Method, *, batch_size: int = 1, seed: int = 0) -> Stats:
    """Measure the module of ``key`` (built exactly as the network builder builds it)."""
    torch.manual_seed(seed)
    module = build_block(key).eval()
    return measure_module(backend, module, block_input(key, batch_size), method, batch_size=batch_size)


class NetworkSet:
    """Whole networks prepared for repeated independent rounds: exported once, a fresh session per round.

    :meth:`measure_round` times every network once, in an order that alternates between rounds, so slow
    drift and load hit all alike; :meth:`figures` summarises each network over the rounds so far.
    """

    def __init__(
        self,
        backend: Backend,
        archs: Sequence[ArchDef],
        resolution: int,
        method: Method,
        *,
        batch_size: int = 1,
        num_classes: int = 1000,
        seed: int = 0,
        first_round: int = 0,
        widths: Sequence[tuple[int, int]] = (),
    ) -> None:
        torch.manual_seed(seed)
        example = torch.randn(batch_size, 3, resolution, resolution)
        self.method = method
        self.batch_size = batch_size
        self.factories = []
        default = (NETWORK_STEM_SIZE, NETWORK_NUM_FEATURES)
        for i, arch in enumerate(archs):
            stem, features = widths[i] if i < len(widths) else default
            torch.manual_seed(seed)  # each network's weights depend only on (arch, seed): exports can be reused
            # the default network's key is the one the model runner's reference uses, so they share an export
            key = ("network", arch, resolution, batch_size, num_classes, seed) + (
                () if (stem, features) == default else (stem, features))
            self.factories.append(backend.factory(
                build_network(arch, num_classes=num_classes, stem_size=stem, num_features=features).eval(), example,
                cache_key=key,
            ))
        self.series = RoundSeries(len(self.factories), batch_size=batch_size, warmup=method.warmup)
        self.per_round, self.pooled = self.series.per_round, self.series.pooled
        self.rounds = first_round  # the order alternates with the round's index, also across sets

    def measure_round(self) -> list[Stats]:
        """One fresh session of every network in turn; returns this round's stats (input order)."""
        order = list(range(len(self.factories)))
        out: dict[int, Stats] = {}
        for i in order if self.rounds % 2 == 0 else order[::-1]:
            runner = self.factories[i]()
            try:
                samples = time_runner(runner, self.method)
            finally:
                runner.close()
            self.pooled[i] += samples
            out[i] = Stats.from_seconds(samples, batch_size=self.batch_size, warmup=self.method.warmup)
            self.per_round[i].append(out[i])
        self.rounds += 1
        return [out[i] for i in order]

    def figures(self) -> list[NetworkFigure]:
        """Each network's figure over the rounds measured so far."""
        return self.series.figures()

