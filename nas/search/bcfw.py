"""Block-Coordinate Frank-Wolfe over (alpha, beta) under a hard expected-latency limit.

This module owns the optimizer: its settings (:class:`BCFWConfig`), its state and step (:class:`BCFW`), the
balanced feasible start and the limit check every entry point shares. Every iterate is feasible: each step
moves one block (alpha or beta) towards the exact LP vertex of :mod:`nas.search.lmo`, and both endpoints satisfy
the same linear constraint. What turns the final distribution into one network lives in
:mod:`nas.search.finalize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nas.search.expected_latency import LatencyModel
from nas.search.lmo import solve_mck_lp

__all__ = [
    "BCFW",
    "BCFWConfig",
    "LatencyLimitError",
    "StepInfo",
    "balanced_init",
    "check_limit",
    "shrink_towards_lightest",
]

Block = Literal["alpha", "beta"]


class LatencyLimitError(ValueError):
    """The latency limit is below the smallest latency the table allows."""

    def __init__(self, limit_ms: float, minimum_ms: float) -> None:
        super().__init__(
            f"latency limit {limit_ms:.6g} ms is below the smallest achievable latency {minimum_ms:.6g} ms "
            "under this table"
        )
        self.limit_ms = limit_ms
        self.minimum_ms = minimum_ms


def check_limit(model: LatencyModel, limit_ms: float) -> float:
    """Raise :class:`LatencyLimitError` unless some network meets ``limit_ms``; return the minimum latency."""
    if not math.isfinite(limit_ms):
        raise ValueError(f"latency limit must be finite, got {limit_ms!r}")
    minimum = model.min_latency_ms()
    if minimum > limit_ms:
        raise LatencyLimitError(limit_ms, minimum)
    return minimum


def shrink_towards_lightest(
    model: LatencyModel, alpha: np.ndarray, beta: np.ndarray, limit_ms: float, *, iterations: int = 60
) -> tuple[np.ndarray, np.ndarray, float]:
    """The point ``(1-t) x + t x_min`` with the smallest ``t`` in [0, 1] whose expected latency is ``<= limit``.

    ``x_min`` is the lightest network; for a non-negative table the latency is monotone in ``t``, so bisection
    finds the point of the segment closest to ``x``. Returns ``(alpha, beta, t)``.
    """
    check_limit(model, limit_ms)
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    light_a, light_b = model.one_hot(model.lightest_choice())

    def at(t: float) -> tuple[np.ndarray, np.ndarray]:
        return (1.0 - t) * alpha + t * light_a, (1.0 - t) * beta + t * light_b

    if model.expected_latency_ms(alpha, beta) <= limit_ms:
        return alpha.copy(), beta.copy(), 0.0
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if model.expected_latency_ms(*at(mid)) <= limit_ms:
            hi = mid
        else:
            lo = mid
    a, b = at(hi)
    if hi == 1.0:
        a, b = light_a, light_b
    return a, b, hi


def balanced_init(model: LatencyModel, limit_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """The most uniform feasible start on the segment from uniform (alpha, beta) to the lightest network."""
    alpha, beta, _ = shrink_towards_lightest(model, *model.uniform(), limit_ms)
    return alpha, beta


@dataclass(frozen=True)
class BCFWConfig:
    """Optimizer settings (defaults follow the original project's search)."""

    block_choice: Literal["random", "alternate"] = "random"
    start_with_alpha: bool = False  # first block under "alternate" (the original starts with beta)
    momentum: float = 0.9  # m <- momentum * m + (1 - momentum) * g, per block
    step_schedule: Literal["fixed", "decaying"] = "fixed"
    max_step: float = 0.002  # fixed: gamma = max_step; decaying: gamma = max_step * 2n / (k + 2n)
    decay_n: float = 2.0
    sparsify_steps: int = 100
    #: after discretisation, spend the latency left under the limit on the searched distribution's preferred
    #: upgrades (:func:`fill_slack`)
    fill_slack: bool = True

    def __post_init__(self) -> None:
        if self.block_choice not in ("random", "alternate"):
            raise ValueError(f"block_choice: expected 'random' or 'alternate', got {self.block_choice!r}")
        if self.step_schedule not in ("fixed", "decaying"):
            raise ValueError(f"step_schedule: expected 'fixed' or 'decaying', got {self.step_schedule!r}")
        if not 0.0 < self.max_step <= 1.0:
            raise ValueError(f"max_step: expected a value in (0, 1], got {self.max_step}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1), got {self.momentum}")
        if self.decay_n <= 0:
            raise ValueError(f"decay_n: expected a positive value, got {self.decay_n}")
        if self.sparsify_steps < 2:
            raise ValueError(f"sparsify_steps: expected at least 2, got {self.sparsify_steps}")


@dataclass(frozen=True)
class StepInfo:
    """What one BCFW step did."""

    step: int
    block: Block
    gamma: float
    expected_latency_ms: float
    multiplier: float  # the LP's latency price (0 when the limit was not binding)


@dataclass
class BCFW:
    """The optimizer state: (alpha, beta), momentum buffers, step counter and its own random generator."""

    model: LatencyModel
    limit_ms: float
    config: BCFWConfig = field(default_factory=BCFWConfig)
    seed: int = 0
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_limit(self.model, self.limit_ms)
        if self.alpha is None or self.beta is None:
            self.alpha, self.beta = balanced_init(self.model, self.limit_ms)
        self.alpha = np.array(self.alpha, dtype=np.float64)
        self.beta = np.array(self.beta, dtype=np.float64)
        if self.alpha.shape != self.model.alpha_shape or self.beta.shape != self.model.beta_shape:
            raise ValueError("alpha/beta shapes do not match the latency model")
        self.m_alpha = np.zeros_like(self.alpha)
        self.m_beta = np.zeros_like(self.beta)
        self.k = 0
        self.rng = np.random.default_rng(self.seed)

    # -- schedule -------------------------------------------------------------------------------------------
    def gamma(self) -> float:
        """Step size of the current step."""
        cfg = self.config
        if cfg.step_schedule == "fixed":
            return cfg.max_step
        two_n = 2.0 * cfg.decay_n
        return cfg.max_step * two_n / (self.k + two_n)

    def next_block(self) -> Block:
        """Which block the current step updates."""
        if self.config.block_choice == "alternate":
            first: Block = "alpha" if self.config.start_with_alpha else "beta"
            second: Block = "beta" if first == "alpha" else "alpha"
            return first if self.k % 2 == 0 else second
        return "alpha" if self.rng.random() < 0.5 else "beta"

    def expected_latency_ms(self) -> float:
        return self.model.expected_latency_ms(self.alpha, self.beta)

    # -- the step -------------------------------------------------------------------------------------------
    def step(self, grad_alpha: np.ndarray, grad_beta: np.ndarray, block: Block | None = None) -> StepInfo:
        """One BCFW step from the loss gradients w.r.t. alpha ``[S, D, O]`` and beta ``[S, nd]``."""
        block = block or self.next_block()
        mu = self.config.momentum
        gamma = self.gamma()
        r = self.limit_ms - self.model.fixed_ms
        if block == "alpha":
            g = np.asarray(grad_alpha, dtype=np.float64).reshape(self.alpha.shape)
            self.m_alpha = mu * self.m_alpha + (1.0 - mu) * g
            a = self.model.alpha_coefficients(self.beta)
            shape = (-1, self.alpha.shape[-1])
            res = solve_mck_lp(self.m_alpha.reshape(shape), a.reshape(shape), r)
            self.alpha = self.alpha + gamma * (res.x.reshape(self.alpha.shape) - self.alpha)
        else:
            g = np.asarray(grad_beta, dtype=np.float64).reshape(self.beta.shape)
            self.m_beta = mu * self.m_beta + (1.0 - mu) * g
            coef, const = self.model.beta_coefficients(self.alpha)
            res = solve_mck_lp(self.m_beta, coef, r - const)
            self.beta = self.beta + gamma * (res.x - self.beta)
        info = StepInfo(self.k, block, gamma, self.expected_latency_ms(), res.multiplier)
        self.k += 1
        return info
