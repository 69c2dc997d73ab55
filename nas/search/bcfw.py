"""Block-Coordinate Frank-Wolfe over (alpha, beta) under a hard expected-latency limit.

This module owns the optimizer: its settings (:class:`BCFWConfig`) and its state and step (:class:`BCFW`); the
limit check is :mod:`nas.search.latency_limit`, the start :mod:`nas.search.start`. Every iterate is feasible: each step
moves one block (alpha or beta) towards an exact LP vertex (:mod:`nas.search.floored_vertex`), and both endpoints
satisfy the same linear constraints, one per target (a fleet's further tables and limits: ``others``), so every
iterate meets every target's limit. The final network comes from :mod:`nas.search.finalize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nas.latency.expected_latency import LatencyModel
from nas.search.discretize import NetworkScore
from nas.search.floored_vertex import floored_vertex, lp_vertex
from nas.search.latency_limit import check_limit
from nas.search.start import fleet_start

__all__ = [
    "BCFW",
    "BCFWConfig",
    "StepInfo",
]

Block = Literal["alpha", "beta"]

#: a block that (almost) never ran has its averaged gradient divided by at least this activity
ACTIVITY_FLOOR = 1e-9


@dataclass(frozen=True)
class BCFWConfig:
    """Optimizer and final-step settings.

    Step size of a block's ``k``-th step (``k`` counts that block's own steps): ``fixed``: ``max_step``; ``decaying``:
    ``max_step * c / (k + c)`` with ``c = step_offset``. Gradient averaging after the ``t``-th gradient (both blocks'
    averages take every gradient): ``m <- (1 - rho) m + rho g`` with ``rho = 1 - momentum`` (``fixed``, the original's
    momentum) or ``rho = (a / (t + a)) ** momentum_power`` with ``a = averaging_offset`` (``decaying``; the first
    gradient replaces the empty average). Stochastic Frank-Wolfe's recipe is decaying steps with a more slowly decaying
    averaging weight (Mokhtari, Hassani and Karbasi 2018: ``2 / (t + 8)`` and ``(8 / (t + 8)) ** (2/3)``). The defaults
    -- steps ``4 / (k + 8)``, averaging weight ``1 / (t + 1)``, the running mean of all gradients -- recovered planted
    optima best and leave the distribution near a stationary point (of the problem whose beta keeps ``depth_floor`` on
    every depth; ``bench/search_quality.py``): the averages feed an additive loss model (:meth:`BCFW.surrogate`) rather
    than being used raw, which is what makes a long average pay off, and a first step of 0.5 keeps part of the start so
    no block stops running after one noisy gradient.
    """

    block_choice: Literal["random", "alternate"] = "alternate"
    start_with_alpha: bool = False  # first block under "alternate" (the original starts with beta)
    step_schedule: Literal["fixed", "decaying"] = "decaying"
    max_step: float = 0.5
    step_offset: float = 8.0
    momentum_schedule: Literal["fixed", "decaying"] = "decaying"
    momentum: float = 0.9  # fixed schedule: weight of the old buffer
    momentum_power: float = 1.0
    averaging_offset: float = 1.0
    #: what each LP minimises: "surrogate" (the gradient, at the current point, of the additive loss model the
    #: averages fit: :meth:`BCFW.surrogate`) or "momentum" (the averaged raw gradients, as the original)
    objective: Literal["surrogate", "momentum"] = "surrogate"
    #: what the final network maximises (:mod:`nas.search.finalize`): "linearised" (the averaged gradients'
    #: first-order loss) or "probability" (the network's probability under the final distribution)
    final_score: Literal["linearised", "probability"] = "linearised"
    #: what an option's noisy estimate is shrunk towards (:meth:`BCFW.surrogate`): "block" (its block's mean) or
    #: "latency" (its block's line over the options' log latency; on the wide planted families a wash: better where
    #: utility follows latency closely, worse where it does not -- ``bench/search_quality.py --wide``)
    prior: Literal["latency", "block"] = "block"
    #: exploration: every beta vertex keeps at least this probability on every depth of every stage (less where the
    #: latency room cannot pay for it: :mod:`nas.search.floored_vertex`), so every block keeps running and its
    #: options keep being estimated. Without it a depth the LP leaves early stops its blocks for good: their
    #: estimates rest on the few gradients of the first steps, and the final network (an exact optimum of those
    #: estimates) can take such a block on a lucky estimate or leave it on an unlucky one; more steps do not help.
    #: 0: the plain LP.
    depth_floor: float = 0.05
    #: adaptive step budget (:func:`nas.search.driver.search`): after the steps asked, the search goes on while the
    #: averaged gradients' noise-to-signal ratio (:meth:`BCFW.noise_to_signal`) is above ``noise_target``, up to
    #: ``step_cap`` times the steps asked (1: never extend). Runs asked for fewer than ``extend_from`` steps are
    #: smoke or time-boxed runs (the demo's) whose owner chose speed, and keep their count. The cap is high because
    #: the noise, not the count asked, sets what is needed: with gradient noise four times the utilities' spread, 200
    #: steps asked and a tight limit, 40 planted cases ended over 5 % regret 10 times under a cap of 4, twice under
    #: 8 and once under 16 (``bench/search_quality.py --wide``'s families); only such runs reach the cap.
    noise_target: float = 0.01
    step_cap: float = 12.0
    extend_from: int = 100

    def __post_init__(self) -> None:
        if self.block_choice not in ("random", "alternate"):
            raise ValueError(f"block_choice: expected 'random' or 'alternate', got {self.block_choice!r}")
        for name in ("step_schedule", "momentum_schedule"):
            if getattr(self, name) not in ("fixed", "decaying"):
                raise ValueError(f"{name}: expected 'fixed' or 'decaying', got {getattr(self, name)!r}")
        if self.objective not in ("surrogate", "momentum"):
            raise ValueError(f"objective: expected 'surrogate' or 'momentum', got {self.objective!r}")
        if self.final_score not in ("linearised", "probability"):
            raise ValueError(f"final_score: expected 'linearised' or 'probability', got {self.final_score!r}")
        if self.prior not in ("latency", "block"):
            raise ValueError(f"prior: expected 'latency' or 'block', got {self.prior!r}")
        if not 0.0 < self.max_step <= 1.0:
            raise ValueError(f"max_step: expected a value in (0, 1], got {self.max_step}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1), got {self.momentum}")
        for name in ("step_offset", "averaging_offset"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a positive value, got {getattr(self, name)}")
        if not 0.0 <= self.depth_floor < 0.5:
            raise ValueError(f"depth_floor: expected a value in [0, 0.5), got {self.depth_floor}")
        if not self.noise_target > 0.0:
            raise ValueError(f"noise_target: expected a positive value, got {self.noise_target}")
        if not self.step_cap >= 1.0:
            raise ValueError(f"step_cap: expected a value of at least 1, got {self.step_cap}")
        if self.extend_from < 0:
            raise ValueError(f"extend_from: expected a non-negative step count, got {self.extend_from}")
        if not 0.0 <= self.momentum_power <= 1.0:
            raise ValueError(f"momentum_power: expected a value in [0, 1], got {self.momentum_power}")


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
    """The optimizer state: (alpha, beta), averaged gradients, step counters and its own random generator.

    Without a given start, (alpha, beta) start at the maximum-entropy distribution under the limits
    (:func:`nas.search.start.fleet_start`). ``others`` are further ``(model, limit_ms)`` targets (same space);
    the caller checks that they can be met together (:func:`nas.search.fleet.check_fleet`).
    """

    model: LatencyModel
    limit_ms: float
    config: BCFWConfig = field(default_factory=BCFWConfig)
    seed: int = 0
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    others: tuple[tuple[LatencyModel, float], ...] = ()

    def __post_init__(self) -> None:
        check_limit(self.model, self.limit_ms)
        self.others = tuple(self.others)
        for other, limit in self.others:
            check_limit(other, limit)
        if self.alpha is None or self.beta is None:
            self.alpha, self.beta = fleet_start(self.constraints)
        self.alpha = np.array(self.alpha, dtype=np.float64)
        self.beta = np.array(self.beta, dtype=np.float64)
        if self.alpha.shape != self.model.alpha_shape or self.beta.shape != self.model.beta_shape:
            raise ValueError("alpha/beta shapes do not match the latency model")
        if self.config.depth_floor * self.beta.shape[1] >= 1.0:
            raise ValueError(f"depth_floor {self.config.depth_floor} leaves nothing to the LP over "
                             f"{self.beta.shape[1]} depths")
        # running averages, with the gradients' weights, of the gradients and of the point they were taken at
        self.m_alpha = np.zeros_like(self.alpha)
        self.m_beta = np.zeros_like(self.beta)
        self.m_point = np.zeros_like(self.alpha)
        self.m_active = np.zeros(self.alpha.shape[:2])  # probability that each block ran
        # the noise: per block, sum of squared weights times activity (the variance of m_alpha per unit of noise
        # variance per run), and the noise variance per run pooled over the blocks (residual^2 / activity)
        self.m_weight_sq = np.zeros(self.alpha.shape[:2])
        self.m_residual_sq = 0.0
        self.m_activity_all = 0.0
        self.k = 0  # steps taken (= gradients averaged)
        self.block_steps: dict[str, int] = {"alpha": 0, "beta": 0}
        self.rng = np.random.default_rng(self.seed)

    # -- schedules ------------------------------------------------------------------------------------------
    def gamma(self, block: Block) -> float:
        """Step size of ``block``'s next step."""
        cfg = self.config
        if cfg.step_schedule == "fixed":
            return cfg.max_step
        return cfg.max_step * cfg.step_offset / (self.block_steps[block] + cfg.step_offset)

    def averaging_weight(self) -> float:
        """Weight ``rho`` of the next gradient in the averaged gradients."""
        cfg = self.config
        if cfg.momentum_schedule == "fixed":
            return 1.0 - cfg.momentum
        return (cfg.averaging_offset / (self.k + cfg.averaging_offset)) ** cfg.momentum_power

    def next_block(self) -> Block:
        """Which block the current step updates."""
        if self.config.block_choice == "alternate":
            first: Block = "alpha" if self.config.start_with_alpha else "beta"
            second: Block = "beta" if first == "alpha" else "alpha"
            return first if self.k % 2 == 0 else second
        return "alpha" if self.rng.random() < 0.5 else "beta"

    @property
    def constraints(self) -> list[tuple[LatencyModel, float]]:
        """Every target's ``(model, limit_ms)``, the first one's first."""
        return [(self.model, self.limit_ms), *self.others]

    def expected_latency_ms(self) -> float:
        return self.model.expected_latency_ms(self.alpha, self.beta)

    def expected_latencies_ms(self) -> tuple[float, ...]:
        """Every target's expected latency at the current point."""
        return tuple(m.expected_latency_ms(self.alpha, self.beta) for m, _ in self.constraints)

    def _lmo(self, c: np.ndarray, rows: list[np.ndarray], room: list[float]) -> tuple[np.ndarray, float]:
        """The exact LP vertex of one block under every target's row (a hook: benches record the LPs here)."""
        return lp_vertex(c, rows, room)

    # -- the averaged loss model ---------------------------------------------------------------------------
    def _option_estimate(self) -> np.ndarray:
        """Each option's loss contribution per run of its block, unshrunk: averaged gradient / averaged activity."""
        return -self.m_alpha / np.maximum(self.m_active, ACTIVITY_FLOOR)[:, :, None]

    def surrogate(self) -> NetworkScore:
        """The additive loss model the averaged gradients fit: ``option[s, j, i]`` and ``depth[s, d]`` estimate
        minus each option's and depth's loss contribution.

        The alpha gradient of a block is its options' contributions times the probability that it runs, so the
        averaged gradient divided by the averaged activity estimates them; the beta gradient of a depth holds the
        depth's own contribution plus its blocks' expected ones (under the alpha the gradients saw), which the
        options already account for.
        """
        option, seen, noise, signal = self._noise_and_signal()
        # empirical Bayes: an option's difference from its block's seen mean is shrunk by signal / (signal + noise)
        if self.config.prior == "latency":
            centre = self._latency_line(option, noise)
            spread = ((option - centre) ** 2).mean(axis=-1)
            noise = noise * (1.0 - 2.0 / option.shape[-1])  # the line took two of each block's degrees of freedom
            signal = max(float(np.sum(self.m_active * (spread - noise)) / max(np.sum(self.m_active), 1e-300)), 0.0)
        else:
            centre = seen
        total = signal + noise
        shrink = np.divide(signal, total, out=np.ones_like(total), where=total > 0)[:, :, None]
        option = centre + (option - centre) * shrink
        return NetworkScore(option, -self.m_beta - seen[:, :, 0] @ self.model.block_weight)

    def _noise_and_signal(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The unshrunk option estimates, each block's seen mean of them, each block's noise variance of an
        estimate, and the signal variance (the options' spread about their block's mean less the noise).

        The noise is each block's own; the signal is pooled over the blocks, weighted by how often they ran, so
        blocks the search hardly ran cannot inflate it.
        """
        option = self._option_estimate()
        seen = np.einsum("sjo,sjo->sj", self.m_point, option)[:, :, None]
        per_run = self.m_residual_sq / self.m_activity_all if self.m_activity_all > 0 else 0.0
        noise = per_run * self.m_weight_sq / np.maximum(self.m_active, ACTIVITY_FLOOR) ** 2
        spread = ((option - seen) ** 2).mean(axis=-1)
        signal = max(float(np.sum(self.m_active * (spread - noise)) / max(np.sum(self.m_active), 1e-300)), 0.0)
        return option, seen, noise, signal

    def noise_to_signal(self) -> float:
        """How noisy the averaged gradients still are: the activity-weighted mean noise variance of an option's
        estimate over the signal variance between options (0 without noise, ``inf`` when no signal is seen yet).

        Under the running mean the noise variance falls as one over the gradients averaged, so this ratio says how
        many more gradients would bring it to a given level.
        """
        if self.k < 2:
            return math.inf
        _, _, noise, signal = self._noise_and_signal()
        mean_noise = float(np.sum(self.m_active * noise) / max(float(np.sum(self.m_active)), 1e-300))
        if mean_noise <= 0.0:
            return 0.0
        return mean_noise / signal if signal > 0.0 else math.inf

    def _latency_line(self, option: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Each block's least-squares line of its options' estimates over their log table latency, its slope
        shrunk towards zero by its own noise (``slope^2 / (slope^2 + var)``): what the estimates are shrunk to."""
        x = np.log(np.maximum(self.model.block_ms, 1e-12))
        x = x - x.mean(axis=-1, keepdims=True)
        sxx = np.maximum((x**2).sum(axis=-1), 1e-300)
        mean = option.mean(axis=-1, keepdims=True)
        slope = (x * (option - mean)).sum(axis=-1) / sxx
        var = noise / sxx
        slope = slope * np.divide(slope**2, slope**2 + var, out=np.zeros_like(slope), where=slope**2 + var > 0)
        return mean + slope[:, :, None] * x

    def _lp_objective(self, block: Block, active: np.ndarray) -> np.ndarray:
        """The gradient estimate the LP of ``block`` minimises (``[blocks, options]``)."""
        if self.config.objective == "momentum":  # the original: the averaged raw gradients
            return self.m_alpha.reshape(-1, self.alpha.shape[-1]) if block == "alpha" else self.m_beta
        model = self.surrogate()  # the gradient of the surrogate's expectation at the current point
        if block == "alpha":
            return (-active[:, :, None] * model.option).reshape(-1, self.alpha.shape[-1])
        per_block = np.einsum("sjo,sjo->sj", self.alpha, model.option)
        return -(model.depth + per_block @ self.model.block_weight)

    def beta_vertex(self, c: np.ndarray, rows: list[np.ndarray], room: list[float]) -> tuple[np.ndarray, float]:
        """The beta LP's vertex with this search's depth floor (:func:`nas.search.floored_vertex.floored_vertex`)."""
        return floored_vertex(c, rows, room, self.config.depth_floor, self._lmo)

    # -- the step ---------------------------------------------------------------------------------------------
    def step(self, grad_alpha: np.ndarray, grad_beta: np.ndarray, block: Block | None = None) -> StepInfo:
        """One BCFW step from the loss gradients w.r.t. alpha ``[S, D, O]`` and beta ``[S, nd]`` taken at the
        current point: the averages take them, one block moves towards its LP vertex."""
        block = block or self.next_block()
        rho = self.averaging_weight()
        gamma = self.gamma(block)
        active = self.model.depth_weights(self.beta)
        grad_alpha = np.asarray(grad_alpha, dtype=np.float64).reshape(self.alpha.shape)
        if self.k > 0:  # residual against the estimate so far (none before the first gradient)
            residual = grad_alpha + active[:, :, None] * self._option_estimate()
            self.m_residual_sq += rho * (float(np.mean(residual**2)) - self.m_residual_sq)
            self.m_activity_all += rho * (float(np.mean(active)) - self.m_activity_all)
        self.m_weight_sq = (1.0 - rho) ** 2 * self.m_weight_sq + rho**2 * active
        self.m_alpha += rho * (grad_alpha - self.m_alpha)
        self.m_beta += rho * (np.asarray(grad_beta, dtype=np.float64).reshape(self.beta.shape) - self.m_beta)
        self.m_point += rho * (self.alpha - self.m_point)
        self.m_active += rho * (active - self.m_active)
        c = self._lp_objective(block, active)
        if block == "alpha":
            shape = (-1, self.alpha.shape[-1])
            rows = [m.alpha_coefficients(self.beta).reshape(shape) for m, _ in self.constraints]
            x, price = self._lmo(c, rows, [limit - m.fixed_ms for m, limit in self.constraints])
            self.alpha = self.alpha + gamma * (x.reshape(self.alpha.shape) - self.alpha)
        else:
            coefs = [m.beta_coefficients(self.alpha) for m, _ in self.constraints]
            room = [limit - m.fixed_ms - const for (m, limit), (_, const) in zip(self.constraints, coefs, strict=True)]
            x, price = self.beta_vertex(c, [coef for coef, _ in coefs], room)
            self.beta = self.beta + gamma * (x - self.beta)
        info = StepInfo(self.k, block, gamma, self.expected_latency_ms(), price)
        self.k += 1
        self.block_steps[block] += 1
        return info
