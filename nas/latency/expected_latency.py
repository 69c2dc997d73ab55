"""The bilinear expected-latency model of the search, in float64 milliseconds.

``E(alpha, beta) = fixed_ms + p.alpha + alpha^T Q beta`` where ``alpha`` holds the option probabilities of
every block position (``[stage, block, option]``, flattened stage-major) and ``beta`` the depth
probabilities of every stage (``[stage, depth]``). The model is built from a dense per-position table
``block_ms[stage, block, option]``; any per-position correction (boundary costs, blocks timed in context)
only changes those entries, so the model stays bilinear and the exact oracle of :mod:`nas.search.lmo` still applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from shared.search_space import ArchChoice, SearchSpace

__all__ = ["LatencyModel", "LatencyModelError"]


class LatencyModelError(ValueError):
    """A latency table that cannot describe the search space (wrong shape, non-finite entries)."""


@dataclass(frozen=True)
class LatencyModel:
    """Expected latency of (alpha, beta) for one search space and one latency table.

    ``block_ms[s, j, i]`` is the latency of option ``i`` at block position ``j`` of searchable stage ``s``;
    ``depths`` are the allowed stage depths (the beta support, ascending, each at least 1).
    """

    block_ms: np.ndarray
    fixed_ms: float
    depths: tuple[int, ...] = (2, 3, 4)
    p: np.ndarray = field(init=False, repr=False, compare=False)
    Q: np.ndarray = field(init=False, repr=False, compare=False)
    block_weight: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = np.array(self.block_ms, dtype=np.float64)
        if t.ndim != 3:
            raise LatencyModelError(f"block_ms: expected [stages, blocks, options], got shape {t.shape}")
        if not np.all(np.isfinite(t)) or not math.isfinite(self.fixed_ms):
            raise LatencyModelError("latency table has non-finite entries")
        depths = tuple(int(d) for d in self.depths)
        if list(depths) != sorted(set(depths)) or depths[0] < 1 or depths[-1] != t.shape[1]:
            raise LatencyModelError(f"depths {depths} must be ascending, >= 1 and end at {t.shape[1]} blocks")
        t.setflags(write=False)
        num_s, num_b, num_o = t.shape
        # w[j, d] = 1 if block j (0-based) runs at depth depths[d]; block 0 is always on and lives in p
        w = np.array([[1.0 if j < d else 0.0 for d in depths] for j in range(num_b)])
        w[0, :] = 0.0
        p = np.zeros((num_s, num_b, num_o))
        p[:, 0, :] = t[:, 0, :]
        q = np.zeros((num_s, num_b, num_o, num_s, len(depths)))
        for s in range(num_s):
            q[s, :, :, s, :] = t[s, :, :, None] * w[:, None, :]
        object.__setattr__(self, "block_ms", t)
        object.__setattr__(self, "fixed_ms", float(self.fixed_ms))
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "p", p.reshape(-1))
        object.__setattr__(self, "Q", q.reshape(num_s * num_b * num_o, num_s * len(depths)))
        object.__setattr__(self, "block_weight", w)

    @classmethod
    def from_space(cls, space: SearchSpace, block_ms: np.ndarray, fixed_ms: float) -> LatencyModel:
        """A model over ``space`` (checks the table's shape against the space)."""
        expected = (space.num_stages, space.max_depth, space.num_options)
        if tuple(np.shape(block_ms)) != expected:
            raise LatencyModelError(f"block_ms: expected shape {expected}, got {tuple(np.shape(block_ms))}")
        return cls(np.asarray(block_ms, dtype=np.float64), fixed_ms, tuple(space.depths))

    # -- shapes -----------------------------------------------------------------------------------------
    @property
    def alpha_shape(self) -> tuple[int, int, int]:
        return tuple(self.block_ms.shape)  # type: ignore[return-value]

    @property
    def beta_shape(self) -> tuple[int, int]:
        return (self.block_ms.shape[0], len(self.depths))

    def uniform(self) -> tuple[np.ndarray, np.ndarray]:
        """Uniform alpha and beta."""
        return (np.full(self.alpha_shape, 1.0 / self.alpha_shape[2]), np.full(self.beta_shape, 1.0 / len(self.depths)))

    # -- the bilinear form --------------------------------------------------------------------------------
    def depth_weights(self, beta: np.ndarray) -> np.ndarray:
        """``[stage, block]``: probability that each block position runs (1 for the first block)."""
        w = np.asarray(beta, dtype=np.float64) @ self.block_weight.T
        w[:, 0] = 1.0
        return w

    def expected_latency_ms(self, alpha: np.ndarray, beta: np.ndarray) -> float:
        """``fixed + p.alpha + alpha^T Q beta`` for probabilities ``alpha [S, D, O]`` and ``beta [S, nd]``."""
        a = np.asarray(alpha, dtype=np.float64).reshape(-1)
        b = np.asarray(beta, dtype=np.float64).reshape(-1)
        return float(self.fixed_ms + self.p @ a + a @ (self.Q @ b))

    def alpha_coefficients(self, beta: np.ndarray) -> np.ndarray:
        """``p + Q beta`` as ``[S, D, O]``: E is ``fixed + coef.alpha`` for this beta."""
        return self.block_ms * self.depth_weights(beta)[:, :, None]

    def beta_coefficients(self, alpha: np.ndarray) -> tuple[np.ndarray, float]:
        """``(Q^T alpha as [S, nd], p.alpha)``: E is ``fixed + const + coef.beta`` for this alpha."""
        per_block = np.einsum("sjo,sjo->sj", self.block_ms, np.asarray(alpha, dtype=np.float64))
        coef = per_block @ self.block_weight  # [S, nd]
        return coef, float(per_block[:, 0].sum())

    # -- discrete networks --------------------------------------------------------------------------------
    def choice_latency_ms(self, choice: ArchChoice) -> float:
        """Table latency of one network: fixed part plus its chosen entries (correctly rounded sum)."""
        terms = [self.fixed_ms]
        for s, stage in enumerate(choice.options):
            if len(stage) not in self.depths:
                raise LatencyModelError(f"stage {s + 1}: depth {len(stage)} not in {self.depths}")
            terms.extend(float(self.block_ms[s, j, i]) for j, i in enumerate(stage))
        return math.fsum(terms)

    def one_hot(self, choice: ArchChoice) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta) of a discrete network; unused block positions keep their first option."""
        alpha = np.zeros(self.alpha_shape)
        alpha[:, :, 0] = 1.0
        beta = np.zeros(self.beta_shape)
        for s, stage in enumerate(choice.options):
            for j, i in enumerate(stage):
                alpha[s, j, :] = 0.0
                alpha[s, j, i] = 1.0
            beta[s, self.depths.index(len(stage))] = 1.0
        return alpha, beta

    def lightest_choice(self) -> ArchChoice:
        """A network of minimum table latency (per stage the best depth with per-block cheapest options)."""
        stages = []
        for s in range(self.block_ms.shape[0]):
            cheapest = np.argmin(self.block_ms[s], axis=1)  # first index on ties
            best = min(
                self.depths,
                key=lambda d: (math.fsum(float(self.block_ms[s, j, cheapest[j]]) for j in range(d)), d),
            )
            stages.append(tuple(int(cheapest[j]) for j in range(best)))
        return ArchChoice(tuple(stages))

    def heaviest_choice(self) -> ArchChoice:
        """A network of maximum table latency."""
        stages = []
        for s in range(self.block_ms.shape[0]):
            dearest = np.argmax(self.block_ms[s], axis=1)
            best = max(
                self.depths,
                key=lambda d: (math.fsum(float(self.block_ms[s, j, dearest[j]]) for j in range(d)), d),
            )
            stages.append(tuple(int(dearest[j]) for j in range(best)))
        return ArchChoice(tuple(stages))

    def min_latency_ms(self) -> float:
        """The smallest achievable expected latency (attained by :meth:`lightest_choice`)."""
        return self.choice_latency_ms(self.lightest_choice())

    def max_latency_ms(self) -> float:
        """The largest achievable expected latency."""
        return self.choice_latency_ms(self.heaviest_choice())
