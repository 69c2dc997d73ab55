"""What a search is asked and what it returns: :class:`SearchSettings`, one :class:`TrajectoryRow` per BCFW step,
and :class:`SearchResult` with its ``result.json`` form.

This module owns the data of a search and nothing that computes it. A result keeps every attempt of the final
steps (one per internal limit tried, with its measurement when a server measured it) so ``result.json`` shows how
the returned network was chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.bcfw import BCFWConfig
from nas.search.discretize import NetworkScore
from nas.search.finalize import Finalization
from shared.search_space import ArchChoice, SearchSpace

__all__ = ["SearchResult", "SearchSettings", "TrajectoryRow", "attempt_record"]

#: a verdict's figures each target reports in result.json (None when not measured)
VERDICT_FIELDS = ("measured_latency_ms", "upper_latency_ms", "confidence", "raw_median_ms", "raw_spread_ms")


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines a search besides the table, the data and the supernet."""

    latency_limit_ms: float
    bcfw_steps: int = 500
    batch_size: int = 16
    train_percent: float = 80.0
    resolution: int = 224
    seed: int = 0
    bcfw: BCFWConfig = field(default_factory=BCFWConfig)
    aggregate_batches: int = 1
    #: BN statistics of the supernet passes: "batch" (each option's own, default) or "running" (the original's)
    bn_statistics: str = "batch"
    # the table's measuring identity this search needs
    backend: str = "onnxruntime"
    latency_batch_size: int = 1
    threads: int = 1
    #: the measured guarantee: a later measurement stays under the returned network's bound with this confidence
    confidence: float = 0.95
    #: networks the final steps propose along the score/latency trade-off, of which the one with the most accurate
    #: child on the held-out images is returned (1: the score's optimum alone, the paper's final step)
    child_candidates: int = 1


@dataclass(frozen=True)
class TrajectoryRow:
    """One BCFW step: which block moved, the step size, the expected latency after it and the batch loss."""

    step: int
    block: str
    gamma: float
    expected_latency_ms: float
    loss: float
    multiplier: float
    other_latencies_ms: tuple[float, ...] = ()  # the further targets' expected latencies after the step


@dataclass
class SearchResult:
    """A finished search. ``choice``/``arch`` is the network returned (the attempt marked ``returned``)."""

    space: SearchSpace
    model: LatencyModel
    settings: SearchSettings
    alpha: np.ndarray  # BCFW's final option probabilities [S, D, O] (input of the final steps)
    beta: np.ndarray  # [S, nd]
    init_latency_ms: float
    trajectory: list[TrajectoryRow]
    attempts: list[dict[str, Any]]
    finalization: Finalization
    score: NetworkScore  # the final objective every attempt of the final steps maximises
    lut_fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: further targets' (latency model, limit in ms): every iterate and the returned network meet them too
    others: tuple[tuple[LatencyModel, float], ...] = ()
    #: per target (the first one first), where its table came from and how it measures (endpoint or lut, backend,
    #: threads, batch_size): the descriptive half of result.json's ``targets``
    target_info: list[dict[str, Any]] = field(default_factory=list)
    #: rates a network's child on held-out data for the final steps (None: the score alone decides)
    judge: Callable[[ArchChoice], tuple[float, float]] | None = None
    #: parameter/MAC limits (:class:`~nas.search.resource_limits.ResourceLimit`) every iterate and the network meet
    resources: tuple = ()
    #: how many steps were asked and ran, and why (:func:`nas.search.driver.step_budget`; empty: not recorded)
    step_budget: dict[str, Any] = field(default_factory=dict)

    @property
    def extended_steps(self) -> bool:
        """Whether the search ran more steps than asked (its gradients were too noisy for the steps asked)."""
        return self.step_budget.get("ran", 0) > self.step_budget.get("asked", 0)

    @property
    def choice(self) -> ArchChoice:
        return self.finalization.choice

    @property
    def arch(self) -> str:
        return str(self.space.arch_from_choice(self.choice))

    @property
    def expected_latency_ms(self) -> float:
        """Table latency of the returned network (at most the limit)."""
        return self.finalization.latency_ms

    @property
    def relaxed_latency_ms(self) -> float:
        """Expected latency of BCFW's final distribution."""
        return self.model.expected_latency_ms(self.alpha, self.beta)

    def to_json(self) -> dict[str, Any]:
        """The ``result.json`` object."""
        s = self.settings
        out: dict[str, Any] = {
            "arch": self.arch,
            "expected_latency_ms": self.expected_latency_ms,
            "latency_limit_ms": s.latency_limit_ms,
            "lut_fingerprint": self.lut_fingerprint,
            "steps": len(self.trajectory),
            **({"step_budget": self.step_budget} if self.step_budget else {}),
            "seed": s.seed,
            "budget_used": self.expected_latency_ms / s.latency_limit_ms,
            "relaxed_expected_latency_ms": self.relaxed_latency_ms,
            "init_expected_latency_ms": self.init_latency_ms,
            "min_latency_ms": self.model.min_latency_ms(),
            "max_latency_ms": self.model.max_latency_ms(),
            "choice": [list(stage) for stage in self.choice.options],
            "depths": list(self.choice.depths),
            "space": self.space.name,
            "resolution": s.resolution,
            "settings": {
                **{k: v for k, v in asdict(s).items() if k != "bcfw"},
                "bcfw": asdict(s.bcfw),
            },
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "final_objective": {
                "kind": s.bcfw.final_score,
                "option": self.score.option.tolist(),
                "depth": self.score.depth.tolist(),
            },
            "attempts": self.attempts,
            "final_loss": self.trajectory[-1].loss if self.trajectory else None,
        }
        out.update(self.extra)
        out["targets"] = self.targets_json()
        if self.resources:  # every limit with the network's value (latency targets first, then params / MACs)
            from nas.search.resource_limits import limits_json

            latency = [(self.model, s.latency_limit_ms), *self.others]
            out["limits"] = limits_json(self.choice, latency, self.resources, self.alpha, self.beta)
        return out

    def targets_json(self) -> list[dict[str, Any]]:
        """One object per target: its source and settings, its limit, the returned network's table latency and, when
        its server measured it, the verdict (central figure, upper bound, confidence) and the attempts made."""
        limits = [self.settings.latency_limit_ms, *(limit for _, limit in self.others)]
        models = [self.model, *(m for m, _ in self.others)]
        fin = self.finalization
        returned = next((a for a in self.attempts if a.get("returned")), self.attempts[-1] if self.attempts else {})
        per_target = returned.get("targets") or [returned]
        out = []
        for k, limit in enumerate(limits):
            figures = per_target[k] if k < len(per_target) else {}
            out.append({
                **(self.target_info[k] if k < len(self.target_info) else {}),
                "latency_limit_ms": limit,
                "internal_limit_ms": fin.limits_ms[k],
                "expected_latency_ms": fin.latencies_ms[k],
                "relaxed_expected_latency_ms": models[k].expected_latency_ms(self.alpha, self.beta),
                **{key: figures.get(key) for key in VERDICT_FIELDS},
                "accepted": figures.get("accepted"),
                "attempts": len(self.attempts),
            })
        return out


def attempt_record(fin: Finalization, space: SearchSpace, num_targets: int | None = None) -> dict[str, Any]:
    """One attempt of the final steps as ``result.json`` lists it (a measurement adds its fields later); with
    several targets, ``targets`` holds each one's internal limit and table latency (its verdict is added there).
    ``num_targets``: how many of ``fin``'s limits are latency targets (the rest are parameter/MAC limits)."""
    num_targets = num_targets or len(fin.limits_ms)
    record: dict[str, Any] = {
        "internal_limit_ms": fin.limit_ms,
        "arch": str(space.arch_from_choice(fin.choice)),
        "expected_latency_ms": fin.latency_ms,
        "score": fin.score,
    }
    if fin.judged:
        record["candidates"] = [{"arch": str(space.arch_from_choice(j.choice)), "expected_latency_ms": j.latency_ms,
                                 "held_out_top1": j.top1,
                                 "held_out_loss": j.loss, "chosen": j.choice == fin.choice} for j in fin.judged]
    if num_targets > 1:
        record["targets"] = [{"internal_limit_ms": limit, "expected_latency_ms": latency}
                             for limit, latency in zip(fin.limits_ms[:num_targets], fin.latencies_ms[:num_targets],
                                                       strict=True)]
    return record
