"""Search quality on planted objectives: regret against the exact optimum, against the paper's settings and random.

On the latency tables the project ships (``tests/data/lut_onnxruntime_{32,224}.json``: ONNX Runtime, 1 thread,
batch 1, on the 2-core build machine) a planted utility per (stage, position, option) and per stage depth
(``bench/planted.py``) is hidden behind noisy stochastic gradients; the truth is its exact integer optimum under
the limit (MILP). At 5 limits (10 % .. 90 % of each table's feasible range) and 10 seeds each, three searches run
(``ours`` and ``random`` spend the same number of loss evaluations, ``paper`` its own 1000):

* ``ours``: this project's defaults (``nas.search.search`` as ``nas search`` runs it);
* ``paper``: the original's settings -- 1000 steps, fixed step 0.002, momentum 0.9, random block choice, then
  sparsify + argmax with a feasibility repair, no fill (``bench/paper_baseline.py``); same start as ``ours``;
* ``random``: networks drawn from the Gibbs distribution over networks whose mean latency is the limit (so the top
  of the band is reached; draws above the limit are rejected at no cost: the table knows their latency), each
  evaluated once with the gradient noise's sd, the best by that noisy evaluation kept.

Per case: regret ``(U* - U(found)) / (U* - U(lightest))``, the share of the optimum's blocks found (same option at
the same position) and the budget used (table latency / T). The last line printed is one JSON object.

"Gap" (in the JSON) is the Frank-Wolfe gap of the final distribution under the noise-free objective, in the
same units as the regret: how far the distribution is from a stationary point.

Figures (defaults: 500 steps; noise = the utilities' spread; 2-core machine shared with other jobs, load 2-4; one to two
minutes): median / worst regret over each table's 50 cases, ours 0.13 % / 0.91 % (32 px) and 0.00 % / 0.59 % (224 px);
paper 4.4 % / 46 % and 6.1 % / 25 %; random 32 % / 52 % and 35 % / 50 %. Ours has the lowest median and mean regret at
every limit of both tables (its worst case is above the paper's only at 90 % on 224 px: 0.58 % vs 0.38 %); every network
is within its limit (largest table latency / T: 0.99997); median gap 0.12-0.17 % before the depth floor, 2.4-2.8 % with
it (the floor's 5 % on every depth is held off the LP's vertices; the regrets did not change) (paper 24-25 %). Ours
against its step count (``--methods ours --steps N``), median / worst regret over all 100 cases: 60 steps 0.91 % / 7.7
%, 100: 0.45 / 5.1, 150: 0.31 / 2.0, 200: 0.31 / 2.1, 300: 0.18 / 2.0, 500: 0.03 / 0.91, 1000: 0.00 / 1.8; noise-free 0
/ 0 (gap 0 before the depth floor); twice the noise 0.33 / 1.95. Variants at 500 steps: the original's fixed momentum
0.9: 3.4 / 16; Mokhtari et al.'s steps ``0.25 * 8 / (k + 8)`` with averaging ``(8 / (t + 8)) ** (2/3)``: 2.3 / 13;
averaging ``2 / (t + 2)``: 0.05 / 1.45, ``8 / (t + 8)``: 0.57 / 4.8; steps ``0.5 / (k + 1)``: the same regret, gap 4.5
%; the start (``--start projection|segment``), random block choice or the LPs on the raw averaged gradients
(``--objective momentum``): median 0.03-0.04 %, worst 0.96-1.8 %; ``--final-score probability``: 2.1 / 31.

    python bench/search_quality.py [--noise 1.0] [--seeds 10] [--limits 0.1,0.3,0.5,0.7,0.9] [--tables 32,224]
                                   [--steps N] [--methods ours,paper,random] [--start entropy|projection|segment]

Two targets (``--targets 2``): the 32 px and the 224 px tables are one fleet (they disagree on which options are
cheap); the planted utility is drawn over the 32 px table; each case puts a limit on both, as shares of each
table's feasible range (``--pairs``, default ``0.3:0.3,0.2:0.6,0.6:0.2,0.5:0.5,0.1:0.9``; a pair no network
meets is reported and skipped). The truth is the exact MILP optimum under both limits; regret is measured against
a trivial feasible network (the least useful of the two lightest networks and the MILP's feasibility witness,
among those meeting both limits) instead of the lightest network, which may break the other limit. Methods:
``ours`` (the fleet search: every step and the returned network within both limits) and ``random`` (networks
drawn from the maximum-entropy distribution at both limits, rejected when over either); the paper's settings have
no rule for a second constraint and are not run. Figures (``--targets 2``, 10 seeds per pair, 500 steps, noise =
the utilities' spread; 2-core machine shared with other jobs, load about 2; 37 s): over the 50 cases ours median
0.00 % / worst 1.77 % regret, random 40.5 % / 54.9 %; ours has the lower median and worst at every pair; every
network within both limits (largest table latency / limit 0.99996); each pair's binding target uses 99.4-99.8 % of
its budget (both bind at 0.3:0.3 and 0.5:0.5).

Wide families (``--wide N``, ``bench/wide_families.py``): each case draws how strongly utility follows latency
(correlation -0.5 .. 1), the depth preference (shallow / flat / deep), the gradient noise (0 .. 4 x the utilities'
spread), the step count (200 / 500 / 1000), the limit (10-90 % of the range) and the table; the worst cases are
printed with the command that replays each (``--replay FAMILY:SEED``). ``--draw SEED`` draws another set of
families (default 2026); a case's seed is its index, so its name and seed replay it whatever the draw. The figures
and the worst cases are in ``bench/results/search_quality/`` (``docs/benchmarks.md``); the tail comes from the
gradients' information at high noise and few steps, not from the solvers (the LP oracle and the final MILP are
exact); a family's step count is the steps asked, which the search extends while its gradients are too noisy
(``BCFWConfig.noise_target``, ``--step-cap 1`` turns that off); each case's row and the summary say how many steps
ran. ``--depth-floor 0`` turns off the search's exploration of every depth (``BCFWConfig.depth_floor``). ``--prior
latency`` shrinks each option's estimate towards its block's line over log latency instead of the block's mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from paper_baseline import paper_finalize, projection_start, segment_start  # noqa: E402
from planted import PlantedObjective, planted_objective, sample_networks  # noqa: E402
from record import add_state_argument, write_result  # noqa: E402
from wide_families import DEFAULT_DRAW, wide_main  # noqa: E402

from nas.latency.table import LatencyTable  # noqa: E402
from nas.search import BCFW, BCFWConfig, SearchSettings, search  # noqa: E402
from nas.search.discretize import best_network  # noqa: E402
from nas.search.fleet import FleetInfeasibleError, check_fleet  # noqa: E402
from nas.search.start import fleet_start, gibbs_for_latency, max_entropy_start  # noqa: E402

PAPER = BCFWConfig(block_choice="random", step_schedule="fixed", max_step=0.002, momentum_schedule="fixed",
                   momentum=0.9, objective="momentum", depth_floor=0.0)
PAPER_STEPS = 1000
STARTS = {"entropy": max_entropy_start, "projection": projection_start, "segment": segment_start}


@dataclass(frozen=True)
class Case:
    table: str
    fraction: float
    seed: int
    limit_ms: float


def _table_path(name: str) -> Path:
    return Path(name) if name.endswith(".json") else ROOT / "tests" / "data" / f"lut_onnxruntime_{name}.json"


def _measure(obj: PlantedObjective, choice, best: float, worst: float, optimum, limit: float) -> dict:
    hits = [choice.options[s][j] == i for s, stage in enumerate(optimum.options) for j, i in enumerate(stage)
            if j < len(choice.options[s])]
    total = sum(len(stage) for stage in optimum.options)
    return {"regret_pct": 100.0 * (best - obj.of(choice)) / (best - worst) if best > worst else 0.0,
            "blocks_pct": 100.0 * sum(hits) / total,
            "budget_used": obj.model.choice_latency_ms(choice) / limit}


def run_case(case: Case, args: argparse.Namespace, ours: BCFWConfig) -> dict[str, dict]:
    model = LatencyTable.load(_table_path(case.table)).model()
    obj = planted_objective(model, case.seed)
    noise = args.noise * obj.spread
    limit = case.limit_ms
    optimum = obj.optimum(limit)
    best, worst = obj.of(optimum), obj.of(model.lightest_choice())
    start = STARTS[args.start](model, limit)
    out = {}
    if "ours" in args.methods:
        settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=args.steps, bcfw=ours, seed=case.seed)
        grads = obj.gradients(noise, seed=10_000 + case.seed)
        result = search(model, grads, settings, progress=False, start=start)
        out["ours"] = {**_measure(obj, result.choice, best, worst, optimum, limit),
                       "gap_pct": 100.0 * obj.frank_wolfe_gap(result.alpha, result.beta, limit) / (best - worst)}
    if "paper" in args.methods:
        opt = BCFW(model, limit, PAPER, seed=case.seed, alpha=start[0], beta=start[1])
        grads = obj.gradients(noise, seed=20_000 + case.seed)
        for _ in range(PAPER_STEPS):
            g = grads(opt.alpha, opt.beta)
            opt.step(g.alpha, g.beta)
        out["paper"] = {**_measure(obj, paper_finalize(model, opt.alpha, opt.beta, limit), best, worst, optimum, limit),
                        "gap_pct": 100.0 * obj.frank_wolfe_gap(opt.alpha, opt.beta, limit) / (best - worst)}
    if "random" in args.methods:
        rng = np.random.default_rng(30_000 + case.seed)
        alpha, beta = gibbs_for_latency(model, limit)
        kept, drawn, found, found_value = 0, 0, None, -np.inf
        while kept < args.steps:
            for choice in sample_networks(model, alpha, beta, 256, rng):
                drawn += 1
                if kept == args.steps or model.choice_latency_ms(choice) > limit:
                    continue
                kept += 1
                value = obj.of(choice) + noise * rng.normal()
                if value > found_value:
                    found, found_value = choice, value
        out["random"] = {**_measure(obj, found, best, worst, optimum, limit), "accepted_share": kept / drawn}
    return out


def _summary(rows: list[dict], method: str) -> dict:
    regrets = [r[method]["regret_pct"] for r in rows]
    return {"median_regret_pct": statistics.median(regrets), "worst_regret_pct": max(regrets),
            "mean_regret_pct": statistics.fmean(regrets),
            "blocks_pct": statistics.fmean(r[method]["blocks_pct"] for r in rows),
            "budget_used": statistics.fmean(r[method]["budget_used"] for r in rows),
            "max_budget_used": max(r[method]["budget_used"] for r in rows),
            **({"median_gap_pct": statistics.median(r[method]["gap_pct"] for r in rows)} if "gap_pct" in rows[0][method]
               else {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float, default=1.0, help="gradient noise sd in units of the utilities' sd")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per limit (default 10)")
    parser.add_argument("--limits", default="0.1,0.3,0.5,0.7,0.9", help="limits as fractions of the feasible range")
    parser.add_argument("--tables", default="32,224", help="shipped table resolutions or JSON paths")
    parser.add_argument("--steps", type=int, default=SearchSettings(1.0).bcfw_steps,
                        help="steps of our search and samples of random search (default: the CLI's)")
    parser.add_argument("--methods", default="ours,paper,random")
    parser.add_argument("--start", choices=sorted(STARTS), default="entropy", help="start of ours and paper")
    parser.add_argument("--targets", type=int, choices=[1, 2], default=1, help="1 (default) or 2 (a fleet)")
    parser.add_argument("--max-params", metavar="N",
                        help="two limits per case: each table's latency limit (--limits) and at most N parameters "
                        "(3.5M, 5M; 1000 classes), as nas search --max-params; regret against the exact optimum under "
                        "both (combinations no network meets are reported and skipped)")
    parser.add_argument("--pairs", default="0.3:0.3,0.2:0.6,0.6:0.2,0.5:0.5,0.1:0.9",
                        help="with --targets 2: limit shares of the two tables' ranges")
    for name, kind in (("block_choice", str), ("step_schedule", str), ("max_step", float), ("step_offset", float),
                       ("momentum_schedule", str), ("momentum", float), ("momentum_power", float),
                       ("averaging_offset", float), ("objective", str), ("final_score", str), ("prior", str),
                       ("depth_floor", float), ("noise_target", float), ("step_cap", float), ("extend_from", int)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"override our BCFWConfig.{name}")
    parser.add_argument("--wide", type=int, metavar="N", help="N cases of the wide families (bench/wide_families.py): "
                        "utility's correlation with latency, depth preference, noise, steps and limit drawn per case; "
                        "ours, and with --old-prior ours with that BCFWConfig.prior on the same cases (time ratio)")
    parser.add_argument("--draw", type=int, default=DEFAULT_DRAW, metavar="SEED",
                        help="with --wide: the seed that draws the cases' families (default %(default)s); a case "
                        "replays by its family and seed alone, whatever the draw")
    parser.add_argument("--replay", action="append", metavar="FAMILY:SEED", help="one wide case again (repeatable)")
    parser.add_argument("--old-prior", help="with --wide: also run ours with this BCFWConfig.prior, for comparison")
    add_state_argument(parser)
    args = parser.parse_args()
    args.methods = args.methods.split(",")
    ours = replace(BCFWConfig(), **{k: v for k, v in vars(args).items() if k in BCFWConfig.__dataclass_fields__
                                    and v is not None})
    if args.wide or args.replay:
        old = replace(ours, prior=args.old_prior) if args.old_prior and not args.replay else None
        report = wide_main(args, ours, old)
        if not args.replay:
            args.methods = ["ours", "old"] if args.old_prior else ["ours"]
            args.steps = "200/500/1000"
            figures = {"targets": args.targets, "steps": args.steps, "methods": ",".join(args.methods),
                       **{k: v for k, v in report.items() if isinstance(v, (int, float)) and k != "wide"}}
            notes = (f"wide planted families (bench/wide_families.py), draw {args.draw}; rows: the worst cases, each "
                     "replayed by python bench/search_quality.py --replay CASE; median / worst % / cases by axis: "
                     + json.dumps(report["by_axis"]))
            write_result("search_quality", figures, args=args, rows=report["worst_cases"], notes=notes)
        return 0
    if args.max_params is not None:
        return params_main(args, ours)
    if args.targets == 2:
        return fleet_main(args, ours)
    fractions = [float(f) for f in args.limits.split(",")]
    t0 = time.perf_counter()
    report: dict = {"config": {**asdict(ours), "steps": args.steps, "noise": args.noise, "start": args.start},
                    "tables": {}}
    all_rows: list[dict] = []
    for table in args.tables.split(","):
        model = LatencyTable.load(_table_path(table)).model()
        lo, hi = model.min_latency_ms(), model.max_latency_ms()
        per_limit = {}
        rows_table = []
        for f in fractions:
            cases = [Case(table, f, seed, lo + f * (hi - lo)) for seed in range(args.seeds)]
            rows = [run_case(c, args, ours) for c in cases]
            rows_table += rows
            per_limit[f"{f:g}"] = {m: _summary(rows, m) for m in args.methods}
            line = "  ".join(f"{m} {per_limit[f'{f:g}'][m]['median_regret_pct']:6.2f}/"
                             f"{per_limit[f'{f:g}'][m]['worst_regret_pct']:6.2f}" for m in args.methods)
            print(f"table {table:>4} limit {f:4.2f} ({cases[0].limit_ms:8.4f} ms)  median/worst regret %  {line}",
                  flush=True)
        report["tables"][table] = {"overall": {m: _summary(rows_table, m) for m in args.methods},
                                   "per_limit": per_limit}
        all_rows += rows_table
    summary = {m: _summary(all_rows, m) for m in args.methods}
    first = args.methods[0]
    report.update({
        "cases": len(all_rows),
        "median_regret_pct": summary[first]["median_regret_pct"],
        "worst_regret_pct": summary[first]["worst_regret_pct"],
        **{f"{m}_median_regret_pct": summary[m]["median_regret_pct"] for m in args.methods if m != first},
        **{f"{m}_worst_regret_pct": summary[m]["worst_regret_pct"] for m in args.methods if m != first},
        "max_budget_used": max(summary[m]["max_budget_used"] for m in args.methods),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    print(json.dumps(report))
    _record(args, report)
    return 0


def run_fleet_case(constraints: list, seed: int, args: argparse.Namespace, ours: BCFWConfig,
                   resources: tuple = ()) -> dict[str, dict]:
    """One planted case under two targets' limits: regret of ours and of random search against the exact optimum.
    With ``resources`` (parameter/MAC limits, whose rows end ``constraints``) ours searches under them as
    ``nas search --max-params`` does."""
    model, limit = constraints[0]
    obj = planted_objective(model, seed)
    noise = args.noise * obj.spread
    optimum = best_network(obj.utility, constraints)
    witness = check_fleet(constraints)
    trivial = [c for c in (model.lightest_choice(), constraints[1][0].lightest_choice(), witness)
               if all(m.choice_latency_ms(c) <= t for m, t in constraints)]
    best, worst = obj.of(optimum), min(obj.of(c) for c in trivial)

    def measure(choice) -> dict:
        row = _measure(obj, choice, best, worst, optimum, limit)
        row["budget_used"] = max(m.choice_latency_ms(choice) / t for m, t in constraints)
        row["budget_per_target"] = [m.choice_latency_ms(choice) / t for m, t in constraints]
        return row

    out = {}
    if "ours" in args.methods:
        settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=args.steps, bcfw=ours, seed=seed)
        others = constraints[1:len(constraints) - len(resources)]
        result = search(model, obj.gradients(noise, seed=10_000 + seed), settings, progress=False,
                        others=others, resources=resources)
        out["ours"] = measure(result.choice)
    if "random" in args.methods:
        rng = np.random.default_rng(30_000 + seed)
        alpha, beta = fleet_start(constraints)
        kept, found, found_value = 0, witness, -np.inf
        for _ in range(1000):  # rounds of 256 draws
            for choice in sample_networks(model, alpha, beta, 256, rng):
                if kept == args.steps or any(m.choice_latency_ms(choice) > t for m, t in constraints):
                    continue
                kept += 1
                value = obj.of(choice) + noise * rng.normal()
                if value > found_value:
                    found, found_value = choice, value
            if kept == args.steps:
                break
        out["random"] = measure(found)
    return out


def fleet_main(args: argparse.Namespace, ours: BCFWConfig) -> int:
    """``--targets 2``: the planted benchmark under the 32 px and 224 px tables' limits at once."""
    args.methods = [m for m in args.methods if m != "paper"]
    models = [LatencyTable.load(_table_path(t)).model() for t in ("32", "224")]
    t0 = time.perf_counter()
    report: dict = {"config": {**asdict(ours), "steps": args.steps, "noise": args.noise, "targets": 2},
                    "per_pair": {}, "skipped_pairs": {}}
    all_rows: list[dict] = []
    for pair in args.pairs.split(","):
        shares = [float(x) for x in pair.split(":")]
        constraints = [(m, m.min_latency_ms() + u * (m.max_latency_ms() - m.min_latency_ms()))
                       for m, u in zip(models, shares, strict=True)]
        try:
            check_fleet(constraints, ["32 px", "224 px"])
        except FleetInfeasibleError as exc:
            report["skipped_pairs"][pair] = str(exc)
            print(f"pair {pair}: skipped ({exc})", flush=True)
            continue
        rows = [run_fleet_case(constraints, seed, args, ours) for seed in range(args.seeds)]
        all_rows += rows
        report["per_pair"][pair] = {m: {**_summary(rows, m), "budget_per_target": [
            statistics.fmean(r[m]["budget_per_target"][k] for r in rows) for k in range(2)]} for m in args.methods}
        line = "  ".join(f"{m} {report['per_pair'][pair][m]['median_regret_pct']:6.2f}/"
                         f"{report['per_pair'][pair][m]['worst_regret_pct']:6.2f}" for m in args.methods)
        used = report["per_pair"][pair]["ours"]["budget_per_target"] if "ours" in args.methods else [0, 0]
        print(f"pair {pair:>8} ({constraints[0][1]:.4f} ms, {constraints[1][1]:.4f} ms)  median/worst regret %  "
              f"{line}  (ours' budget used {used[0]:.3f} / {used[1]:.3f})", flush=True)
    summary = {m: _summary(all_rows, m) for m in args.methods}
    report.update({
        "cases": len(all_rows),
        "median_regret_pct": summary["ours"]["median_regret_pct"],
        "worst_regret_pct": summary["ours"]["worst_regret_pct"],
        **{f"{m}_median_regret_pct": summary[m]["median_regret_pct"] for m in args.methods if m != "ours"},
        **{f"{m}_worst_regret_pct": summary[m]["worst_regret_pct"] for m in args.methods if m != "ours"},
        "max_budget_used": max(summary[m]["max_budget_used"] for m in args.methods),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    print(json.dumps(report))
    _record(args, report)
    return 0


def _record(args: argparse.Namespace, report: dict) -> None:
    """The overall regrets as a result file (bench/results/search_quality/)."""
    figures = {"targets": args.targets, "steps": args.steps, "methods": ",".join(args.methods),
               **{k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    write_result("search_quality", figures, args=args)


def params_main(args: argparse.Namespace, ours: BCFWConfig) -> int:
    """``--max-params N``: the planted benchmark under each table's latency limit and a parameter limit at once."""
    from nas.search.resource_limits import ResourceInfeasibleError, check_limits, parse_count, resource_limits
    from shared.search_space import HARDCORENAS

    args.methods = [m for m in args.methods if m != "paper"]  # the paper's settings know one constraint only
    max_params = parse_count(args.max_params, "--max-params")
    t0 = time.perf_counter()
    report: dict = {"config": {**asdict(ours), "steps": args.steps, "noise": args.noise, "max_params": max_params},
                    "per_limit": {}, "skipped": {}}
    all_rows: list[dict] = []
    for table_name in args.tables.split(","):
        table = LatencyTable.load(_table_path(table_name))
        model = table.model()
        resources = resource_limits(HARDCORENAS, table.resolution, HARDCORENAS.num_classes, max_params=max_params)
        for f in (float(x) for x in args.limits.split(",")):
            limit = model.min_latency_ms() + f * (model.max_latency_ms() - model.min_latency_ms())
            key = f"{table_name}@{f:g}"
            try:
                check_limits([(model, limit)], resources)
            except (ResourceInfeasibleError, ValueError) as exc:
                report["skipped"][key] = str(exc)
                print(f"{key}: skipped ({exc})", flush=True)
                continue
            constraints = [(model, limit), *(r.row for r in resources)]
            rows = [run_fleet_case(constraints, seed, args, ours, resources) for seed in range(args.seeds)]
            all_rows += rows
            report["per_limit"][key] = {m: {**_summary(rows, m), "budget_per_limit": [
                statistics.fmean(r[m]["budget_per_target"][k] for r in rows) for k in range(2)]} for m in args.methods}
            line = "  ".join(f"{m} {report['per_limit'][key][m]['median_regret_pct']:6.2f}/"
                             f"{report['per_limit'][key][m]['worst_regret_pct']:6.2f}" for m in args.methods)
            used = report["per_limit"][key][args.methods[0]]["budget_per_limit"]
            print(f"table {table_name:>4} limit {f:4.2f} ({limit:.4f} ms) + {args.max_params} params  median/worst "
                  f"regret %  {line}  (budget used: latency {used[0]:.3f}, params {used[1]:.3f})", flush=True)
    summary = {m: _summary(all_rows, m) for m in args.methods} if all_rows else {}
    first = args.methods[0]
    report.update({
        "cases": len(all_rows),
        **({"median_regret_pct": summary[first]["median_regret_pct"],
            "worst_regret_pct": summary[first]["worst_regret_pct"],
            **{f"{m}_median_regret_pct": summary[m]["median_regret_pct"] for m in args.methods if m != first},
            **{f"{m}_worst_regret_pct": summary[m]["worst_regret_pct"] for m in args.methods if m != first},
            "max_budget_used": max(summary[m]["max_budget_used"] for m in args.methods)} if all_rows else {}),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    print(json.dumps(report))
    _record(args, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
