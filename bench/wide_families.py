"""Wider planted families for ``bench/search_quality.py --wide N``: where the search's regret has a tail.

The original family (:func:`planted.planted_objective`) has utilities that always grow with latency and a mild,
random depth preference, at one noise level and one step count. A family here is one point of five axes, named so
a case replays from its name and seed (``--replay FAMILY:SEED``):

* ``c``: how strongly an option's utility follows its latency (correlation of the per-option part with the
  standardised log-latency gain, from -0.5: the slower options are worse, to 1.0: utility is latency);
* ``d``: the depth preference (``shallow``: each extra block of a stage costs more than it brings; ``flat``;
  ``deep``: depth is worth much);
* ``n``: the gradient noise in units of the utilities' sd (0 to 4);
* ``s``: the search's step count (200, 500, 1000);
* ``l`` and ``t``: the limit as a share of the table's feasible range (0.1 .. 0.9) and the table (32 or 224 px).

Regret is ``(U* - U(found)) / (U* - U_ref)``: ``U_ref`` is the lightest network's utility (as the original family)
where utility follows latency (``c > 0``), and the least useful network's within the limit otherwise (there the
lightest network can be close to the optimum, and a regret against it would divide by almost nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from planted import PlantedObjective

from nas.search import LatencyModel
from nas.search.discretize import NetworkScore, best_network

__all__ = ["Family", "least_useful", "parse_family", "wide_cases", "wide_objective"]

CORRELATIONS = (-0.5, 0.0, 0.3, 0.6, 0.9, 1.0)
DEPTHS = {"shallow": -1.5, "flat": 0.0, "deep": 1.0}
NOISES = (0.0, 0.5, 1.0, 2.0, 4.0)
STEPS = (200, 500, 1000)
LIMITS = (0.1, 0.3, 0.5, 0.7, 0.9)
TABLES = ("32", "224")


@dataclass(frozen=True)
class Family:
    correlation: float
    depth: str
    noise: float
    steps: int
    limit: float
    table: str

    @property
    def name(self) -> str:
        return (f"c{self.correlation:+g}_d{self.depth}_n{self.noise:g}_s{self.steps}_l{self.limit:g}"
                f"_t{self.table}")


def parse_family(name: str) -> Family:
    """The family a name (:attr:`Family.name`) stands for."""
    parts = {p[0]: p[1:] for p in name.split("_")}
    try:
        family = Family(float(parts["c"]), parts["d"], float(parts["n"]), int(parts["s"]), float(parts["l"]),
                        parts["t"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a family name like c+0.6_ddeep_n1_s500_l0.3_t32") from exc
    if family.depth not in DEPTHS or not -1.0 <= family.correlation <= 1.0 or not 0.0 <= family.limit <= 1.0:
        raise ValueError(f"{name!r}: depth one of {', '.join(DEPTHS)}, correlation in [-1, 1], limit in [0, 1]")
    return family


#: the seed that draws the recorded cases' families (``--draw`` draws others)
DEFAULT_DRAW = 2026


def wide_cases(count: int, seed: int = DEFAULT_DRAW) -> list[tuple[Family, int]]:
    """``count`` cases, each a family drawn uniformly on every axis and its own seed (the case's index)."""
    rng = np.random.default_rng(seed)
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    return [(Family(pick(CORRELATIONS), pick(tuple(DEPTHS)), pick(NOISES), pick(STEPS), pick(LIMITS), pick(TABLES)),
             i) for i in range(count)]


def wide_objective(model: LatencyModel, seed: int, family: Family) -> PlantedObjective:
    """Utilities over ``model``: per option a base worth of a block, plus a part correlated with the option's
    log-latency gain by ``family.correlation``, per-stage and per-position weights; per depth the family's
    preference per extra block with a random part."""
    rng = np.random.default_rng(seed)
    t = model.block_ms
    num_s, num_b, _ = t.shape
    gain = np.log(t / np.maximum(t.min(axis=-1, keepdims=True), 1e-12))
    gain = (gain - gain.mean()) / max(float(gain.std()), 1e-12)
    c = family.correlation
    mix = c * gain + np.sqrt(max(1.0 - c * c, 0.0)) * rng.normal(size=t.shape)
    stage_weight = rng.lognormal(0.0, 0.4, size=(num_s, 1, 1))
    position_weight = (0.8 ** np.arange(num_b))[None, :, None]
    u = stage_weight * position_weight * (1.0 + 0.5 * mix)
    extra = np.arange(len(model.depths))[None, :]
    depth = stage_weight[:, :, 0] * (DEPTHS[family.depth] * extra + rng.normal(0.0, 0.3, size=(num_s, extra.size)))
    depth[:, 0] = 0.0
    return PlantedObjective(model, NetworkScore(u, depth))


def least_useful(obj: PlantedObjective, limit_ms: float):
    """The network of lowest utility within the limit (the regret's reference where utility does not follow
    latency)."""
    neg = NetworkScore(-obj.utility.option, -obj.utility.depth)
    return best_network(neg, [(obj.model, limit_ms)])


def run_wide_case(family: Family, seed: int, models: dict, configs: dict) -> dict:
    """One case: each named config's regret (%), budget used and seconds, against the exact optimum."""
    import time

    from nas.search import SearchSettings, search

    model = models[family.table]
    obj = wide_objective(model, seed, family)
    limit = model.min_latency_ms() + family.limit * (model.max_latency_ms() - model.min_latency_ms())
    best = obj.of(obj.optimum(limit))
    ref = obj.of(model.lightest_choice()) if family.correlation > 0 else obj.of(least_useful(obj, limit))
    row: dict = {"family": family.name, "seed": seed}
    for name, config in configs.items():
        settings = SearchSettings(latency_limit_ms=limit, bcfw_steps=family.steps, bcfw=config, seed=seed)
        t0 = time.perf_counter()
        result = search(model, obj.gradients(family.noise * obj.spread, seed=10_000 + seed), settings,
                        progress=False)
        row[name] = {"regret_pct": 100.0 * (best - obj.of(result.choice)) / (best - ref) if best > ref else 0.0,
                     "budget_used": model.choice_latency_ms(result.choice) / limit,
                     "seconds": time.perf_counter() - t0, "steps": len(result.trajectory),
                     "noise_to_signal": result.step_budget.get("noise_to_signal_at_asked")}
    return row


def wide_main(args, ours, old=None) -> dict:
    """``--wide N`` / ``--replay FAMILY:SEED``: ours (and, given, the old defaults ``old`` on the same cases, for the
    time ratio) over the wide families; the worst cases printed with the command that replays each."""
    import json
    import statistics
    import time
    from pathlib import Path

    from nas.latency.table import LatencyTable

    root = Path(__file__).resolve().parents[1] / "tests" / "data"
    models = {t: LatencyTable.load(root / f"lut_onnxruntime_{t}.json").model() for t in TABLES}
    draw = getattr(args, "draw", DEFAULT_DRAW)
    if args.replay:
        cases = [(parse_family(spec.rsplit(":", 1)[0]), int(spec.rsplit(":", 1)[1])) for spec in args.replay]
    else:
        cases = wide_cases(args.wide, seed=draw)
    configs = {"ours": ours, **({"old": old} if old is not None else {})}
    t0 = time.perf_counter()
    rows = []
    for family, seed in cases:
        row = run_wide_case(family, seed, models, configs)
        rows.append(row)
        print(f"{family.name}:{seed}  " + "  ".join(f"{k} {row[k]['regret_pct']:6.2f} % ({row[k]['seconds']:.2f} s, "
                                                   f"{row[k]['steps']} steps)" for k in configs), flush=True)
    report: dict = {"cases": len(rows), "wide": True, "seconds": round(time.perf_counter() - t0, 1)}
    if not args.replay:
        report["draw"] = draw
    for k in configs:
        regrets = [r[k]["regret_pct"] for r in rows]
        prefix = "" if k == "ours" else f"{k}_"
        report.update({f"{prefix}median_regret_pct": statistics.median(regrets),
                       f"{prefix}worst_regret_pct": max(regrets), f"{prefix}mean_regret_pct": statistics.fmean(regrets),
                       f"{prefix}over_5_pct": sum(x > 5.0 for x in regrets),
                       f"{prefix}seconds_total": sum(r[k]["seconds"] for r in rows)})
        report[f"{prefix}extended_cases"] = sum(r[k]["steps"] > f.steps for (f, _), r in zip(cases, rows, strict=True))
        report[f"{prefix}steps_ran_per_asked"] = (sum(r[k]["steps"] for r in rows)
                                                  / max(sum(f.steps for f, _ in cases), 1))
    if old is not None:
        report["time_ratio_vs_old"] = report["seconds_total"] / max(report["old_seconds_total"], 1e-9)
    report["max_budget_used"] = max(r["ours"]["budget_used"] for r in rows)
    by_axis: dict = {}
    for axis in ("correlation", "depth", "noise", "steps", "limit", "table"):
        groups: dict = {}
        for (family, _), r in zip(cases, rows, strict=True):
            groups.setdefault(str(getattr(family, axis)), []).append(r["ours"]["regret_pct"])
        by_axis[axis] = {g: [round(statistics.median(v), 3), round(max(v), 3), len(v)]
                         for g, v in sorted(groups.items())}
        print(f"by {axis:<11} (median / worst % / cases): " + "  ".join(f"{g}: {m:.2f}/{w:.2f}/{n}"
                                                                     for g, (m, w, n) in by_axis[axis].items()))
    worst = sorted(rows, key=lambda r: -r["ours"]["regret_pct"])[:10]
    report["worst_cases"] = [{"case": f"{r['family']}:{r['seed']}", "regret_pct": round(r["ours"]["regret_pct"], 3),
                              "steps_ran": r["ours"]["steps"]} for r in worst]
    print("worst cases (replay each with the command after it):")
    for r in worst:
        print(f"  {r['ours']['regret_pct']:6.2f} % ({r['ours']['steps']} steps)  python bench/search_quality.py "
              f"--replay {r['family']}:{r['seed']}")
    report["by_axis"] = by_axis
    print(json.dumps(report))
    return report
