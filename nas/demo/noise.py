"""The demo's "budget used" column explained when it is low: by the device's noise or by the search's choice.

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


def _chosen_light(row: dict[str, Any]) -> bool:
    """The table itself puts the network well under the limit: the search chose it, the verdict did not push it."""
    table = row.get("table_ms")
    return table is not None and table < LOW_BOUND_SHARE * row["limit_ms"]


def _row_text(r: dict[str, Any]) -> str:
    ratio, used = _ratio(r), r.get("budget_used")
    if ratio is None:
        return f"limit {r['limit_ms']:.3f} ms: no verdict"
    share = "" if used is None else f", budget used {100 * used:.0f} %"
    return (f"limit {r['limit_ms']:.3f} ms: bound {r['verified_upper_ms']:.3f} / central "
            f"{r['verified_central_ms']:.3f} = {ratio:.2f}x{share}")


def noise_paragraph(rows: Sequence[dict[str, Any]], warnings: Sequence[str] = ()) -> list[str]:
    """Lines of plain words on why the budget used is low, or ``[]`` when every row is quiet (bound / central at
    most :data:`NOISY_RATIO` and budget used at least :data:`LOW_BUDGET_USED`). ``rows`` are the results table's
    rows (``limit_ms``, ``table_ms``, ``verified_central_ms``, ``verified_upper_ms``, ``budget_used``).

    Three causes are told apart, since only the first is the device's: a bound far above the central figure (the
    guarantee holds back the share between them), a network the table itself puts well under the limit (the search
    chose it, e.g. as the most accurate of its candidates), and a search that settled lower than its bound needs
    (re-runs steer by a bound that moves with the noise)."""
    if not any(_noisy(r) for r in rows):
        return []
    noisy = any((_ratio(r) or 0.0) > NOISY_RATIO for r in rows)
    worst = max((x for x in map(_ratio, rows) if x), default=None)
    text = ("**Why the budget used is low" + (": the device was noisy.**" if noisy else ".**")
            + " Each search's verdict (" + "; ".join(map(_row_text, rows)) + "). The search accepts a network only "
            "when its bound, the figure a later measurement stays under at the stated confidence, is under the "
            "limit; the central figure is not enough, so the share of the limit between the central figure and the "
            "bound is held back by the guarantee.")
    if worst is not None:
        text += (f" With the bound {worst:.2f}x the central figure, a network whose bound sits right at the limit "
                 f"uses about {100 / worst:.0f} % of it by the central figure.")
    low = [r for r in rows if _ratio(r) and r["verified_upper_ms"] < LOW_BOUND_SHARE * r["limit_ms"]]
    chosen = [r for r in low if _chosen_light(r)]
    settled = [r for r in low if not _chosen_light(r)]
    if chosen:
        text += (" Where the table itself puts the network well under the limit (" + "; ".join(
            f"limit {r['limit_ms']:.3f} ms: table {100 * r['table_ms'] / r['limit_ms']:.0f} %, bound at "
            f"{100 * r['verified_upper_ms'] / r['limit_ms']:.0f} %" for r in chosen) + "), the search chose a "
            "lighter network than the limit allows (the most accurate of its candidates on held-out images); the "
            "device's verdict did not hold it back.")
    if settled:
        text += (" Where the bound sits well under the limit although the table put the network near it (" + "; ".join(
            f"limit {r['limit_ms']:.3f} ms: bound at {100 * r['verified_upper_ms'] / r['limit_ms']:.0f} %"
            for r in settled) + "), the search settled lower than the bound alone requires, which noisy verdicts "
            "cause (each re-run steers by a bound that moves with the noise).")
    if noisy or settled:
        text += (" What would help: run at a quieter moment (nothing else busy on the machine), pin the latency "
                 "server's worker to a core of its own, or measure with fewer threads; the bound then comes down "
                 "towards the central figure and the searches use more of each limit.")
    lines = ["", text]
    if warnings:
        lines += ["", "The latency server's own warning" + ("s" if len(warnings) > 1 else "") + ":", ""]
        lines += [f"> {w}" for w in warnings]
    return lines
