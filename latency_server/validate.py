"""Input checks against the configured limits, before anything is queued (errors become 422).

Each failure is an :class:`InputError` carrying the location (``("body", "blocks", 3, "in_chs")``) and a
message that starts with the field or token it is about.
"""

from __future__ import annotations

from latency_server.config import Settings
from shared.api_schemas import BlockSpec, MeasureSettings, NetworkRequest
from shared.arch_string import ArchDef, ArchStringError, parse_arch
from shared.block_key import BlockKey, BlockKeyError

__all__ = ["InputError", "check_block", "check_network", "check_resolution", "check_settings"]


class InputError(ValueError):
    """Bad input: answered with 422 and ``{"detail": [{"loc", "msg", "type"}]}``."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _limit(value: float, limit: float, loc: tuple[str | int, ...], name: str, env: str) -> None:
    if value > limit:
        shown = int(value) if float(value).is_integer() else value
        raise InputError(loc, f"{name}: {shown} exceeds the limit {limit} (LATENCY_SERVER_{env})")


def check_settings(measuring: MeasureSettings, settings: Settings, available: list[str], where: str = "body") -> None:
    """Batch size and threads within limits; the backend runs on this device."""
    _limit(measuring.batch_size, settings.max_batch_size, (where, "batch_size"), "batch_size", "MAX_BATCH_SIZE")
    _limit(measuring.threads, settings.max_threads, (where, "threads"), "threads", "MAX_THREADS")
    if measuring.backend not in available:
        raise InputError((where, "backend"), f"backend: {measuring.backend!r} is not available on this device; "
                                             f"available: {available}")


def check_resolution(resolution: int, settings: Settings, loc: tuple[str | int, ...]) -> None:
    _limit(resolution, settings.max_resolution, loc, "resolution", "MAX_RESOLUTION")


def check_block(spec: BlockSpec, batch_size: int, settings: Settings, index: int) -> BlockKey:
    """The :class:`BlockKey` of a spec, within limits."""
    loc: tuple[str | int, ...] = ("body", "blocks", index)
    where = f"blocks.{index}"
    try:
        key = BlockKey.from_dict(spec.model_dump())
    except BlockKeyError as exc:
        field = str(exc).split(":", 1)[0]
        raise InputError(loc + ((field,) if field in BlockSpec.model_fields else ()), f"{where}.{exc}") from None
    _limit(key.in_chs, settings.max_channels, loc + ("in_chs",), f"{where}.in_chs", "MAX_CHANNELS")
    _limit(key.out_chs, settings.max_channels, loc + ("out_chs",), f"{where}.out_chs", "MAX_CHANNELS")
    _limit(key.resolution, settings.max_resolution, loc + ("resolution",), f"{where}.resolution", "MAX_RESOLUTION")
    _limit(key.kernel, settings.max_kernel, loc + ("kernel",), f"{where}.kernel", "MAX_KERNEL")
    _limit(key.num_classes, settings.max_num_classes, loc + ("num_classes",), f"{where}.num_classes", "MAX_NUM_CLASSES")
    mid = key.in_chs * key.exp_ratio if key.type in ("ir",) else key.in_chs
    _limit(mid, settings.max_channels, loc + ("exp_ratio",), f"{where}.exp_ratio x in_chs", "MAX_CHANNELS")
    return key  # its cost (parameters, activations, memory, time) is budgeted by latency_server.budget


def check_network(req: NetworkRequest, settings: Settings) -> ArchDef:
    """The parsed architecture of a network request, within limits."""
    loc: tuple[str | int, ...] = ("body", "arch")
    _limit(len(req.arch), settings.max_arch_length, loc, "arch length", "MAX_ARCH_LENGTH")
    check_resolution(req.resolution, settings, ("body", "resolution"))
    if req.resolution < 32:
        raise InputError(("body", "resolution"), f"resolution: expected at least 32, got {req.resolution}")
    try:
        arch = parse_arch(req.arch)
    except ArchStringError as exc:
        raise InputError(loc, f"arch: {exc}") from None
    blocks = [block for stage in arch.stages for block in stage]
    repeats = sum(block.repeats for block in blocks)
    _limit(repeats, settings.max_network_blocks, loc, "arch: block count", "MAX_NETWORK_BLOCKS")
    for s, stage in enumerate(arch.stages):
        for j, block in enumerate(stage):
            where = f"arch: stage {s}, block {j}"
            _limit(block.out_chs or 0, settings.max_channels, loc, f"{where}: out channels", "MAX_CHANNELS")
            kernel = max(*block.kernel, block.exp_kernel or 1, block.pw_kernel or 1)
            _limit(kernel, settings.max_kernel, loc, f"{where}: kernel", "MAX_KERNEL")
    return arch  # its cost (parameters, activations, memory, time) is budgeted by latency_server.budget
