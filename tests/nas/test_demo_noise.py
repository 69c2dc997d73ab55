"""The demo's paragraph on a noisy device (issue #33): it appears for a noisy row set (bounds far above their central
figures, or little budget used) with each row's ratio, the server's warning, why and what would help, and not for
a quiet one; the server's warnings are gathered from the searches' results and later answers, each once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nas.demo.noise import noise_paragraph, noise_warnings


def _row(limit: float, central: float, upper: float) -> dict[str, Any]:
    return {"limit_ms": limit, "verified_central_ms": central, "verified_upper_ms": upper,
            "budget_used": central / limit}


def test_the_noise_paragraph_appears_for_a_noisy_row_set_only() -> None:
    quiet = [_row(1.166, 0.98, 1.14), _row(1.458, 1.18, 1.318), _row(1.75, 1.52, 1.655)]  # 1.1x, 81-87 % used
    assert noise_paragraph(quiet) == []
    assert noise_paragraph(quiet, ["too noisy"]) == []  # a quiet table needs no explanation
    noisy = [_row(2.365, 1.51, 2.205), _row(3.55, 1.81, 2.538), _row(4.735, 1.99, 2.834)]  # 1.4-1.5x, 42-64 %
    warning = "the device's drift is 9 %; the best bound reachable now is 1.4x the central figure"
    lines = noise_paragraph(noisy, [warning])
    text = "\n".join(lines)
    assert "the device was noisy" in text
    assert "bound 2.205 / central 1.510 = 1.46x, budget used 64 %" in text  # each row's ratio
    assert "bound 2.834 / central 1.990 = 1.42x, budget used 42 %" in text
    assert "the central figure is not enough" in text  # why
    assert "limit 4.735 ms: bound at 60 %" in text and "limit 2.365 ms: bound at" not in text  # room left over
    assert "quieter moment" in text and "pin" in text and "fewer threads" in text  # what would help
    assert f"> {warning}" in lines
    # a low budget used alone (bound close to the central figure) is explained too
    assert noise_paragraph([_row(2.0, 1.2, 1.3)]) != []


def test_noise_warnings_are_read_from_results_and_answers_once() -> None:
    verdict = {"noise_warning": "noisy now"}
    results = [{"verdict": verdict, "attempts": [{"verdict": verdict}, {"verdict": {"noise_warning": None}}]},
               {"verdict": None, "attempts": []}]
    answer = SimpleNamespace(verdict=SimpleNamespace(noise_warning="still noisy"))
    assert noise_warnings(results, [answer, None]) == ["noisy now", "still noisy"]
