"""Input checks against the configured limits, before anything is queued (errors become 422).

Each failure is an :class:`InputError` carrying the location (``("body", "blocks", 3, "in_chs")``) and a
message that starts with the field or token it is about and never repeats more than an excerpt of the input.
The arch-string grammar the server accepts is one regular expression built from the limits
(:func:`arch_pattern`), so the OpenAPI schema can declare exactly what is enforced here.
"""

from __future__ import annotations

import functools
import re

from latency_server.config import Settings
from shared.api_schemas import BlockSpec, MeasureSettings, NetworkRequest
from shared.arch_string import ArchDef, ArchStringError, excerpt, parse_arch
from shared.block_key import BlockKey, BlockKeyError

__all__ = ["InputError", "arch_pattern", "check_block", "check_network", "check_resolution", "check_settings",
           "int_range_regex"]


class InputError(ValueError):
    """Bad input: answered with 422 and ``{"detail": [{"loc", "msg", "type"}]}``."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _limit(value: float, limit: float, loc: tuple[str | int, ...], name: str, env: str) -> None:
    if value > limit:
        shown = value if isinstance(value, int) or not float(value).is_integer() else int(value)
        raise InputError(loc, f"{name}: {excerpt(shown)[1:-1]} exceeds the limit {limit} (LATENCY_SERVER_{env})")


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
    """The canonical :class:`BlockKey` of a spec, within limits (checked as sent, then on the canonical key)."""
    loc: tuple[str | int, ...] = ("body", "blocks", index)
    where = f"blocks.{index}"
    for field, limit, env in (("in_chs", settings.max_channels, "MAX_CHANNELS"),
                              ("out_chs", settings.max_channels, "MAX_CHANNELS"),
                              ("resolution", settings.max_resolution, "MAX_RESOLUTION"),
                              ("kernel", settings.max_kernel, "MAX_KERNEL"),
                              ("exp_ratio", settings.max_exp_ratio, "MAX_EXP_RATIO"),
                              ("num_classes", settings.max_num_classes, "MAX_NUM_CLASSES")):
        _limit(getattr(spec, field), limit, loc + (field,), f"{where}.{field}", env)
    if spec.kernel % 2 == 0:
        raise InputError(loc + ("kernel",), f"{where}.kernel: expected an odd size, got {spec.kernel}")
    try:
        key = BlockKey.from_dict(spec.model_dump())
    except BlockKeyError as exc:
        field = str(exc).split(":", 1)[0]
        raise InputError(loc + ((field,) if field in BlockSpec.model_fields else ()), f"{where}.{exc}") from None
    mid = key.in_chs * key.exp_ratio if key.type in ("ir",) else key.in_chs
    _limit(mid, settings.max_channels, loc + ("exp_ratio",), f"{where}.exp_ratio x in_chs", "MAX_CHANNELS")
    return key  # its cost (parameters, activations, memory, time) is budgeted by latency_server.admission.budget


def check_network(req: NetworkRequest, settings: Settings) -> ArchDef:
    """The parsed architecture of a network request, within limits."""
    loc: tuple[str | int, ...] = ("body", "arch")
    _limit(len(req.arch), settings.max_arch_length, loc, "arch length", "MAX_ARCH_LENGTH")
    check_resolution(req.resolution, settings, ("body", "resolution"))
    for field in ("stem_size", "num_features"):  # channel counts, like the blocks' (the stem and the head's width)
        _limit(getattr(req, field), settings.max_channels, ("body", field), field, "MAX_CHANNELS")
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
            _limit(block.exp_ratio or 1.0, settings.max_exp_ratio, loc, f"{where}: expansion ratio", "MAX_EXP_RATIO")
    if not _compiled(arch_pattern(settings)).fullmatch(req.arch):
        raise InputError(loc, "arch: outside the accepted grammar: ir, er, ds, dsa or cn blocks with their options "
                         "in the order r k s e c [noskip] [n] [se] or, as timm writes them, [se] [n] (the OpenAPI "
                         "schema has the pattern)")
    return arch  # its cost (parameters, activations, memory, time) is budgeted by latency_server.admission.budget


# -- the accepted arch-string grammar as one regular expression ---------------------------------------------
def int_range_regex(low: int, high: int) -> str:
    """A regular expression matching exactly the decimal integers ``low..high`` (no sign, no leading zero)."""
    if not 0 <= low <= high:
        raise ValueError(f"bad range {low}..{high}")
    parts = []
    start = low
    while start <= high:
        # the widest run start..end whose numbers share a prefix and then vary in one digit and free tail digits
        tail = 0
        while start % 10 ** (tail + 1) == 0 and start + 10 ** (tail + 1) - 1 <= high and start > 0:
            tail += 1
        step = 10**tail
        end = min(high, (start // (step * 10) + 1) * step * 10 - 1)
        end = start + (end - start + 1) // step * step - 1
        first, last = str(start // step), str(end // step)
        prefix, digit_low, digit_high = first[:-1], first[-1], last[-1]
        digit = digit_low if digit_low == digit_high else f"[{digit_low}-{digit_high}]"
        parts.append(prefix + digit + ("" if tail == 0 else "[0-9]" if tail == 1 else f"[0-9]{{{tail}}}"))
        start = end + 1
    return "(?:" + "|".join(sorted(parts, key=len, reverse=True)) + ")"


def _ratio(high: int) -> str:
    """Decimals in (0, high] with at most four decimal places."""
    below = [r"0\.[0-9]{0,3}[1-9]"]
    if high > 1:
        below.append(int_range_regex(1, high - 1) + r"(?:\.[0-9]{1,4})?")
    return "(?:" + "|".join(below + [f"{high}" + r"(?:\.0{1,4})?"]) + ")"


def arch_pattern(settings: Settings) -> str:
    """The arch strings this server accepts (``ir``/``er``/``ds``/``dsa``/``cn`` blocks, canonical option order, or
    the squeeze-excite ratio before the activation as timm's own arch defs write it: ``..._se0.25_nre``).

    Counts, channels, kernels and ratios stay within the limits; what one pattern cannot bound (the total
    block count, the expanded width, the activation size) is checked after parsing.
    """
    reps = int_range_regex(1, settings.max_network_blocks)
    kernel = "(?:" + "|".join(str(k) for k in range(settings.max_kernel - (settings.max_kernel + 1) % 2, 0, -2)) + ")"
    chs = int_range_regex(1, settings.max_channels)
    head = f"_r{reps}_k{kernel}_s[12]"
    act = "(?:_n(?:re|r6|hs|sw))?"
    se = f"_se{_ratio(1)}"
    tail = f"(?:_noskip)?(?:{act}(?:_noskip)?(?:{se})?|{se}_n(?:re|r6|hs|sw))"
    block = (f"(?:(?:ir|er){head}_e{_ratio(settings.max_exp_ratio)}_c{chs}{tail}"
             f"|dsa?{head}(?:_e{_ratio(settings.max_exp_ratio)})?_c{chs}{tail}"
             f"|cn{head}_c{chs}(?:_skip)?{act})")
    quoted = f"(?:'{block}'|\"{block}\")"
    stage = rf"\[ *{quoted}(?: *, *{quoted})* *\]"
    return rf"^ *\[ *{stage}(?: *, *{stage})* *\] *$"


@functools.lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
