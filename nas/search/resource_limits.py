"""Hard limits on a network's parameter count and multiply-accumulates (MACs), beside its latency limits.

Both counts are exactly additive over the space's blocks (:mod:`shared.costs`: fixed parts plus one entry per kept
block, each from the module the network builder makes), so a count has the very form of a latency table: a
constant plus per-stage, per-position, per-option entries. A :class:`ResourceLimit` is therefore a
:class:`~nas.latency.expected_latency.LatencyModel` over counts and a limit: one more linear row in the LP oracle at
every BCFW step (:mod:`nas.search.multi_lmo`) and in the final MILP (:mod:`nas.search.discretize`), so every
iterate's expected count and the returned network's count are within it, like a fleet's further latency targets.

The rows hold the counts in units of 2**20 (a power of two: the scaling is exact, so a network's sum compares with
the limit exactly, and the LP sees figures of the latencies' magnitude). :func:`check_limits` stops a search at once
when no network meets the limits together, naming in plain words the limit the others rule out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.discretize import DiscretizationError, NetworkScore, best_network
from nas.search.latency_limit import LatencyLimitError, check_limit
from shared.search_space import ArchChoice, SearchSpace

__all__ = ["UNIT", "ResourceInfeasibleError", "ResourceLimit", "check_limits", "format_count", "limits_json",
           "parse_count", "resource_limits"]

Kind = Literal["params", "macs"]

#: counts are held in units of 2**20 in the rows: exact in binary floating point
UNIT = float(2**20)

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_WORDS = {"params": "parameters", "macs": "MACs"}


class ResourceInfeasibleError(ValueError):
    """No network meets the limits together (a parameter or MAC limit alone, or with the others)."""


def parse_count(text: str, what: str = "count") -> float:
    """``3.5M``, ``300m``, ``250K``, ``1G``, ``2e6`` or ``3500000`` as a positive number (ValueError otherwise)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
    if match is None:
        raise ValueError(f"{what}: expected a number with an optional K, M or G suffix (3.5M, 300M, 250000), got "
                         f"{text!r}")
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{what}: expected a positive count of at least 1, got {text!r}")
    return value


def format_count(n: float, *, unlike: float | None = None) -> str:
    """``n`` with a K/M/G suffix, with enough digits to tell it from ``unlike`` (exactly, at worst)."""
    for digits in range(3, 10):
        text = _short(n, digits)
        if unlike is None or _short(unlike, digits) != text:
            return text
    return f"{int(n):,}"


def _short(n: float, digits: int) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}g}{suffix}"
    return f"{n:.{digits}g}"


@dataclass(frozen=True)
class ResourceLimit:
    """At most ``limit`` parameters (``kind='params'``) or MACs (``'macs'``) per network: ``model`` holds the
    counts (in :data:`UNIT`) of the space's blocks; ``num_classes`` and ``resolution`` say which networks."""

    kind: Kind
    limit: float
    model: LatencyModel
    num_classes: int
    resolution: int

    @property
    def row(self) -> tuple[LatencyModel, float]:
        """The ``(model, limit)`` pair the optimizer and the MILP take (a network's count is an integer)."""
        return self.model, math.floor(self.limit) / UNIT

    @property
    def label(self) -> str:
        return f"at most {format_count(self.limit)} {_WORDS[self.kind]}"

    def value(self, choice: ArchChoice) -> int:
        """The network's exact count."""
        return round(self.model.choice_latency_ms(choice) * UNIT)

    def expected(self, alpha: np.ndarray, beta: np.ndarray) -> float:
        """The count expected under a distribution (alpha, beta)."""
        return self.model.expected_latency_ms(alpha, beta) * UNIT

    def minimum(self) -> int:
        return round(self.model.min_latency_ms() * UNIT)

    def to_json(self, choice: ArchChoice, alpha: np.ndarray | None = None, beta: np.ndarray | None = None) -> dict:
        out = {"kind": self.kind, "limit": self.limit, "value": self.value(choice), "num_classes": self.num_classes,
               "resolution": self.resolution, "minimum": self.minimum()}
        if alpha is not None and beta is not None:
            out["relaxed_value"] = self.expected(alpha, beta)
        return out


def resource_limits(space: SearchSpace, resolution: int, num_classes: int, *, max_params: float | None = None,
                    max_macs: float | None = None) -> tuple[ResourceLimit, ...]:
    """The limits asked for (none, either or both), over ``space``'s networks with ``num_classes`` classes at
    ``resolution`` (MACs at that input size; parameters do not depend on it)."""
    if max_params is None and max_macs is None:
        return ()
    from shared.costs import space_costs

    costs = space_costs(space.with_classes(num_classes), resolution)
    out = []
    for kind, limit, table, fixed in (("params", max_params, costs.params, costs.fixed_params),
                                      ("macs", max_macs, costs.macs, costs.fixed_macs)):
        if limit is not None:
            model = LatencyModel.from_space(space, table.astype(np.float64) / UNIT, fixed / UNIT)
            out.append(ResourceLimit(kind, float(limit), model, num_classes, resolution))
    return tuple(out)


# -- feasibility, in plain words ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Named:
    model: LatencyModel
    limit: float  # in the model's units
    label: str  # "latency <= 5 ms", "latency on target 2 <= 5 ms", "at most 3.5M parameters"
    name: str = ""  # a latency limit's "latency" / "latency on target 2"
    resource: ResourceLimit | None = None

    def least(self, value: float) -> str:
        """``value`` (the model's units) as a lower bound in plain words, set against this limit."""
        if self.resource is None:
            digits = 4 if f"{value:.4g}" != f"{self.limit:.4g}" else 9
            return f"{self.name} at least {value:.{digits}g} ms"
        r = self.resource
        return f"at least {format_count(round(value * UNIT), unlike=r.limit)} {_WORDS[r.kind]}"


def _least_under(item: _Named, rest: Sequence[_Named]) -> float | None:
    """The least value of ``item``'s model over the networks meeting every limit of ``rest`` (None: none does)."""
    score = NetworkScore(-item.model.block_ms, np.zeros(item.model.beta_shape))
    try:
        choice = best_network(score, [(r.model, r.limit) for r in rest])
    except DiscretizationError:
        return None
    return item.model.choice_latency_ms(choice)


def check_limits(latency: Sequence[tuple[LatencyModel, float]], resources: Sequence[ResourceLimit],
                 labels: Sequence[str] | None = None) -> ArchChoice:
    """Stop at once unless some network meets every latency ``(model, limit_ms)`` and every resource limit together;
    return one that does.

    Raises :class:`ResourceInfeasibleError` when a resource limit is below the space's smallest network, or when
    the limits cannot be met together: then each limit is set against the least value any network within the
    others has (an exact MILP per limit), e.g. "no network meets both latency <= 5 ms and at most 3.5M parameters:
    every network with latency <= 5 ms has at least 4.12M parameters; ...". A latency limit below its table's
    minimum raises :class:`~nas.search.latency_limit.LatencyLimitError` (one target) or
    :class:`~nas.search.fleet.FleetInfeasibleError` naming the target.
    """
    from nas.search.fleet import FleetInfeasibleError

    if len(latency) == 1:
        names = ["latency"]
    else:
        names = [f"latency on {label}" for label in (labels or [f"target {k + 1}" for k in range(len(latency))])]
    for r in resources:
        smallest = r.minimum()
        if smallest > r.limit:
            raise ResourceInfeasibleError(
                f"no network in the space has at most {format_count(r.limit, unlike=smallest)} {_WORDS[r.kind]}: "
                f"the smallest has {format_count(smallest, unlike=r.limit)} ({r.num_classes} classes"
                + (f", {r.resolution} px)" if r.kind == "macs" else ")"))
    for (m, limit), name in zip(latency, names, strict=True):
        try:
            check_limit(m, limit)
        except LatencyLimitError as exc:
            if len(latency) == 1:
                raise
            raise FleetInfeasibleError(f"{name}: {exc}", [exc.minimum_ms], [limit]) from None
    items = [_Named(m, limit, f"{name} <= {limit:.4g} ms", name)
             for (m, limit), name in zip(latency, names, strict=True)]
    items += [_Named(*r.row, r.label, resource=r) for r in resources]
    rows = [(item.model, item.limit) for item in items]
    try:
        return best_network(NetworkScore(np.zeros(rows[0][0].alpha_shape), np.zeros(rows[0][0].beta_shape)), rows)
    except DiscretizationError:
        pass
    reasons = []
    for k, item in enumerate(items):
        rest = items[:k] + items[k + 1:]
        least = _least_under(item, rest)
        within = " and ".join(r.label for r in rest)
        reasons.append(f"no network has {within}" if least is None
                       else f"every network with {within} has {item.least(least)}")
    if len(items) == 2:
        head = f"no network meets both {items[0].label} and {items[1].label}"
    else:
        head = f"no network meets all of {', '.join(item.label for item in items)}"
    raise ResourceInfeasibleError(f"{head}: {'; '.join(reasons)}")


def limits_json(choice: ArchChoice, latency: Sequence[tuple[LatencyModel, float]], resources: Sequence[ResourceLimit],
                alpha: np.ndarray | None = None, beta: np.ndarray | None = None) -> list[dict]:
    """result.json's ``limits``: every limit (each latency target's, then the resources') with the network's value."""
    out: list[dict] = [{"kind": "latency_ms", "target": k + 1, "limit": limit, "value": m.choice_latency_ms(choice)}
                       for k, (m, limit) in enumerate(latency)]
    return out + [r.to_json(choice, alpha, beta) for r in resources]
