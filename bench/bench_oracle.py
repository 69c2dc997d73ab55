"""Benchmark of the search's LP oracle and optimizer.

Compares the exact multiple-choice-knapsack oracle (:mod:`nas.search.lmo`) with HiGHS (dual simplex, scipy) and a
generic interior-point solve (HiGHS IPM, standing in for the original's cvxopt) on the real problem sizes --
the alpha LP (240 variables: 20 blocks x 12 options) and the beta LP (15 variables: 5 stages x 3 depths) --
checking that every solver reaches the same optimum; then times 10,000 BCFW steps with pre-drawn gradients
(no network passes) and the final steps (the exact best network under the limit, a MILP).

    .venv/bin/python bench/bench_oracle.py [--instances 200] [--steps 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from record import add_state_argument, write_result

from nas.latency.expected_latency import LatencyModel  # noqa: E402
from nas.search.bcfw import BCFW, BCFWConfig  # noqa: E402
from nas.search.finalize import finalize, search_score  # noqa: E402
from nas.search.lmo import solve_mck_lp  # noqa: E402
from nas.search.start import max_entropy_start  # noqa: E402


def random_model(rng: np.random.Generator) -> LatencyModel:
    """A table shaped like the real one (5 stages x 4 blocks x 12 options, depths 2-4), values in ms."""
    base = rng.uniform(0.05, 0.6, size=(5, 4, 1))
    scale = np.array([1.0, 1.1, 1.3, 1.4, 1.6, 1.8, 1.9, 2.1, 2.6, 2.8, 3.3, 3.6])  # er x k x se growth
    return LatencyModel(base * scale * rng.uniform(0.9, 1.1, size=(5, 4, 12)), 2.0, (2, 3, 4))


def instances(rng: np.random.Generator, n: int) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """Alpha and beta LPs as the search meets them: momentum-like objectives, coefficients at a feasible point."""
    out = []
    for _ in range(n):
        model = random_model(rng)
        lo, hi = model.min_latency_ms(), model.max_latency_ms()
        limit = lo + rng.uniform(0.1, 0.7) * (hi - lo)
        alpha, beta = max_entropy_start(model, limit)
        r = limit - model.fixed_ms
        out.append(("alpha", rng.normal(size=(20, 12)), model.alpha_coefficients(beta).reshape(20, 12), r))
        coef, const = model.beta_coefficients(alpha)
        out.append(("beta", rng.normal(size=(5, 3)), coef, r - const))
    return out


class HighsLP:
    """scipy/HiGHS on the same LP, constraint matrices built once per shape (only the solve is timed)."""

    def __init__(self, method: str) -> None:
        from scipy.optimize import linprog

        self.linprog = linprog
        self.method = method
        self._eq: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, c: np.ndarray, a: np.ndarray, r: float) -> float:
        shape = c.shape
        if shape not in self._eq:
            self._eq[shape] = np.kron(np.eye(shape[0]), np.ones((1, shape[1])))
        res = self.linprog(
            c.ravel(),
            A_ub=a.reshape(1, -1),
            b_ub=[r],
            A_eq=self._eq[shape],
            b_eq=np.ones(shape[0]),
            bounds=(0, None),
            method=self.method,
        )
        if res.status != 0:
            raise RuntimeError(res.message)
        return float(res.fun)


def time_solver(solve, problems, repeats: int = 3) -> tuple[list[float], dict[str, list[float]]]:
    """Objectives and, per kind, each instance's best-of-``repeats`` solve time in microseconds."""
    objectives, times = [], {"alpha": [], "beta": []}
    for kind, c, a, r in problems:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            obj = solve(c, a, r)
            best = min(best, time.perf_counter() - t0)
        objectives.append(obj)
        times[kind].append(best * 1e6)
    return objectives, times


def median_times(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200, help="random alpha+beta LP pairs (default 200)")
    parser.add_argument("--steps", type=int, default=10000, help="BCFW steps to time (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    add_state_argument(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    problems = instances(rng, args.instances)
    ours_obj, ours_times = time_solver(lambda c, a, r: solve_mck_lp(c, a, r).objective, problems)
    ours_t = median_times(ours_times)
    figures = {"oracle_alpha_us": ours_t["alpha"], "oracle_beta_us": ours_t["beta"]}
    print(
        f"LP oracle on {args.instances} alpha LPs (240 vars) + {args.instances} beta LPs (15 vars), median "
        "of per-instance best-of-3 solve times:"
    )
    print(f"  {'solver':<28} {'alpha us':>10} {'beta us':>10} {'alpha x':>9} {'beta x':>8} {'max rel diff':>13}")
    print(f"  {'exact oracle (search.lmo)':<28} {ours_t['alpha']:>10.1f} {ours_t['beta']:>10.1f} {'1.0':>9} {'1.0':>8}")
    for label, method in (
        ("HiGHS dual simplex", "highs-ds"),
        ("HiGHS (auto)", "highs"),
        ("HiGHS interior point", "highs-ipm"),
    ):
        objs, times = time_solver(HighsLP(method), problems)
        t = median_times(times)
        diff = max(abs(o - h) / max(1.0, abs(h)) for o, h in zip(ours_obj, objs, strict=True))
        figures[f"{method}_alpha_x"] = t["alpha"] / ours_t["alpha"]
        figures[f"{method}_max_rel_diff"] = diff
        print(
            f"  {label:<28} {t['alpha']:>10.1f} {t['beta']:>10.1f} {t['alpha'] / ours_t['alpha']:>8.1f}x "
            f"{t['beta'] / ours_t['beta']:>7.1f}x {diff:>13.2e}"
        )

    model = random_model(rng)
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    limit = lo + 0.4 * (hi - lo)
    grads_a = rng.normal(size=(args.steps, 5, 4, 12))
    grads_b = rng.normal(size=(args.steps, 5, 3))
    for label, config in (("the original's fixed step 0.002", BCFWConfig(step_schedule="fixed", max_step=0.002,
                                                                          momentum_schedule="fixed",
                                                                          objective="momentum", depth_floor=0.0)),
                          ("this project's defaults", BCFWConfig())):
        opt = BCFW(model, limit, config, seed=args.seed)
        worst = -np.inf
        t0 = time.perf_counter()
        for k in range(args.steps):
            info = opt.step(grads_a[k], grads_b[k])
            worst = max(worst, info.expected_latency_ms / limit - 1.0)
        elapsed = time.perf_counter() - t0
        t1 = time.perf_counter()
        fin = finalize(model, search_score(opt), limit)
        t_final = time.perf_counter() - t1
        key = "bcfw_defaults" if config == BCFWConfig() else "bcfw_original"
        figures.update({f"{key}_s": elapsed, f"{key}_steps": args.steps, f"{key}_final_ms": 1e3 * t_final})
        print(
            f"BCFW {args.steps} steps ({label}), no network passes: {elapsed:.2f} s "
            f"({1e6 * elapsed / args.steps:.0f} us/step); worst E/T-1 over iterates {worst:.1e}; "
            f"final steps {1e3 * t_final:.1f} ms, network {fin.latency_ms:.4f} <= T {limit:.4f} ms"
        )
    write_result("bench_oracle", figures, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
