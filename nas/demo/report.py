"""The demo's report: the results table (Markdown and CSV), ``results.json``, a verdict per network, and the
search-versus-random lines; the plots are :mod:`nas.demo.plots`.

This module owns what the demo writes after its stages ran.
"""

from __future__ import annotations

import csv
import json
import statistics
from typing import TYPE_CHECKING, Any

from nas.demo.baselines import baselines_json, baselines_lines
from nas.demo.fleet import fleet_json, fleet_lines
from nas.demo.noise import noise_paragraph, noise_warnings

if TYPE_CHECKING:
    from nas.demo.state import DemoRun

__all__ = ["searches_json", "verdict", "write_report"]


def _params(arch: str, num_classes: int) -> int:
    from shared.builders import build_network

    return sum(p.numel() for p in build_network(arch, num_classes=num_classes).parameters())


def _table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per limit. ``verified_*`` are the search's own verdict on the device (the figures it accepted the
    network on); ``remeasured_*`` the demo's independent verdict after fine-tuning; ``raw_*`` the search's plain
    median of its rounds and their spread (max - min), for comparison."""
    table: list[dict[str, Any]] = []
    for row in rows:
        result, validation, figure = row["result"], row["validation"], row["final_measurement"]
        versus = row.get("versus_random")
        again = figure.verdict
        guarantee = result.get("guarantee") or {}
        table.append({
            "limit_ms": row["limit_ms"],
            "table_ms": result["expected_latency_ms"],
            "verified_central_ms": result.get("measured_latency_ms"),
            "verified_upper_ms": result.get("upper_latency_ms"),
            "confidence": result.get("confidence"),
            "raw_median_ms": result.get("raw_median_ms"),
            "raw_spread_ms": result.get("raw_spread_ms"),
            "budget_used": (result["measured_latency_ms"] / row["limit_ms"]
                            if result.get("measured_latency_ms") is not None else None),
            "remeasured_central_ms": again.central_ms if again else None,
            "remeasured_upper_ms": again.upper_ms if again else None,
            "remeasured_raw_median_ms": figure.measured.median_ms,
            "predicted_ms": figure.predicted_ms,
            "top1": validation["top1"],
            "top5": validation.get("top5"),
            "child_top1": versus.top1 if versus else None,
            "percentile_vs_random": versus.percentile_vs_random if versus else None,
            "params_m": _params(result["arch"], int(validation.get("num_classes", 10))) / 1e6,
            "arch": result["arch"],
            "guarantee_met": guarantee.get("met"),
            "guarantee_confidence": guarantee.get("confidence"),  # the search's; `confidence` is its verdict's own
            "guarantee_reason": guarantee.get("reason"),
        })
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def searches_json(run: DemoRun, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per limit for ``results.json``: the limit, the final measurement, the fine-tuned top-1 and the
    comparison with random networks of the limit's latency band."""
    versus = run.versus_random
    out = []
    for r, row in zip(table, run.rows, strict=True):
        c = row.get("versus_random")
        out.append({
            "latency_limit_ms": r["limit_ms"],
            "table_latency_ms": r["table_ms"],
            "measured_latency_ms": r["verified_central_ms"],  # the search's verdict: central figure
            "upper_latency_ms": r["verified_upper_ms"],  # ... and its upper bound at `confidence`
            "confidence": r["confidence"],
            "raw_median_ms": r["raw_median_ms"],
            "raw_spread_ms": r["raw_spread_ms"],
            "remeasured_central_ms": r["remeasured_central_ms"],
            "remeasured_upper_ms": r["remeasured_upper_ms"],
            "top1": r["top1"],  # fine-tuned, on the val split
            "child_top1": r["child_top1"],  # sliced from the supernet, BN recalibrated, no fine-tuning
            "percentile_vs_random": r["percentile_vs_random"],
            "spearman_random": versus.spearman_random if versus else None,
            "spearman_bands": versus.spearman_bands if versus else None,
            "spearman_in_band": c.spearman_in_band if c else None,
            "random_networks": len(c.random) if c else 0,
            "random_top1_median": statistics.median(x.top1 for x in c.random) if c and c.random else None,
            "usable_limit_ms": c.usable_limit_ms if c else None,  # the band's top: T or the tightened limit
            "band_ms": list(c.band_ms) if c else None,
            "arch": r["arch"],
        })
    return out


def _versus_random_lines(run: DemoRun) -> list[str]:
    versus = run.versus_random
    if versus is None:
        return []
    rho = versus.spearman_random
    lines = ["", "## Searched networks against random networks of the same latency", "",
             "Every network a supernet child with its BN statistics re-estimated on the same training batches, "
             "evaluated on the val split, no fine-tuning. Random networks: " + versus.sampling + ".", ""]
    for c in versus.limits:
        tops = [x.top1 for x in c.random]
        usable = "" if c.usable_limit_ms >= c.latency_limit_ms else (
            f" (the device's verdict tightened the search to {c.usable_limit_ms:.3f} ms of table latency"
            + ("" if c.band_ms[1] <= c.usable_limit_ms else "; too few networks under it to rank among, so the "
               "lowest band above it that holds them")
            + ")")
        lines.append(f"- T = {c.latency_limit_ms:.3f} ms{usable}: searched {c.top1:.1f} % at "
                     f"{c.table_latency_ms:.3f} ms; "
                     f"{len(tops)} random networks in [{c.band_ms[0]:.3f}, {c.band_ms[1]:.3f}] ms: median "
                     f"{statistics.median(tops):.1f} % ({min(tops):.1f} .. {max(tops):.1f}); percentile of the "
                     f"searched network among them: {c.percentile_vs_random:.0f}")
    def fmt(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.2f}"

    bands = sum(len(c.random) for c in versus.limits)
    lines += ["", f"Spearman correlation of table latency and top-1 over all {bands + len(versus.spread)} random "
              "networks (does the task separate architectures at all?): " + fmt(rho)
              + (f"; over the {bands} of the limits' bands alone: {fmt(versus.spearman_bands)}" if versus.spread
                 else "")]
    return lines


def write_report(run: DemoRun) -> list[dict[str, Any]]:
    """``results.csv``, ``results.md``, ``results.json`` and the plots from the stages' rows; print the table and
    each network's verdict; return the table's rows."""
    from nas.demo.plots import draw_plots

    cfg, out = run.cfg, run.out
    table = _table_rows(run.rows)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    header = ["limit (ms)", "table (ms)", "verified central (ms)", "verified bound (ms)",
              "raw median ± spread (ms)", "budget used (central / limit)", "re-measured central / bound (ms)",
              "guarantee", "top-1 (%)", "vs random (percentile)", "params (M)", "architecture"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table:
        raw = ("-" if r["raw_median_ms"] is None
               else f"{r['raw_median_ms']:.3f} ± {(r['raw_spread_ms'] or 0.0) / 2:.3f}")
        cells = [f"{r['limit_ms']:.3f}", _ms(r["table_ms"]), _ms(r["verified_central_ms"]),
                 _ms(r["verified_upper_ms"]), raw,
                 "-" if r["budget_used"] is None else f"{r['budget_used']:.0%}",
                 f"{_ms(r['remeasured_central_ms'])} / {_ms(r['remeasured_upper_ms'])}", verdict(r),
                 f"{r['top1']:.1f}", "-" if r["percentile_vs_random"] is None else f"{r['percentile_vs_random']:.0f}",
                 f"{r['params_m']:.2f}", f"`{r['arch']}`"]
        lines.append("| " + " | ".join(cells) + " |")
    settings = (f"{cfg.data} at {cfg.resolution}px; latency: {cfg.backend}, {cfg.threads} thread, batch 1, on this "
                "machine. Verified: the device's verdict the search accepted each network on (central figure = "
                "network/reference ratio x the reference's typical latency; bound = the upper prediction bound of a "
                "later measurement at the verdict's confidence, 1 - (1 - c) / 2^k for a search's k-th verdict, so "
                "that the search as a whole holds c). Raw: the plain median of the search's rounds, ± half "
                "their range. Re-measured: the same verdict taken again after fine-tuning.")
    warnings = noise_warnings([row["result"] for row in run.rows],
                              [row.get("final_measurement") for row in run.rows])
    noise = noise_paragraph(table, warnings)
    versus_lines = _versus_random_lines(run) + baselines_lines(run) + fleet_lines(run)
    timing = "Stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in run.stage_seconds.items())
    (out / "results.md").write_text("# Demo results\n\n" + settings + "\n\n" + "\n".join(lines + noise) + "\n"
                                    + "\n".join(versus_lines) + "\n\n" + timing + "\n")
    (out / "results.json").write_text(json.dumps({
        "data": cfg.data,
        "resolution": cfg.resolution,
        "searches": searches_json(run, table),
        "random_sampling": run.versus_random.sampling if run.versus_random else None,
        "noise_warnings": warnings,
        "published": baselines_json(run),
        "fleet": fleet_json(run),
        "stage_seconds": {k: round(v, 1) for k, v in run.stage_seconds.items()},
    }, indent=1))
    draw_plots(run, table)
    print("\n" + "\n".join(lines))
    print("\n" + settings)
    for r in table:
        print(f"  limit {r['limit_ms']:.3f} ms -> verified {_ms(r['verified_central_ms'])} ms, bound "
              f"{_ms(r['verified_upper_ms'])} ms [{verdict(r)}], top-1 {r['top1']:.1f}%")
    print("\n".join(noise + versus_lines))
    return table


def verdict(row: dict[str, Any]) -> str:
    """The search's guarantee for one row, said plainly: its verified bound against the limit."""
    if row["verified_upper_ms"] is None:
        return "not measured on the device"
    if row["verified_upper_ms"] <= row["limit_ms"]:
        return (f"bound under the limit at {100 * (row.get('guarantee_confidence') or row['confidence']):g} % "
                f"confidence (this verdict at {100 * row['confidence']:.4g} %)")
    return "OVER the limit" + (f" ({row['guarantee_reason']})" if row.get("guarantee_reason") else "")
