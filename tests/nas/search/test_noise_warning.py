"""``nas search``'s printer of the server's noise warning: the target, its limit and the server's words, once per
target; nothing without a warning."""

from __future__ import annotations

import io

from nas.search.noise_warning import NoiseWarnings
from shared.api_schemas import LatencyStats, NetworkResponse, Verdict


def _answer(warning: str | None) -> NetworkResponse:
    stats = LatencyStats(median_ms=1.0, iqr_ms=0.1, p90_ms=1.1, samples=5, warmup=1)
    verdict = Verdict(central_ms=1.0, upper_ms=2.4, confidence=0.95, rounds=5, history=40, ratio=2.0,
                      reference_typical_ms=0.5, sd_device=0.5, sd_ratio=0.02, quantile="normal", method="m",
                      noise_warning=warning)
    return NetworkResponse(fingerprint="f", measured=stats, predicted_ms=None, verdict=verdict)


def test_the_warning_is_printed_once_per_target_with_its_limit() -> None:
    out = io.StringIO()
    noise = NoiseWarnings(out)
    noise.see("http://a:8000", 2.0, _answer(None))
    assert out.getvalue() == ""
    noise.see("http://a:8000", 2.0, _answer("the device is too noisy for a tight bound: ..."))
    noise.see("http://a:8000", 2.0, _answer("the device is too noisy for a tight bound: again"))
    noise.see("http://b:8000", 3.0, _answer("the device is too noisy for a tight bound: b"))
    text = out.getvalue()
    assert text.count("too noisy") == 2
    assert "warning: http://a:8000 (limit 2 ms): the device is too noisy" in text
    assert "http://b:8000 (limit 3 ms)" in text and "again" not in text
    assert "far less than the limit" in text
