"""The demo's paragraph on a low budget used: it appears for a noisy row set (bounds far above their central figures)
with each row's ratio, the server's warning, why and what would help, not for a quiet one, and names the search's
own choice, not the device, where the table put the network well under its limit; the server's warnings are
gathered from the searches' results and later answers, each once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nas.demo.noise import noise_paragraph, noise_warnings


def _row(limit: float, central: float, upper: float, table: float | None = None) -> dict[str, Any]:
    return {"limit_ms": limit, "table_ms": central if table is None else table, "verified_central_ms": central,
            "verified_upper_ms": upper, "budget_used": central / limit}


def test_the_noise_paragraph_appears_for_a_noisy_row_set_only() -> None:
    quiet = [_row(1.166, 0.98, 1.14), _row(1.458, 1.18, 1.318), _row(1.75, 1.52, 1.655)]  # 1.1x, 81-87 % used
    assert noise_paragraph(quiet) == []
    assert noise_paragraph(quiet, ["too noisy"]) == []  # a quiet table needs no explanation
    # 1.4-1.5x, 42-64 % used, each network near its limit by the table
    noisy = [_row(2.365, 1.51, 2.205, 2.2), _row(3.55, 1.81, 2.538, 3.3), _row(4.735, 1.99, 2.834, 4.4)]
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


def test_a_light_network_the_search_chose_is_not_blamed_on_the_device() -> None:
    rows = [_row(1.101, 0.914, 1.047, table=1.030), _row(1.660, 0.900, 0.997, table=1.074)]  # 1.1x; 54 % used
    text = "\n".join(noise_paragraph(rows))
    assert "the device was noisy" not in text and "Why the budget used is low." in text
    assert "limit 1.660 ms: table 65 %, bound at 60 %" in text and "the search chose a lighter network" in text
    assert "limit 1.101 ms: table" not in text  # near its limit by the table
    assert "quieter moment" not in text  # nothing about the device to fix
    settled = "\n".join(noise_paragraph([_row(2.0, 1.2, 1.3, table=1.9)]))
    assert "settled lower than the bound alone requires" in settled and "quieter moment" in settled


def test_noise_warnings_are_read_from_results_and_answers_once() -> None:
    verdict = {"noise_warning": "noisy now"}
    results = [{"verdict": verdict, "attempts": [{"verdict": verdict}, {"verdict": {"noise_warning": None}}]},
               {"verdict": None, "attempts": []}]
    answer = SimpleNamespace(verdict=SimpleNamespace(noise_warning="still noisy"))
    assert noise_warnings(results, [answer, None]) == ["noisy now", "still noisy"]
