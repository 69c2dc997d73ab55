"""Synthetic gradients for exercising the search without a supernet (benchmarks of the latency side, tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas.search.driver import Gradients

__all__ = ["prefer_large_networks"]


def prefer_large_networks(seed: int, noise: float = 0.3) -> Callable[[np.ndarray, np.ndarray], Gradients]:
    """Gradients that prefer the widest options and the deepest stages, plus Gaussian noise of sd ``noise``: a
    search driven by them always ends at its latency limit (the limit binds)."""
    rng = np.random.default_rng(seed)

    def gradients(alpha: np.ndarray, beta: np.ndarray) -> Gradients:
        ga = -np.linspace(0, 1, alpha.shape[-1]) + noise * rng.normal(size=alpha.shape)
        gb = -np.linspace(0, 1, beta.shape[-1]) + noise * rng.normal(size=beta.shape)
        return Gradients(ga, gb, 1.0)

    return gradients
