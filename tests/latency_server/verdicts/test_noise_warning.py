"""The verdict's noise warning: words when the bound is too far above the central figure, none otherwise, and the
best bound reachable never above the verdict's own."""

from __future__ import annotations

import numpy as np

from latency_server.verdicts.bound import prediction_bound
from latency_server.verdicts.noise_warning import best_reachable_ms, noise_warning


def _verdict(rng: np.random.Generator, drift: float):
    """A verdict over 30 series of 5 figures whose level drifts by ``drift`` (log-sd), jitter 2 %."""
    history, labels = [], []
    for s in range(30):
        level = rng.normal(0.0, drift)
        history += list(4.0 * np.exp(level + rng.normal(0.0, 0.02, 5)))
        labels += [s] * 5
    reference = list(4.0 * np.exp(rng.normal(0.0, 0.02, 5)))
    network = [2.5 * r for r in reference]
    return prediction_bound(network, reference, history + reference, history_series=labels + ["this"] * 5,
                            future_rounds=5)


def test_a_wide_drift_gets_a_warning_in_words_and_a_quiet_device_none() -> None:
    rng = np.random.default_rng(2)
    noisy = _verdict(rng, drift=0.4)
    assert noisy.upper_ms > 1.5 * noisy.central_ms
    warning = noise_warning(noisy, threshold=1.5, max_rounds=25, future_rounds=5)
    assert warning is not None
    for words in ("too noisy", "drifts by about", "best bound reachable now", "fewer threads", "pinning",
                  "quieter moment", "more rounds cannot remove the drift"):
        assert words in warning
    assert noisy.central_ms < best_reachable_ms(noisy, 25, 5) <= noisy.upper_ms
    quiet = _verdict(rng, drift=0.01)
    assert quiet.upper_ms < 1.5 * quiet.central_ms
    assert noise_warning(quiet, threshold=1.5, max_rounds=25, future_rounds=5) is None
    # the threshold is the setting's: a low one warns on the quiet device too
    assert noise_warning(quiet, threshold=1.0001, max_rounds=25, future_rounds=5) is not None
