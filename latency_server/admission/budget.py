"""Budgets before work: what a request would cost the device, checked against configured limits first.

:func:`task_cost` is the one place a cost is computed, from the same task descriptions the worker runs (a
block, or a set of whole networks over rounds): parameters, the largest activation (batch x channels x H x W;
an inverted residual's expanded width is ``in_chs x exp_ratio``), multiply-adds, estimated memory and estimated
run time at the device's measured speed. A request's cost is that of its tasks (:func:`request_cost`): block
requests, network requests and whole-table builds (missing entries plus reference and calibration networks)
alike. A network's resolution follows timm's builder: strides past output stride 32 become dilations, so deep
stride-2 stacks keep their resolution. :class:`Budget` checks the cost against the ``LATENCY_SERVER_MAX_*``
limits and refuses with an :class:`~latency_server.errors.OverBudget` (422) naming the limit and the figure,
before anything is queued; a worker call that would outlast ``LATENCY_SERVER_TASK_TIMEOUT_S`` is refused too,
instead of being admitted and killed.

The device's speed (multiply-adds per second) is learned from stored block figures as the server reads and
writes them, apart for each backend and configuration (threads, batch size): one client's figures with eight
threads or a large batch never shorten the estimate of another's work. Before any, a conservative default is
assumed. The estimates are deliberately rough and on the
heavy side: the worker's own time and memory limits catch what they miss.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from latency_server.errors import OverBudget
from latency_server.worker.model_tasks import ModelTask
from latency_server.worker.stats import Method
from latency_server.worker.tasks import BlockTask, NetworkTask
from shared.api_schemas import NETWORK_NUM_FEATURES, NETWORK_STEM_SIZE, MeasureSettings
from shared.arch_string import ArchDef
from shared.block_key import BlockKey

__all__ = ["Budget", "Cost", "DeviceSpeed", "Limits", "block_figures", "request_cost", "task_cost"]

#: timm's ``EfficientNetBuilder(output_stride=32)``: a stride that would take the network past it becomes a
#: dilation, so the block keeps its input's resolution
OUTPUT_STRIDE = 32
_FLOAT_BYTES = 4
#: per-run overhead of the runtime for each layer (kernel launches, bookkeeping)
_LAYER_OVERHEAD_S = 20e-6
#: building, exporting and loading one model, plus its weights at this rate
_BLOCK_SETUP_S, _NETWORK_SETUP_S, _SESSION_S = 0.5, 3.0, 0.2
_EXPORT_BYTES_PER_S = 50e6


@dataclass(frozen=True)
class Cost:
    """What work costs: per-model maxima (parameters, activation, memory) and totals (multiply-adds, time)."""

    parameters: int
    activation_elements: int
    macs: int  # one forward pass of the whole batch (summed over a request's models)
    memory_bytes: int
    seconds: float


@dataclass(frozen=True)
class _Figures:
    """One block's geometry as figures per image."""

    parameters: int
    macs: int
    activations: int  # the largest tensor it reads or writes
    layers: int


def _block(kind: str, in_chs: int, out_chs: int, stride: int, res: int, exp_ratio: float, kernel: int,
           se_ratio: float, num_classes: int = 0) -> _Figures:
    out_res = -(-res // stride)
    mid = max(1, round(in_chs * exp_ratio)) if kind in ("ir", "er") else in_chs
    layers = 3
    if kind == "ir":  # 1x1 expansion at the input size, k x k depthwise with the stride, 1x1 projection
        params = in_chs * mid + mid * kernel**2 + mid * out_chs
        macs = res**2 * in_chs * mid + out_res**2 * (mid * kernel**2 + mid * out_chs)
        acts = max(in_chs * res**2, mid * res**2, out_chs * out_res**2)
    elif kind == "er":  # k x k expansion conv with the stride, 1x1 projection
        params = in_chs * mid * kernel**2 + mid * out_chs
        macs = out_res**2 * params
        acts = max(in_chs * res**2, mid * out_res**2, out_chs * out_res**2)
    elif kind in ("ds", "dsa"):  # k x k depthwise with the stride, 1x1 pointwise
        params = in_chs * kernel**2 + in_chs * out_chs
        macs = out_res**2 * params
        acts = max(in_chs * res**2, out_chs * out_res**2)
    elif kind == "head":  # pool, 1x1 conv to the features (with bias), classifier
        params = in_chs * out_chs + out_chs + out_chs * num_classes + num_classes
        macs = in_chs * res**2 + in_chs * out_chs + out_chs * num_classes
        acts = in_chs * res**2
    else:  # cn, stem: one k x k conv
        params = in_chs * out_chs * kernel**2
        macs = out_res**2 * params
        acts = max(in_chs * res**2, out_chs * out_res**2)
        layers = 1
    if se_ratio > 0:
        squeezed = max(1, round(mid * se_ratio))
        params += 2 * mid * squeezed
        macs += 2 * mid * squeezed + mid * out_res**2
        layers += 3
    params += 4 * (mid + out_chs)  # batch norms
    return _Figures(params, macs, acts, layers)


def block_figures(key: BlockKey) -> _Figures:
    """Parameters, multiply-adds and the largest activation of one block, per image."""
    return _block(key.type, key.in_chs, key.out_chs, key.stride, key.resolution, key.exp_ratio, key.kernel,
                  key.se_ratio, key.num_classes)


def _network_figures(arch: ArchDef, resolution: int, num_classes: int, stem_chs: int = NETWORK_STEM_SIZE,
                     num_features: int = NETWORK_NUM_FEATURES) -> _Figures:
    """A whole network's figures per image, as ``build_network`` builds it (stem, blocks, head)."""
    parts = [_block("stem", 3, stem_chs, 2, resolution, 1.0, 3, 0.0)]
    chs, res, total_stride = stem_chs, -(-resolution // 2), 2
    for stage in arch.stages:
        for block in stage:
            out_chs = block.out_chs or chs
            for repeat in range(block.repeats):
                stride = block.stride if repeat == 0 else 1
                if total_stride * stride > OUTPUT_STRIDE:
                    stride = 1  # dilated instead: the same taps per output pixel, at the input's resolution
                total_stride *= stride
                parts.append(_block(block.type, chs, out_chs, stride, res, float(block.exp_ratio or 1.0),
                                    max(*block.kernel, block.exp_kernel or 1, block.pw_kernel or 1),
                                    float(block.se_ratio or 0.0)))
                chs, res = out_chs, -(-res // stride)
    parts.append(_block("head", chs, num_features, 1, res, 1.0, 1, 0.0, num_classes))
    return _Figures(sum(p.parameters for p in parts), sum(p.macs for p in parts), max(p.activations for p in parts),
                    sum(p.layers for p in parts))


def _timing_s(macs: float, layers: int, method: Method, macs_per_s: float) -> float:
    """Warm-up plus timed runs of one prepared model: repeats until the budget is spent, floor and ceiling."""
    run_s = macs / macs_per_s + layers * _LAYER_OVERHEAD_S
    timed_s = min(method.max_repeats * run_s, max(method.min_repeats * run_s, method.budget_s))
    return method.warmup * run_s + timed_s


def task_cost(task: BlockTask | NetworkTask | ModelTask, macs_per_s: float) -> Cost:
    """The cost of one worker task at ``macs_per_s`` multiply-adds per second (a model's figures come from its
    inspection, per forward pass of its input, so per image here)."""
    batch = task.measuring.batch_size
    if isinstance(task, ModelTask):
        seen, per = task.inspection, max(1, task.inspection.batch_size)
        parts = [_Figures(seen.parameters, seen.macs // per, -(-seen.activation_elements // per), seen.layers)]
        parts += [_network_figures(arch, task.resolution, task.num_classes) for arch in task.archs]
        rounds, setup_s = max(1, task.rounds), _NETWORK_SETUP_S
    elif isinstance(task, BlockTask):
        parts = [block_figures(BlockKey.parse(task.key))]
        rounds, setup_s = 1, _BLOCK_SETUP_S
    else:
        parts = [_network_figures(arch, task.resolution, task.num_classes, *task.width(i))
                 for i, arch in enumerate(task.archs)]
        rounds, setup_s = max(1, task.rounds), _NETWORK_SETUP_S
    weight_bytes = [p.parameters * _FLOAT_BYTES for p in parts]
    largest_activation = max(p.activations for p in parts) * batch
    seconds = sum(setup_s + w / _EXPORT_BYTES_PER_S for w in weight_bytes)
    seconds += rounds * sum(_SESSION_S + _timing_s(p.macs * batch, p.layers, task.method, macs_per_s) for p in parts)
    # the module, its exported copy and the runtime's (possibly re-packed) copy; tensors in flight and workspace
    memory = 4 * max(weight_bytes) + 2 * sum(weight_bytes) + 4 * largest_activation * _FLOAT_BYTES
    return Cost(parameters=max(p.parameters for p in parts), activation_elements=largest_activation,
                macs=sum(p.macs for p in parts) * batch, memory_bytes=memory, seconds=seconds)


def request_cost(costs: Iterable[Cost]) -> Cost:
    """A request's cost from its tasks': the largest model and activation, the sums of work and time."""
    costs = list(costs)
    if not costs:
        return Cost(0, 0, 0, 0, 0.0)
    return Cost(parameters=max(c.parameters for c in costs),
                activation_elements=max(c.activation_elements for c in costs), macs=sum(c.macs for c in costs),
                memory_bytes=max(c.memory_bytes for c in costs), seconds=sum(c.seconds for c in costs))


def _config(measuring: MeasureSettings | None) -> tuple[str, int, int]:
    measuring = measuring or MeasureSettings()
    return (measuring.backend, measuring.threads, measuring.batch_size)


class DeviceSpeed:
    """Multiply-adds per second of this device per backend and configuration, learned from stored block figures
    (a default before any).

    Only blocks of at least :attr:`MIN_MACS` multiply-adds per image teach it: smaller ones time mostly the
    runtime's per-run overhead, which the estimates count apart.
    """

    MIN_MACS = 1_000_000

    def __init__(self, default_macs_per_s: float, capacity: int = 4096) -> None:
        self.default_macs_per_s = default_macs_per_s
        # (backend, threads, batch size, key) -> (macs, seconds) per image
        self._seen: OrderedDict[tuple[str, int, int, str], tuple[float, float]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def observe(self, key: BlockKey | str, median_ms: float, measuring: MeasureSettings | None = None) -> None:
        """Learn from one figure of ``key`` measured with ``measuring`` (default: the default settings)."""
        if not median_ms > 0:
            return
        key = BlockKey.parse(key) if isinstance(key, str) else key
        figures = block_figures(key)
        if figures.macs < self.MIN_MACS:
            return
        compute_s = max(median_ms / 1000.0 - figures.layers * _LAYER_OVERHEAD_S, median_ms / 2000.0)
        seen = (*_config(measuring), str(key))
        with self._lock:
            self._seen[seen] = (float(figures.macs), compute_s)
            self._seen.move_to_end(seen)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    @property
    def macs_per_s(self) -> float:
        """The speed with the default settings."""
        return self.rate(None)

    def rate(self, measuring: MeasureSettings | None) -> float:
        """Total multiply-adds over total compute time of the figures seen with this backend and configuration."""
        config = _config(measuring)
        with self._lock:
            seen = [v for k, v in self._seen.items() if k[:3] == config]
        macs = sum(m for m, _ in seen)
        seconds = sum(s for _, s in seen)
        return macs / seconds if macs > 0 and seconds > 0 else self.default_macs_per_s


@dataclass(frozen=True)
class Limits:
    max_parameters: int
    max_activation_elements: int
    max_memory_bytes: int
    max_request_s: float
    task_timeout_s: float = float("inf")

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(settings.max_parameters, settings.max_activation_elements, settings.max_memory_mb << 20,
                   settings.max_request_s,
                   settings.task_timeout_s if settings.refuse_over_timeout else float("inf"))


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds:.0f} s"


class Budget:
    """Checks work against the configured limits before it is queued."""

    def __init__(self, limits: Limits, speed: DeviceSpeed) -> None:
        self.limits = limits
        self.speed = speed

    def check(self, work: Sequence[tuple[BlockTask | NetworkTask | ModelTask, tuple[str | int, ...]]],
              *, timed: Sequence[bool] | None = None) -> Cost:
        """Each task within the per-model limits, and the tasks flagged in ``timed`` (default: all) within the
        request's time; returns the request's cost or raises :class:`OverBudget` (422)."""
        rates = {_config(task.measuring): self.speed.rate(task.measuring) for task, _ in work}
        rate = min(rates.values(), default=self.speed.macs_per_s)  # named in the refusal
        costs = []
        for task, loc in work:
            cost = task_cost(task, rates[_config(task.measuring)])
            self._per_task(cost, loc, task.label)
            self._within_timeout(task, loc, rate)
            costs.append(cost)
        total = request_cost(c for c, keep in zip(costs, timed or [True] * len(costs), strict=True) if keep)
        limit = self.limits.max_request_s
        if total.seconds > limit:
            loc = work[0][1][:2] if work else ()
            raise OverBudget(f"the request's measurements would take an estimated {_duration(total.seconds)} at this "
                             f"device's speed ({_count(rate)}MAC/s), over the limit {_duration(limit)} "
                             "(LATENCY_SERVER_MAX_REQUEST_S)", loc=loc)
        return request_cost(costs)

    def _within_timeout(self, task: BlockTask | NetworkTask, loc: tuple[str | int, ...], rate: float) -> None:
        """Refuse a task whose one worker call would run past the worker's time limit (it would be killed): a block,
        or one round of a network (the least a network's call runs)."""
        one_call = dataclasses.replace(task, rounds=1) if isinstance(task, NetworkTask) else task
        seconds = task_cost(one_call, rate).seconds
        if seconds > self.limits.task_timeout_s:
            raise OverBudget(f"{task.label}: one measurement would take an estimated {_duration(seconds)} at this "
                             f"device's speed ({_count(rate)}MAC/s), over the worker's limit "
                             f"{_duration(self.limits.task_timeout_s)} (LATENCY_SERVER_TASK_TIMEOUT_S)", loc=loc)

    def _per_task(self, cost: Cost, loc: tuple[str | int, ...], label: str) -> None:
        limits = self.limits
        checks = (
            (cost.parameters, limits.max_parameters, "parameters", "MAX_PARAMETERS", _count),
            (cost.activation_elements, limits.max_activation_elements,
             "activation elements (batch x channels x H x W of its largest tensor)", "MAX_ACTIVATION_ELEMENTS", _count),
            (cost.memory_bytes, limits.max_memory_bytes, "bytes of memory (estimated)", "MAX_MEMORY_MB", _count),
        )
        for value, limit, what, env, fmt in checks:
            if value > limit:
                raise OverBudget(f"{label}: {fmt(value)} {what} exceed the limit {fmt(limit)} "
                                 f"(LATENCY_SERVER_{env})", loc=loc)

