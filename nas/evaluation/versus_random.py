"""Search versus random at equal latency: each searched network against random networks of its latency band.

For every limit ``T`` the searched network's held-out accuracy (:mod:`nas.evaluation.child_accuracy`) is ranked
among ``count`` random networks whose table latency lies in ``[0.95 U, U]`` (:mod:`nas.evaluation.band_sampling`,
uniform sampling conditioned on the band), ``U`` the latency the search could use (:func:`usable_limit_ms`): ``T``
itself, or the internal limit the device's verdict tightened the search to: on such a device the networks at the top
of T's band have bounds over T, so they are not alternatives a user could deploy under the guarantee. Where U lies
in the table's lightest corner, whose band holds too few networks to rank among, the lowest band above U that holds
them (heavier networks: a comparison that can only favour the random side). Two figures per run: the searched
network's percentile among its band's random networks (ties count half), and the Spearman correlation between table
latency and accuracy over all random networks: how far the proxy task separates architectures at all. Where it does
not (a correlation near 0), the percentiles are ranks in noise. The bands alone can span too little latency to say:
where the device's verdict tightened every search into the table's light end (the demo's at 32 px on a noisy 2-core
box: bands within 0.37-0.51 ms of a 0.31-1.74 ms table), their correlation measures noise within a narrow window, so
``spread`` more random networks stratified over the whole range
(:func:`~nas.evaluation.band_sampling.sample_across_range`) join the correlation (``spearman_bands`` keeps the
bands' own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nas.evaluation.band_sampling import BAND, lowest_band_from, sample_across_range
from nas.evaluation.child_accuracy import ChildAccuracy
from nas.latency.expected_latency import LatencyModel
from shared.arch_string import format_arch
from shared.search_space import ArchChoice, SearchSpace

__all__ = ["LimitComparison", "RandomChild", "VersusRandom", "compare_with_random", "rank_statistics",
           "usable_limit_ms"]

#: ``evaluate(choice) -> ChildAccuracy`` (:meth:`nas.evaluation.child_accuracy.ChildEvaluator.evaluate`, or a
#: test's function)
EvaluateFn = Callable[[ArchChoice], ChildAccuracy]


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho, or None where it is undefined (fewer than 3 points, or a constant series)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho


def usable_limit_ms(result: dict[str, Any]) -> float:
    """The table latency a search's network could use (a ``result.json`` object): the internal limit of the
    returned attempt where the measured guarantee tightened the search, else the limit itself."""
    limit = float(result["latency_limit_ms"])
    returned = [a for a in result.get("attempts", []) if a.get("returned")]
    internal = returned[0].get("internal_limit_ms") if returned else None
    return limit if internal is None else min(limit, float(internal))


def rank_statistics(
    searched_top1: float, random_top1: Sequence[float], random_latency_ms: Sequence[float]
) -> tuple[float, float | None]:
    """(percentile of ``searched_top1`` among ``random_top1``, ties counting half; Spearman of the random
    networks' latency and accuracy, None where undefined)."""
    from scipy.stats import percentileofscore

    if not random_top1:
        raise ValueError("no random networks to rank against")
    percentile = float(percentileofscore(list(random_top1), searched_top1, kind="mean"))
    return percentile, _spearman(list(random_latency_ms), list(random_top1))


@dataclass(frozen=True)
class RandomChild:
    """One random network of a band: its architecture, table latency and accuracy."""

    arch: str
    table_latency_ms: float
    top1: float
    loss: float


@dataclass
class LimitComparison:
    """The searched network of one limit against the random networks of its band."""

    latency_limit_ms: float
    usable_limit_ms: float  # the limit, or the internal limit the verdict tightened the search to
    band_ms: tuple[float, float]  # under the usable limit; the lowest band above it where that one holds too few
    arch: str
    table_latency_ms: float
    top1: float
    loss: float
    percentile_vs_random: float
    spearman_in_band: float | None
    random: list[RandomChild] = field(default_factory=list)


@dataclass
class VersusRandom:
    """Every limit's comparison, the Spearman over all random networks and how they were drawn."""

    limits: list[LimitComparison]
    spearman_random: float | None  # over the bands' random networks and the ones spread over the range
    sampling: str
    spread: list[RandomChild] = field(default_factory=list)  # stratified over the table's whole range
    spearman_bands: float | None = None  # over the bands' random networks alone

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_with_random(
    evaluate: EvaluateFn,
    model: LatencyModel,
    space: SearchSpace,
    searched: Sequence[tuple[float, ArchChoice]],
    *,
    count: int = 30,
    seed: int = 0,
    band_width: float = BAND,
    usable_limits_ms: Sequence[float] | None = None,
    spread: int = 0,
    on_child: Callable[[int, int], None] | None = None,
) -> VersusRandom:
    """Rank each ``(limit_ms, searched choice)`` among ``count`` random networks of ``[(1 - band_width) U, U]``,
    ``U`` the matching entry of ``usable_limits_ms`` (default: the limit itself; see :func:`usable_limit_ms`); where
    U's band holds fewer than ``count`` networks (a search tightened to the lightest networks), T's band instead.
    ``spread`` further random networks, stratified over the table's whole range, join the Spearman correlation.

    ``on_child(done, total)`` is called after each evaluated network (progress).
    """
    usable = list(usable_limits_ms) if usable_limits_ms is not None else [limit for limit, _ in searched]
    if len(usable) != len(searched) or any(u > limit for u, (limit, _) in zip(usable, searched, strict=True)):
        raise ValueError("usable_limits_ms: one per searched network, none above its limit")
    total = len(searched) * (count + 1) + spread
    done = 0

    def evaluated(choice: ArchChoice) -> ChildAccuracy:
        nonlocal done
        acc = evaluate(choice)
        done += 1
        if on_child:
            on_child(done, total)
        return acc

    def children(drawn: Sequence[tuple[ArchChoice, float]]) -> list[RandomChild]:
        out = []
        for rand_choice, latency in drawn:
            acc = evaluated(rand_choice)
            out.append(RandomChild(str(format_arch(space.arch_from_choice(rand_choice))), latency, acc.top1, acc.loss))
        return out

    comparisons: list[LimitComparison] = []
    for i, (limit_ms, choice) in enumerate(searched):
        # U's band; above it only where U sits in the table's lightest corner, too few networks there to rank among
        (low, high), drawn = lowest_band_from(model, usable[i], limit_ms, count, width=band_width,
                                              seed=seed + 7919 * i)
        randoms = children(drawn)
        acc = evaluated(choice)
        percentile, rho = rank_statistics(acc.top1, [r.top1 for r in randoms],
                                          [r.table_latency_ms for r in randoms])
        comparisons.append(LimitComparison(
            latency_limit_ms=limit_ms,
            usable_limit_ms=usable[i],
            band_ms=(low, high),
            arch=str(format_arch(space.arch_from_choice(choice))),
            table_latency_ms=model.choice_latency_ms(choice),
            top1=acc.top1,
            loss=acc.loss,
            percentile_vs_random=percentile,
            spearman_in_band=rho,
            random=randoms,
        ))
    spread_children = children(sample_across_range(model, spread, seed=seed + 1) if spread else [])
    pooled = [r for c in comparisons for r in c.random]
    sampling = (f"{count} distinct networks per limit with table latency in [{1 - band_width:.2f} U, U] (U the "
                f"limit T, or the internal limit the device's verdict tightened the search to; where that band "
                f"holds too few networks, the lowest band above U that holds them): uniform "
                f"sampling conditioned on the band, drawn by a random walk of single-block changes inside the band "
                f"(Metropolis, uniform target) from uniform starting networks, seed {seed}")
    if spread:
        sampling += (f"; and {spread} more over the table's whole range for the correlation of latency and accuracy "
                     "(6 bands 5 % of the range wide, centred from 5 to 90 % of it, drawn the same way)")
    bands_rho = _spearman([r.table_latency_ms for r in pooled], [r.top1 for r in pooled])
    everything = pooled + spread_children
    rho = _spearman([r.table_latency_ms for r in everything], [r.top1 for r in everything]) if spread else bands_rho
    return VersusRandom(comparisons, rho, sampling, spread_children, bands_rho)
