"""The demo's "budget used" column explained when the device was noisy (issue #33).

The search accepts a network only when the device's verified *bound* is under the limit, while the table's "budget
used" column divides the *central* figure by the limit. When the bound stands far above the central figure (the
device's timings spread widely at the moment), a network the search accepted right at the limit shows a low
budget used; read without a word, that looks like a weak search. :func:`noise_paragraph` says it in plain words for
``results.md`` and the printed summary: each row's bound / central ratio, the server's own noise warning where a
verdict carried one, why budget was left unused and what would help.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["LOW_BUDGET_USED", "NOISY_RATIO", "noise_paragraph", "noise_warnings"]

#: a bound this many times its central figure, or a budget used under this share, counts as a noisy row: at 32 px
#: on a quiet 2-core box the bound ran 1.05-1.2x the central figure and the searches used 81-87 % of their limits
NOISY_RATIO = 1.3
LOW_BUDGET_USED = 0.7
#: a bound under this share of its limit leaves room the guarantee alone does not explain
LOW_BOUND_SHARE = 0.85


def _ratio(row: dict[str, Any]) -> float | None:
    central, upper = row.get("verified_central_ms"), row.get("verified_upper_ms")
    return upper / central if central and upper else None


def _noisy(row: dict[str, Any]) -> bool:
    ratio, used = _ratio(row), row.get("budget_used")
    return (ratio is not None and ratio > NOISY_RATIO) or (used is not None and used < LOW_BUDGET_USED)


def noise_warnings(results: Iterable[dict[str, Any]], answers: Iterable[Any] = ()) -> list[str]:
    """The server's noise warnings, each once, in order: from the searches' ``result.json`` (the returned verdict
    and every attempt's) and from later answers (e.g. the demo's re-measurement, a ``NetworkResponse``)."""
    found: list[str] = []
    for result in results:
        verdicts = [result.get("verdict")] + [a.get("verdict") for a in result.get("attempts") or []]
        found += [v["noise_warning"] for v in verdicts if isinstance(v, dict) and v.get("noise_warning")]
    for answer in answers:
        verdict = getattr(answer, "verdict", None)
        if verdict is not None and verdict.noise_warning:
            found.append(verdict.noise_warning)
    return list(dict.fromkeys(found))


def noise_paragraph(rows: Sequence[dict[str, Any]], warnings: Sequence[str] = ()) -> list[str]:
    """Lines of plain words on why the budget used is low, or ``[]`` when every row is quiet (bound / central at
    most :data:`NOISY_RATIO` and budget used at least :data:`LOW_BUDGET_USED`). ``rows`` are the results table's
    rows (``limit_ms``, ``verified_central_ms``, ``verified_upper_ms``, ``budget_used``)."""
    if not any(_noisy(r) for r in rows):
        return []
    parts = []
    for r in rows:
        ratio, used = _ratio(r), r.get("budget_used")
        if ratio is None:
            parts.append(f"limit {r['limit_ms']:.3f} ms: no verdict")
            continue
        parts.append(f"limit {r['limit_ms']:.3f} ms: bound {r['verified_upper_ms']:.3f} / central "
                     f"{r['verified_central_ms']:.3f} = {ratio:.2f}x"
                     + ("" if used is None else f", budget used {100 * used:.0f} %"))
    worst = max((x for x in map(_ratio, rows) if x), default=None)
    reach = "" if worst is None else (f" With the bound {worst:.2f}x the central figure, a network whose bound "
                                      f"sits right at the limit uses only about {100 / worst:.0f} % of it by the "
                                      "central figure.")
    low = [r for r in rows if _ratio(r) and r["verified_upper_ms"] < LOW_BOUND_SHARE * r["limit_ms"]]
    lower = "" if not low else (
        " Where the bound itself sits well under the limit (" + "; ".join(
            f"limit {r['limit_ms']:.3f} ms: bound at {100 * r['verified_upper_ms'] / r['limit_ms']:.0f} %"
            for r in low) + "), the gap is not all the guarantee's: the search settled lower than the bound alone "
        "requires, which noisy verdicts also cause (each re-run steers by a bound that moves with the noise).")
    text = ("**Why the budget used is low: the device was noisy.** While the searches ran, this device's timings "
            "spread widely, and the verified bound stood well above the central figure (" + "; ".join(parts) + "). "
            "The search accepts a network only when its bound, the figure a later measurement stays under at the "
            "stated confidence, is under the limit; the central figure is not enough. So the noisier the device, "
            "the further under the limit the accepted network's central figure sits: the share of the limit "
            "between the central figure and the bound is held back by the guarantee." + reach + lower
            + " What would help: run at a quieter moment (nothing else busy on the machine), pin the latency "
            "server's worker to a core of its own, or measure with fewer threads; the bound then comes down "
            "towards the central figure and the searches use more of each limit.")
    lines = ["", text]
    if warnings:
        lines += ["", "The latency server's own warning" + ("s" if len(warnings) > 1 else "") + ":", ""]
        lines += [f"> {w}" for w in warnings]
    return lines
