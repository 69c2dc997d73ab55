"""Benchmark: the searched network against random networks of its latency band, on a trained supernet.

For each limit T (fractions of the table's feasible range, or given searches) the searched network's held-out
accuracy is ranked among ``--count`` random networks whose table latency lies in [0.95 U, U], U the latency the
search could use (T, or the internal limit a device's verdict tightened it to: searches from ``--search-results``
that measured on a server); every network is a
child sliced from the supernet with its BN statistics re-estimated on the same training batches and evaluated on
the data's fixed val split (:mod:`nas.evaluation.child_accuracy`, no fine-tuning). The random networks are
uniform sampling conditioned on the band, drawn by a random walk of single-block changes inside it
(:mod:`nas.evaluation.band_sampling`): uniform sampling alone finds almost none near the top of the range.
Prints per limit the searched network's percentile, and the Spearman correlation of latency and accuracy
over all random networks (whether the proxy
separates architectures at all), ``--spread`` of them (default: the demo's 30) stratified over the table's whole
range so that the correlation spans it where the bands do not; the last line is one JSON object.

    python bench/search_vs_random.py --supernet SUPERNET.pth.tar --lut outputs/demo/lut.json --data digits
    python bench/search_vs_random.py --supernet S.pth.tar --lut L.json \
        --search-results outputs/demo/search-*/result.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from record import add_state_argument, write_result

from nas.cli import main as nas_main  # noqa: E402
from nas.demo import DemoConfig  # noqa: E402
from nas.evaluation.child_accuracy import evaluator_for  # noqa: E402
from nas.evaluation.versus_random import compare_with_random, rank_statistics, usable_limit_ms  # noqa: E402
from nas.latency.table import LatencyTable  # noqa: E402
from shared.search_space import get_space  # noqa: E402


def _search(args: argparse.Namespace, limit_ms: float, out: Path) -> Path:
    argv = ["search", args.data, "--latency-limit-ms", str(limit_ms), "--lut", args.lut, "--supernet", args.supernet,
            "--resolution", str(args.resolution), "--bcfw-steps", str(args.bcfw_steps), "--seed", str(args.seed),
            "--child-candidates", str(args.child_candidates), "--no-progress", "--out", str(out)]
    if nas_main(argv) != 0:
        raise SystemExit(f"`nas {' '.join(argv)}` failed")
    return out / "result.json"


def _candidates_on_val(result: dict, comparison, evaluator, space) -> list[dict]:
    """The final step's candidates (when it chose among several) with their children's validation figures and
    percentile among the limit's random networks: how well each selection rule would have done."""
    attempts = result.get("attempts") or [{}]
    returned = next((a for a in attempts if a.get("returned")), attempts[-1])
    rows = []
    for cand in returned.get("candidates", []):
        acc = evaluator.evaluate(space.choice_from_arch(cand["arch"]))
        percentile, _ = rank_statistics(acc.top1, [r.top1 for r in comparison.random],
                                        [r.table_latency_ms for r in comparison.random])
        rows.append({**cand, "val_top1": acc.top1, "val_loss": acc.loss, "percentile_vs_random": percentile})
    return rows


def _rule_percentiles(cands: list[dict]) -> dict[str, float]:
    """The validation percentile of the candidate each rule would pick: held-out top-1 (the search's rule, the lower
    loss breaking ties), held-out loss, the fullest network, and the best candidate in hindsight."""
    def pct(c: dict) -> float:
        return round(c["percentile_vs_random"], 1)

    return {
        "held_out_top1": pct(max(cands, key=lambda c: (c["held_out_top1"], -c["held_out_loss"]))),
        "held_out_loss": pct(min(cands, key=lambda c: c["held_out_loss"])),
        "fullest": pct(max(cands, key=lambda c: c["expected_latency_ms"])),
        "hindsight": pct(max(cands, key=lambda c: c["val_top1"])),
    }


def main() -> None:
    demo = DemoConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", required=True, help="train-supernet checkpoint")
    p.add_argument("--lut", required=True, help="the latency table the searches use (nas lut)")
    p.add_argument("--data", default=demo.data)
    p.add_argument("--resolution", type=int, default=demo.resolution)
    p.add_argument("--fractions", type=float, nargs="+", default=list(demo.limit_fractions),
                   help="limits as fractions of the table's feasible range (default: the demo's)")
    p.add_argument("--search-results", nargs="+", default=None,
                   help="rank these searches' networks (result.json) instead of searching")
    p.add_argument("--count", type=int, default=demo.random_networks, help="random networks per limit")
    p.add_argument("--spread", type=int, default=demo.spread_networks,
                   help="random networks over the table's whole range that join the Spearman correlation (0: none)")
    p.add_argument("--recal-batches", type=int, default=demo.recal_batches)
    p.add_argument("--bcfw-steps", type=int, default=demo.bcfw_steps)
    p.add_argument("--child-candidates", type=int, default=demo.child_candidates,
                   help="networks the final steps choose among by their children's held-out accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=Path("outputs/search_vs_random"))
    add_state_argument(p)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    table = LatencyTable.load(args.lut)
    space = get_space(table.space)
    model = table.model(space)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.search_results:
        results = [json.loads(Path(r).read_text()) for r in args.search_results]
    else:
        lo, hi = model.min_latency_ms(), model.max_latency_ms()
        limits = [round(lo + f * (hi - lo), 4) for f in args.fractions]
        results = [json.loads(_search(args, t, args.out / f"search-{i}").read_text()) for i, t in enumerate(limits)]
    search_s = time.perf_counter() - t0
    searched = [(float(r["latency_limit_ms"]), space.choice_from_arch(r["arch"])) for r in results]

    t1 = time.perf_counter()
    evaluator = evaluator_for(args.supernet, args.data, args.resolution, recal_batches=args.recal_batches,
                              seed=args.seed)
    report = compare_with_random(evaluator.evaluate, model, space, searched, count=args.count, seed=args.seed,
                                 usable_limits_ms=[usable_limit_ms(r) for r in results], spread=args.spread)
    candidates = [_candidates_on_val(r, c, evaluator, space) for r, c in zip(results, report.limits, strict=True)]
    compare_s = time.perf_counter() - t1
    (args.out / "versus_random.json").write_text(json.dumps({**report.to_json(), "candidates": candidates}, indent=1))

    print(f"{args.data} at {args.resolution} px, supernet {args.supernet}; {evaluator.val_images} val images")
    print(report.sampling)
    for c in report.limits:
        tops = [r.top1 for r in c.random]
        print(f"T {c.latency_limit_ms:.3f} ms (band top {c.usable_limit_ms:.3f} ms): searched {c.top1:.2f} % at "
              f"{c.table_latency_ms:.3f} ms; random "
              f"median {statistics.median(tops):.2f} % (min {min(tops):.2f}, max {max(tops):.2f}); percentile "
              f"{c.percentile_vs_random:.0f}")
    for c, cands in zip(report.limits, candidates, strict=True):
        if cands:
            print(f"T {c.latency_limit_ms:.3f} ms: validation percentile of the candidate each rule picks "
                  "(the search's: held_out_top1): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in _rule_percentiles(cands).items()))
    rho = report.spearman_random
    bands = sum(len(c.random) for c in report.limits)
    print(f"Spearman(latency, top-1) over the {bands + len(report.spread)} random networks: "
          + ("undefined" if rho is None else f"{rho:.3f}")
          + (f" (the {bands} of the bands alone: {report.spearman_bands:.3f})"
             if report.spread and report.spearman_bands is not None else ""))
    print(f"searches {search_s:.0f} s, comparison {compare_s:.0f} s ({torch.get_num_threads()} threads)")
    summary = {
        "data": args.data,
        "resolution": args.resolution,
        "spearman_random": rho,
        "spearman_bands": report.spearman_bands,
        "limits": [{"latency_limit_ms": c.latency_limit_ms, "usable_limit_ms": c.usable_limit_ms,
                    "table_latency_ms": round(c.table_latency_ms, 4),
                    "top1": round(c.top1, 3), "percentile_vs_random": round(c.percentile_vs_random, 1),
                    "random_top1_median": round(statistics.median(r.top1 for r in c.random), 3),
                    **({"candidate_rules": _rule_percentiles(cands)} if cands else {})}
                   for c, cands in zip(report.limits, candidates, strict=True)],
        "count": args.count,
        "compare_s": round(compare_s, 1),
    }
    print(json.dumps(summary))
    figures = {k: summary[k] for k in ("data", "resolution", "spearman_random", "spearman_bands", "count")}
    figures["percentiles_vs_random"] = [row["percentile_vs_random"] for row in summary["limits"]]
    write_result("search_vs_random", figures, rows=summary["limits"], args=args)


if __name__ == "__main__":
    main()
