"""Gradient sources of known losses for the search's tests."""

from __future__ import annotations

import numpy as np

from nas.search import Gradients, NetworkScore


def planted_gradients(model, utility: NetworkScore, noise: float, seed: int):
    """Noisy gradients of ``-E[U]`` for the additive utility ``U`` (a block contributes only when it runs)."""
    rng = np.random.default_rng(seed)

    def grads(alpha: np.ndarray, beta: np.ndarray) -> Gradients:
        active = model.depth_weights(beta)[:, :, None]
        ga = -active * utility.option + noise * np.sqrt(active) * rng.normal(size=alpha.shape)
        per_block = np.einsum("sjo,sjo->sj", alpha, utility.option)
        gb = -(utility.depth + per_block @ model.block_weight) + noise * rng.normal(size=beta.shape)
        return Gradients(ga, gb, 0.0)

    return grads


def latency_gradients(seed: int, model):
    """Noisy gradients of a loss that falls with latency (each option's gain is its latency, randomly scaled), so
    the limit binds."""
    rng = np.random.default_rng(seed)
    gain = model.block_ms * rng.lognormal(0.0, 0.2, size=model.alpha_shape)

    def grads(alpha: np.ndarray, beta: np.ndarray) -> Gradients:
        active = model.depth_weights(beta)[:, :, None]
        ga = -active * gain + 0.3 * rng.normal(size=alpha.shape)
        gb = -np.einsum("sjo,sjo->sj", alpha, gain) @ model.block_weight + 0.3 * rng.normal(size=beta.shape)
        return Gradients(ga, gb, float(rng.uniform(1, 2)))

    return grads
