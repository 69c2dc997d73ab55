"""A fleet of latency targets: what a target is, how ``nas search`` spells one, and whether a fleet's limits can
be met together.

A target is a latency table with its measuring identity (an endpoint with backend, threads and batch size, or a
table file) and a hard limit in milliseconds. The search meets every target's limit by table at every step and
in the returned network (one linear constraint per target); each target's server then gives its own verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.discretize import DiscretizationError, NetworkScore, best_network, relaxed_minimum_ms
from nas.search.latency_limit import LatencyLimitError, check_limit
from shared.search_space import ArchChoice

__all__ = ["FleetInfeasibleError", "Target", "check_fleet", "parse_target", "parse_target_lut", "table_disagreement"]

#: the measuring settings a target's URL may carry in its query
QUERY_KEYS = ("backend", "threads", "batch_size")


class FleetInfeasibleError(LatencyLimitError):
    """No network meets every target's limit together (though each limit alone may be met)."""

    def __init__(self, message: str, minima_ms: list[float], limits_ms: list[float]) -> None:
        ValueError.__init__(self, message)
        self.limit_ms = limits_ms[0]
        self.minimum_ms = minima_ms[0]
        self.minima_ms = minima_ms
        self.limits_ms = limits_ms


@dataclass(frozen=True)
class Target:
    """One deployment target: a server (``endpoint`` with its measuring settings) or a table file (``lut``), and
    its limit. Settings left ``None`` come from the command's defaults (or, for a file, from the file)."""

    limit_ms: float
    endpoint: str | None = None
    lut: str | None = None
    backend: str | None = None
    threads: int | None = None
    batch_size: int | None = None

    def with_defaults(self, backend: str, threads: int, batch_size: int) -> Target:
        """This target with every unset measuring setting filled in."""
        return Target(self.limit_ms, self.endpoint, self.lut, self.backend or backend, self.threads or threads,
                      self.batch_size or batch_size)

    @property
    def label(self) -> str:
        """How messages name the target: its file, or its endpoint with the settings it sets."""
        if self.lut is not None:
            return self.lut
        query = "&".join(f"{k}={getattr(self, k)}" for k in QUERY_KEYS if getattr(self, k) is not None)
        return f"{self.endpoint}?{query}" if query else str(self.endpoint)

    def identity(self) -> tuple:
        """Two targets with one identity would measure the same thing twice."""
        if self.lut is not None:
            return ("lut", str(Path(self.lut).resolve()))
        return ("endpoint", str(self.endpoint).rstrip("/"), self.backend, self.threads, self.batch_size)


def _limit(spec: str, text: str) -> float:
    try:
        limit = float(text)
    except ValueError:
        raise ValueError(f"target {spec!r}: the limit after the last '=' must be a number of ms, got {text!r}") \
            from None
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"target {spec!r}: the limit must be a positive number of ms, got {text!r}")
    return limit


def _split(spec: str, form: str) -> tuple[str, float]:
    where, sep, limit = spec.rpartition("=")
    if not sep or not where:
        raise ValueError(f"target {spec!r}: expected {form}")
    return where, _limit(spec, limit)


def parse_target(spec: str) -> Target:
    """``URL[?backend=B&threads=N&batch_size=M]=T_ms`` as a :class:`Target` (ValueError with a one-line reason)."""
    where, limit = _split(spec, "URL[?backend=&threads=&batch_size=]=T_ms")
    url = urlsplit(where)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError(f"target {spec!r}: {where!r} is not an http(s) URL with a host")
    settings: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True, strict_parsing=False):
        if key not in QUERY_KEYS:
            raise ValueError(f"target {spec!r}: unknown query key {key!r} (allowed: {', '.join(QUERY_KEYS)})")
        if key in settings:
            raise ValueError(f"target {spec!r}: {key} given twice")
        if not value:
            raise ValueError(f"target {spec!r}: {key} is empty")
        settings[key] = value
    if url.query and not settings:
        raise ValueError(f"target {spec!r}: cannot read the query {url.query!r}")
    numbers = {}
    for key in ("threads", "batch_size"):
        if key in settings:
            if not settings[key].isdigit() or int(settings[key]) < 1:
                raise ValueError(f"target {spec!r}: {key} must be a positive integer, got {settings[key]!r}")
            numbers[key] = int(settings[key])
    endpoint = urlunsplit((url.scheme, url.netloc, url.path, "", ""))
    return Target(limit, endpoint=endpoint, backend=settings.get("backend"), **numbers)


def parse_target_lut(spec: str) -> Target:
    """``FILE=T_ms`` as a :class:`Target` (the table file's own settings apply)."""
    where, limit = _split(spec, "FILE=T_ms")
    return Target(limit, lut=where)


def check_distinct(targets: Sequence[Target]) -> None:
    """ValueError naming the first target given twice."""
    seen: dict[tuple, Target] = {}
    for target in targets:
        if target.identity() in seen:
            raise ValueError(f"target {target.label} given twice (limits {seen[target.identity()].limit_ms:g} and "
                             f"{target.limit_ms:g} ms): one limit per target")
        seen[target.identity()] = target


def check_fleet(constraints: Sequence[tuple[LatencyModel, float]], labels: Sequence[str] | None = None) -> ArchChoice:
    """Stop at once unless some network meets every ``(model, limit_ms)``; return one that does.

    Each limit is first checked against its table's minimum; then jointly: by an exact MILP for a network meeting
    all limits, and when there is none, an LP per target (the least expected latency any mix of networks within
    the other targets' limits has on it) says which target's limit the others rule out.
    """
    labels = list(labels or [f"target {k + 1}" for k in range(len(constraints))])
    minima = []
    for (model, limit), label in zip(constraints, labels, strict=True):
        try:
            minima.append(check_limit(model, limit))
        except LatencyLimitError as exc:
            raise FleetInfeasibleError(f"{label}: {exc}", [exc.minimum_ms], [limit]) from None
    model = constraints[0][0]
    try:
        return best_network(NetworkScore(np.zeros(model.alpha_shape), np.zeros(model.beta_shape)), constraints)
    except DiscretizationError:
        pass
    reasons = []
    for k, ((m, limit), label) in enumerate(zip(constraints, labels, strict=True)):
        rest = [c for j, c in enumerate(constraints) if j != k]
        need = relaxed_minimum_ms(m, rest)
        if need > limit:
            reasons.append(f"within the other limits {label} needs >= {need:.4g} ms, above its limit {limit:.4g} ms"
                           if math.isfinite(need) else f"{label}: the other limits rule out every network")
    why = "; ".join(reasons) or "a mix of networks meets every limit on average, but no single network does"
    alone = ", ".join(f"{label} >= {lo:.4g} ms" for label, lo in zip(labels, minima, strict=True))
    others = " and ".join(f"{label} <= {limit:.4g} ms" for (_, limit), label in zip(constraints, labels, strict=True))
    raise FleetInfeasibleError(f"no network meets every target's limit together ({others}): {why} (each alone: "
                               f"{alone})", minima, [limit for _, limit in constraints])


def table_disagreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far two targets' ``[stages, positions, options]`` tables disagree on which options are cheap: the mean
    over block positions of the Spearman correlation of the options' latencies (1: the same order everywhere, and a
    fleet search is the one-target search), and the share of positions whose cheapest option differs."""
    from scipy.stats import spearmanr

    rhos, differ = [], 0
    for s, j in np.ndindex(a.shape[:2]):
        rhos.append(float(spearmanr(a[s, j], b[s, j]).statistic))
        differ += int(np.argmin(a[s, j]) != np.argmin(b[s, j]))
    return float(np.mean(rhos)), differ / len(rhos)
