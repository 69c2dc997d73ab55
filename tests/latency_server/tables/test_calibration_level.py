"""A table build's reference level and fit targets (pure): robust to a reference figure that jumps per session."""

from __future__ import annotations

import pytest

from latency_server.tables.calibration import BuildCalibration, fit_medians, reference_level
from latency_server.worker.stats import Stats
from shared.search_space import HARDCORENAS

FAST, SLOW = 4.4, 5.6  # the reference's two modes on a noisy box: a fresh session lands in either


def _stats(ms: float) -> Stats:
    return Stats(median_ms=ms, iqr_ms=0.0, p90_ms=ms, mean_ms=ms, min_ms=ms, samples=30, warmup=10)


def _calibration(fit: int, sessions: int) -> BuildCalibration:
    return BuildCalibration(None, "fp", HARDCORENAS, 224, "REF",  # type: ignore[arg-type]
                            [(f"net{i}", "random") for i in range(fit)], reference_sessions=sessions)


@pytest.mark.parametrize(("fit", "sessions"), [(14, 1), (14, 4), (2, 4), (5, 3), (1, 1)])
def test_reference_sessions_spread_over_the_round(fit: int, sessions: int) -> None:
    cal = _calibration(fit, sessions)
    archs = cal.round_archs
    assert len(archs) == fit + sessions
    assert [archs[i] for i in cal.fit_positions] == [f"net{i}" for i in range(fit)]  # the fit order is kept
    assert [archs[i] for i in cal.reference_positions] == ["REF"] * sessions
    assert cal.reference_positions[-1] == len(archs) - 1  # one session closes the round
    if sessions > 1 and fit >= sessions:
        assert cal.reference_positions[0] < len(archs) // 2  # the others sit among the networks


def test_one_fast_reference_session_per_round_does_not_scale_the_networks() -> None:
    """Every round's last reference session lands in the fast mode while the networks stay put: the fit targets
    keep the networks' figures (the old rule divided each round by that one session, scaling them by 5.6 / 4.4)."""
    cal = _calibration(fit=4, sessions=4)
    rounds = 3
    cal.per_round = [[] for _ in cal.round_archs]
    last = cal.reference_positions[-1]
    for r in range(rounds):
        for i in cal.fit_positions:
            cal.per_round[i].append(_stats(10.0 + i))
        for i in cal.reference_positions:
            cal.per_round[i].append(_stats(FAST if i == last else SLOW))
            cal.references.append({"phase": f"calibration:{r}", "median_ms": cal.per_round[i][-1].median_ms})
    cal.rounds = rounds
    cal.references += [{"phase": p, "median_ms": SLOW} for p in ("start", "middle", "end")]
    level = reference_level(cal)
    assert level == pytest.approx(SLOW)
    assert fit_medians(cal, level) == pytest.approx([10.0 + i for i in cal.fit_positions])


def test_the_phase_is_brought_to_the_level_when_the_device_moved() -> None:
    """The whole calibration phase ran 10 % slow (reference and networks alike): the targets come back to the level."""
    cal = _calibration(fit=3, sessions=2)
    cal.per_round = [[] for _ in cal.round_archs]
    for i in cal.fit_positions:
        cal.per_round[i] += [_stats(11.0), _stats(11.0)]
    for i in cal.reference_positions:
        cal.per_round[i] += [_stats(1.1 * SLOW), _stats(1.1 * SLOW)]
    assert fit_medians(cal, SLOW) == pytest.approx([10.0, 10.0, 10.0])
    assert fit_medians(cal, None) == pytest.approx([11.0, 11.0, 11.0])  # no reference level: raw medians
