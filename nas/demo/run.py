"""The main job end to end on the embedded default: a local latency server on SQLite, the bundled data, heaviest and
supernet training, three searches under hard limits, each searched network ranked among random networks of its
latency band, fine-tuning, validation and on-device measurement; one results table (Markdown, CSV, JSON) and three
plots under ``outputs/demo/``.

Every stage runs the same CLI commands a user would type (``nas lut``, ``nas train-heaviest``, ...), in this
process; only the latency server is a separate process (``latency-server serve``,
:mod:`nas.latency.local_server`), stopped on exit, Ctrl-C or failure. This module owns the stages (one function
each, timed) and their order; :mod:`nas.demo.report` writes the results and :mod:`nas.demo.plots` draws them.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.demo.baselines import measure_baselines
from nas.demo.fleet import fleet_search
from nas.demo.report import write_report
from nas.demo.state import DemoConfig, DemoError, DemoRun, run_nas
from nas.latency.client import LatencyClient
from nas.latency.local_server import LocalServer, ServerStartError

__all__ = ["run_demo"]


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so clean-up (stopping the server) runs."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _newest_run(output: Path, experiment: str) -> Path:
    runs = sorted(output.glob(f"*-{experiment}"), key=lambda p: p.stat().st_mtime)
    for run in reversed(runs):
        for name in ("model_best.pth.tar", "last.pth.tar"):
            if (run / name).exists():
                return run / name
    raise DemoError(f"no checkpoint of '{experiment}' under {output}")


def _train_args(cfg: DemoConfig, epochs: int, experiment: str, train_dir: Path) -> list[str]:
    args = [cfg.data, "--resolution", str(cfg.resolution), "--epochs", str(epochs), "--output", str(train_dir),
            "--experiment", experiment, "--seed", str(cfg.seed), "--threads", str(cfg.train_threads)]
    if cfg.steps_per_epoch:
        args += ["--steps-per-epoch", str(cfg.steps_per_epoch)]
    if not cfg.progress:
        args.append("--no-progress")
    return args


# -- stages ----------------------------------------------------------------------------------------------------
def build_table(run: DemoRun) -> str:
    cfg = run.cfg
    from nas.latency.table import LatencyTable

    run.lut_path = run.out / "lut.json"
    run_nas(run, ["lut", "--latency-endpoint", run.server.url, "--resolution", str(cfg.resolution), "--backend",
               cfg.backend, "--threads", str(cfg.threads), "--out", str(run.lut_path)], "latency table")
    model = LatencyTable.load(run.lut_path).model()
    run.feasible_ms = (model.min_latency_ms(), model.max_latency_ms())
    return f"feasible range of the table: {run.feasible_ms[0]:.3f} .. {run.feasible_ms[1]:.3f} ms"


def train_heaviest(run: DemoRun) -> str:
    argv = ["train-heaviest", *_train_args(run.cfg, run.cfg.heaviest_epochs, "heaviest", run.train_dir)]
    run_nas(run, argv, "heaviest")
    run.heaviest = _newest_run(run.train_dir, "heaviest")
    return f"teacher: {run.heaviest}"


def train_supernet(run: DemoRun) -> str:
    run_nas(run, ["train-supernet", *_train_args(run.cfg, run.cfg.supernet_epochs, "supernet", run.train_dir),
               "--teacher", str(run.heaviest)], "supernet")
    run.supernet = _newest_run(run.train_dir, "supernet")
    return f"supernet: {run.supernet}"


def lightest_bound_ms(run: DemoRun) -> float:
    """The lightest network's verified bound now, at a search's first-verdict confidence: no limit under it can be
    guaranteed on this device at present."""
    from nas.latency.table import LatencyTable
    from nas.search import SearchSettings
    from nas.search.guarantee import verdict_confidence, verdict_of
    from shared.arch_string import format_arch
    from shared.search_space import get_space

    cfg = run.cfg
    table = LatencyTable.load(run.lut_path)
    space = get_space(table.space)
    lightest = format_arch(space.arch_from_choice(table.model(space).lightest_choice()))
    with LatencyClient(run.server.url) as client:
        answer = client.measure_network(lightest, resolution=cfg.resolution, backend=cfg.backend, threads=cfg.threads,
                                        space=space.name, confidence=verdict_confidence(SearchSettings.confidence, 1))
    return verdict_of(answer)["upper_latency_ms"]  # a server without verdicts: median + spread, as the search reads it


def search(run: DemoRun) -> str:
    cfg, (lo, hi) = run.cfg, run.feasible_ms
    floor = lightest_bound_ms(run)
    print(f"    the lightest network's verified bound now: {floor:.3f} ms (table {lo:.3f} ms)", flush=True)
    lo = min(max(lo, cfg.floor_headroom * floor), hi)
    for i, fraction in enumerate(cfg.limit_fractions):
        limit = round(lo + fraction * (hi - lo), 4)
        search_dir = run.out / f"search-{i}"
        argv = ["search", cfg.data, "--latency-limit-ms", str(limit), "--latency-endpoint", run.server.url,
                "--supernet", str(run.supernet), "--resolution", str(cfg.resolution), "--bcfw-steps",
                str(cfg.bcfw_steps), "--child-candidates", str(cfg.child_candidates), "--seed", str(cfg.seed),
                "--backend", cfg.backend, "--threads", str(cfg.threads), "--out", str(search_dir)]
        if not cfg.progress:
            argv.append("--no-progress")
        run_nas(run, argv, f"search {i}")
        result = json.loads((search_dir / "result.json").read_text())
        run.rows.append({"limit_ms": limit, "search_dir": search_dir, "result": result})
    return "found: " + ", ".join(f"{r['result']['expected_latency_ms']:.3f} ms" for r in run.rows)


def compare_with_random(run: DemoRun) -> str:
    """Each searched network's held-out accuracy among random networks of its latency band (no fine-tuning)."""
    import torch

    from nas.evaluation.child_accuracy import evaluator_for
    from nas.evaluation.versus_random import compare_with_random as compare
    from nas.evaluation.versus_random import usable_limit_ms
    from nas.latency.table import LatencyTable
    from shared.search_space import get_space

    cfg = run.cfg
    table = LatencyTable.load(run.lut_path)
    space = get_space(table.space)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.train_threads)
    try:
        evaluator = evaluator_for(str(run.supernet), cfg.data, cfg.resolution, recal_batches=cfg.recal_batches,
                                  seed=cfg.seed)
        searched = [(r["limit_ms"], space.choice_from_arch(r["result"]["arch"])) for r in run.rows]
        usable = [usable_limit_ms(r["result"]) for r in run.rows]
        run.versus_random = compare(evaluator.evaluate, table.model(space), space, searched,
                                    count=cfg.random_networks, seed=cfg.seed, usable_limits_ms=usable,
                                    spread=cfg.spread_networks, on_child=_progress_printer())
    finally:
        torch.set_num_threads(threads)
    for row, comparison in zip(run.rows, run.versus_random.limits, strict=True):
        row["versus_random"] = comparison
    (run.out / "versus_random.json").write_text(json.dumps(run.versus_random.to_json(), indent=1))
    rho = run.versus_random.spearman_random
    return ("percentiles " + ", ".join(f"{c.percentile_vs_random:.0f}" for c in run.versus_random.limits)
            + "; Spearman(latency, top-1) of the random networks " + ("undefined" if rho is None else f"{rho:.2f}"))


def _progress_printer() -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"    {done}/{total} networks evaluated", flush=True)

    return report


def finetune_and_validate(run: DemoRun) -> str:
    cfg = run.cfg
    for i, row in enumerate(run.rows):
        experiment = f"finetune-{i}"
        run_nas(run, ["finetune", *_train_args(cfg, cfg.finetune_epochs, experiment, run.train_dir), "--search-result",
                   str(row["search_dir"] / "result.json"), "--supernet", str(run.supernet), "--teacher",
                   str(run.heaviest)], f"fine-tune {i}")
        checkpoint = _newest_run(run.train_dir, experiment)
        validation = run.out / f"validate-{i}.json"
        run_nas(run, ["validate", cfg.data, "--arch", row["result"]["arch"], "--checkpoint", str(checkpoint),
                   "--resolution", str(cfg.resolution), "--json", str(validation)], f"validate {i}")
        row["validation"] = json.loads(validation.read_text())
        row["checkpoint"] = checkpoint
    return "top-1 " + ", ".join(f"{r['validation']['top1']:.1f} %" for r in run.rows)


def measure(run: DemoRun) -> str:
    cfg = run.cfg
    with LatencyClient(run.server.url) as client:
        for row in run.rows:
            row["final_measurement"] = client.measure_network(
                row["result"]["arch"], resolution=cfg.resolution, backend=cfg.backend, threads=cfg.threads)
    return "measured: " + ", ".join(f"{r['final_measurement'].measured.median_ms:.3f} ms" for r in run.rows)


def _stages(cfg: DemoConfig) -> list[tuple[str, str, Callable[[DemoRun], str]]]:
    """(name, banner, stage) in order; the server's start is stage 1."""
    return [
        ("latency_table", f"building the latency table at {cfg.resolution}px ({cfg.backend}, {cfg.threads} thread, "
         "batch 1)", build_table),
        ("heaviest", f"training the heaviest network on {cfg.data} ({cfg.heaviest_epochs} epochs)", train_heaviest),
        ("supernet", f"training the one-shot supernet with distillation ({cfg.supernet_epochs} epochs)",
         train_supernet),
        ("search", "searching under the hard limits (" + ", ".join(f"{f:.0%}" for f in cfg.limit_fractions)
         + " of the way from the lightest network's verified bound to the heaviest's table latency)", search),
        ("versus_random", f"ranking each searched network among {cfg.random_networks} random networks of its "
         "latency band (supernet children, BN recalibrated, no fine-tuning)", compare_with_random),
        ("finetune", "fine-tuning and validating each network (with distillation from the heaviest)",
         finetune_and_validate),
        ("measure", "measuring each network on this device", measure),
        # the cheaper of the two budget-limited steps first (nas.demo.baselines says why)
        *([("baselines", f"measuring {len(cfg.baselines)} published networks on this device (timm, by name, "
            f"{cfg.resolution}px)", measure_baselines)] if cfg.baselines else []),
        *([("fleet", f"one network for two targets: {cfg.backend} and {cfg.fleet_backend} on this server, both "
            f"limits at {cfg.fleet_fraction:.0%} of their tables' ranges", fleet_search)] if cfg.fleet_backend else []),
    ]


def run_demo(cfg: DemoConfig, cli_main: Callable[[list[str]], int]) -> list[dict[str, Any]]:
    """Run every stage, each through ``cli_main`` (``nas.cli.main``); write the report; return the rows of the
    results table."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    db_path = (cfg.out_dir / "latency.db").resolve()
    server = LocalServer(f"sqlite:///{db_path}", log_path=cfg.out_dir / "latency-server.log",
                         env=cfg.extra_server_env)
    run = DemoRun(cfg, server, cli_main)
    stages = _stages(cfg)
    total = len(stages) + 2  # the server's start, the stages, the report
    with _terminate_on_sigterm():
        print(f"\n==> [1/{total}] starting latency-server on 127.0.0.1:{server.port} (SQLite {db_path})", flush=True)
        t0 = time.monotonic()
        try:
            server.start()
        except ServerStartError as exc:
            raise DemoError(str(exc)) from None
        run.stage_seconds["server_start"] = time.monotonic() - t0
        try:
            print(f"    server ready at {server.url} (log: {server.log_path})", flush=True)
            for step, (name, banner, stage) in enumerate(stages, start=2):
                print(f"\n==> [{step}/{total}] {banner}", flush=True)
                t0 = time.monotonic()
                summary = stage(run)
                run.stage_seconds[name] = time.monotonic() - t0
                print(f"    {summary} ({run.stage_seconds[name]:.0f} s)", flush=True)
        finally:
            print("    stopping the latency server", flush=True)
            server.stop()
    print(f"\n==> [{total}/{total}] writing the report", flush=True)
    t0 = time.monotonic()
    table_rows = write_report(run)
    run.stage_seconds["report"] = time.monotonic() - t0
    minutes = (time.monotonic() - run.started) / 60
    print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.stage_seconds.items()), flush=True)
    print(f"\ndemo finished in {minutes:.1f} min; outputs in {cfg.out_dir}/", flush=True)
    return table_rows
