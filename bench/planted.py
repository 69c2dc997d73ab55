"""A planted search objective over a real latency table: known utilities, noisy gradients, the exact optimum.

Every (stage, position, option) has a utility and every (stage, depth) a depth utility; a network's utility ``U``
is the sum over its active blocks and its stages. The utilities follow latency the way a supernet's accuracy
does: more latency buys more, with diminishing returns (logarithmic in the option's latency over the position's
cheapest), per-stage and per-position weights, a random factor per option, and about a quarter of the options not
worth their latency (utility below that of a cheaper option of the same position). A search sees only noisy
stochastic gradients of the expected loss ``-E_{alpha,beta}[U]`` (:meth:`PlantedObjective.gradients`), never
``U``. The truth is the exact integer optimum of ``U`` under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.search import Gradients, LatencyModel
from nas.search.discretize import NetworkScore, best_network
from nas.search.lmo import solve_mck_lp
from shared.search_space import ArchChoice

__all__ = ["PlantedObjective", "planted_objective", "sample_networks"]


@dataclass(frozen=True)
class PlantedObjective:
    """Utilities ``option[s, j, i]`` and ``depth[s, d]`` over one latency model."""

    model: LatencyModel
    utility: NetworkScore

    @property
    def spread(self) -> float:
        """Standard deviation of all the utilities (option and depth entries): the default gradient noise."""
        return float(np.std(np.concatenate([self.utility.option.ravel(), self.utility.depth.ravel()])))

    def of(self, choice: ArchChoice) -> float:
        return self.utility.of(choice, self.model.depths)

    def optimum(self, limit_ms: float) -> ArchChoice:
        """The exact integer optimum of ``U`` under ``limit_ms`` (MILP, checked by the table's exact sum)."""
        return best_network(self.utility, [(self.model, limit_ms)])

    def frank_wolfe_gap(self, alpha: np.ndarray, beta: np.ndarray, limit_ms: float) -> float:
        """How far (alpha, beta) is from a stationary point of ``E[U]`` under the limit: the sum over the two blocks
        of the expected utility their exact LP vertex (noise-free gradients) would gain over them."""
        g = self.gradients(0.0, seed=0)(alpha, beta)
        r = limit_ms - self.model.fixed_ms
        shape = (-1, alpha.shape[-1])
        s_alpha = solve_mck_lp(g.alpha.reshape(shape), self.model.alpha_coefficients(beta).reshape(shape), r).x
        coef, const = self.model.beta_coefficients(alpha)
        s_beta = solve_mck_lp(g.beta, coef, r - const).x
        gap_alpha = np.sum(g.alpha.reshape(shape) * (alpha.reshape(shape) - s_alpha))
        return float(gap_alpha + np.sum(g.beta * (beta - s_beta)))

    def gradients(self, noise_sd: float, seed: int):
        """A gradient source ``(alpha, beta) -> Gradients`` of the loss ``-E[U]`` with Gaussian noise.

        A block that runs in a share ``P`` of the sampled networks contributes gradient only from those:
        its option gradients are ``-P u`` with noise sd ``noise_sd * sqrt(P)`` (a batch average over the images
        that ran it); depth gradients carry noise sd ``noise_sd``.
        """
        rng = np.random.default_rng(seed)
        u, v, model = self.utility.option, self.utility.depth, self.model

        def grads(alpha: np.ndarray, beta: np.ndarray) -> Gradients:
            active = model.depth_weights(beta)[:, :, None]
            ga = -active * u + noise_sd * np.sqrt(active) * rng.normal(size=u.shape)
            per_block = np.einsum("sjo,sjo->sj", alpha, u)
            gb = -(v + per_block @ model.block_weight) + noise_sd * rng.normal(size=v.shape)
            expected = float(np.sum(model.depth_weights(beta) * per_block) + np.sum(beta * v))
            return Gradients(ga, gb, -expected + noise_sd * float(rng.normal()))

        return grads


def planted_objective(model: LatencyModel, seed: int, *, not_worth: float = 0.25) -> PlantedObjective:
    """Random utilities correlated with ``model``'s latencies (see the module docstring), from ``seed``."""
    rng = np.random.default_rng(seed)
    t = model.block_ms
    num_s, num_b, num_o = t.shape
    cheapest = t.min(axis=-1, keepdims=True)
    stage_weight = rng.lognormal(0.0, 0.4, size=(num_s, 1, 1))
    position_weight = (0.8 ** np.arange(num_b))[None, :, None]
    gain = np.log(t / np.maximum(cheapest, 1e-12)) + 0.5  # a block is worth something even at its cheapest
    u = stage_weight * position_weight * gain * rng.lognormal(0.0, 0.25, size=t.shape)
    for s, j in np.ndindex(num_s, num_b):  # options not worth their latency: below a cheaper option
        order = np.argsort(t[s, j], kind="stable")
        for rank in range(1, num_o):
            if rng.random() < not_worth:
                i, cheaper = order[rank], order[rng.integers(0, rank)]
                u[s, j, i] = u[s, j, cheaper] * rng.uniform(0.5, 0.95)
    depth = stage_weight[:, :, 0] * rng.normal(0.0, 0.3, size=(num_s, len(model.depths)))
    depth[:, 0] = 0.0
    return PlantedObjective(model, NetworkScore(u, depth))


def sample_networks(model: LatencyModel, alpha: np.ndarray, beta: np.ndarray, count: int,
                    rng: np.random.Generator) -> list[ArchChoice]:
    """``count`` networks drawn from the product distribution (alpha, beta)."""
    num_s, num_b, num_o = model.alpha_shape
    cum_a = np.cumsum(alpha, axis=-1)
    cum_b = np.cumsum(beta, axis=-1)
    pick_a = (rng.random((count, num_s, num_b, 1)) > cum_a[None]).sum(-1).clip(max=num_o - 1)
    pick_b = (rng.random((count, num_s, 1)) > cum_b[None]).sum(-1).clip(max=len(model.depths) - 1)
    return [
        ArchChoice(tuple(tuple(int(i) for i in pick_a[n, s, : model.depths[pick_b[n, s]]]) for s in range(num_s)))
        for n in range(count)
    ]
