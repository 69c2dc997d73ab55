"""The main job end to end on the embedded default: a local latency server on SQLite, the bundled ``digits``
data, heaviest and supernet training, three searches under hard limits, fine-tuning, validation and on-device
measurement; one results table (Markdown + CSV) and three plots under ``outputs/demo/``.

Every stage runs the same CLI commands a user would type (``nas lut``, ``nas train-heaviest``, ...), in this
process; only the latency server is a separate process, stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import csv
import json
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latency_server.launcher import ServerProcess, ServerStartError

__all__ = ["DemoConfig", "DemoError", "run_demo"]

log = logging.getLogger("nas.demo")


class DemoError(RuntimeError):
    """A demo stage failed; the message says which and why."""


@dataclass
class DemoConfig:
    """What the demo runs. Defaults finish in well under 15 minutes on a 2-core CPU."""

    out_dir: Path = Path("outputs/demo")
    data: str = "digits"
    resolution: int = 32
    backend: str = "onnxruntime"
    threads: int = 1
    heaviest_epochs: int = 7
    supernet_epochs: int = 6
    finetune_epochs: int = 3
    train_threads: int = 1  # torch threads of training (1: robust on a busy shared box)
    steps_per_epoch: int | None = None  # cap on training steps per epoch (smoke runs)
    bcfw_steps: int = 60
    max_step: float = 0.05
    limit_fractions: tuple[float, ...] = (0.2, 0.5, 0.8)
    seed: int = 0
    progress: bool = True
    extra_server_env: dict[str, str] = field(default_factory=dict)


# -- the latency server is a child process (latency_server.launcher.ServerProcess) ---------------------------


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


# -- stages ----------------------------------------------------------------------------------------------------
def _nas(argv: Sequence[str], stage: str) -> None:
    from nas.cli import main

    log.info("$ nas %s", " ".join(argv))
    code = main(list(argv))
    if code != 0:
        raise DemoError(f"stage '{stage}' failed: `nas {' '.join(argv)}` exited with {code}")


def _newest_run(output: Path, experiment: str) -> Path:
    runs = sorted(output.glob(f"*-{experiment}"), key=lambda p: p.stat().st_mtime)
    for run in reversed(runs):
        for name in ("model_best.pth.tar", "last.pth.tar"):
            if (run / name).exists():
                return run / name
    raise DemoError(f"no checkpoint of '{experiment}' under {output}")


def _banner(step: int, total: int, text: str) -> None:
    print(f"\n==> [{step}/{total}] {text}", flush=True)


def _train_args(cfg: DemoConfig, epochs: int, experiment: str, train_dir: Path) -> list[str]:
    args = [cfg.data, "--resolution", str(cfg.resolution), "--epochs", str(epochs), "--output", str(train_dir),
            "--experiment", experiment, "--seed", str(cfg.seed), "--threads", str(cfg.train_threads)]
    if cfg.steps_per_epoch:
        args += ["--steps-per-epoch", str(cfg.steps_per_epoch)]
    if not cfg.progress:
        args.append("--no-progress")
    return args


def run_demo(cfg: DemoConfig) -> list[dict[str, Any]]:
    """Run every stage; return the rows of the results table."""
    from nas.latency_table import LatencyTable

    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    train_dir = out / "train"
    total = 7
    started = time.monotonic()
    db_path = (out / "latency.db").resolve()
    server = ServerProcess(f"sqlite:///{db_path}", log_path=out / "latency-server.log", env=cfg.extra_server_env)
    with _terminate_on_sigterm():
        _banner(1, total, f"starting latency-server on 127.0.0.1:{server.port} (SQLite {db_path})")
        try:
            server.start()
        except ServerStartError as exc:
            raise DemoError(str(exc)) from None
        try:
            print(f"    server ready at {server.url} (log: {server.log_path})", flush=True)
            _banner(2, total, f"building the latency table at {cfg.resolution}px ({cfg.backend}, "
                    f"{cfg.threads} thread, batch 1)")
            lut_path = out / "lut.json"
            _nas(["lut", "--latency-endpoint", server.url, "--resolution", str(cfg.resolution), "--backend",
                  cfg.backend, "--threads", str(cfg.threads), "--out", str(lut_path)], "latency table")
            table = LatencyTable.load(lut_path)
            model = table.model()
            lo, hi = model.min_latency_ms(), model.max_latency_ms()
            print(f"    feasible range of the table: {lo:.3f} .. {hi:.3f} ms", flush=True)

            _banner(3, total, f"training the heaviest network on {cfg.data} ({cfg.heaviest_epochs} epochs)")
            _nas(["train-heaviest", *_train_args(cfg, cfg.heaviest_epochs, "heaviest", train_dir)], "heaviest")
            heaviest = _newest_run(train_dir, "heaviest")

            _banner(4, total, f"training the one-shot supernet with distillation ({cfg.supernet_epochs} epochs)")
            _nas(["train-supernet", *_train_args(cfg, cfg.supernet_epochs, "supernet", train_dir),
                  "--teacher", str(heaviest)], "supernet")
            supernet = _newest_run(train_dir, "supernet")

            limits = [round(lo + f * (hi - lo), 4) for f in cfg.limit_fractions]
            rows: list[dict[str, Any]] = []
            _banner(5, total, "searching under the hard limits " + ", ".join(f"{t:.3f} ms" for t in limits))
            for i, limit in enumerate(limits):
                search_dir = out / f"search-{i}"
                search_args = ["search", cfg.data, "--latency-limit-ms", str(limit), "--latency-endpoint", server.url,
                               "--supernet", str(supernet), "--resolution", str(cfg.resolution), "--bcfw-steps",
                               str(cfg.bcfw_steps), "--max-step", str(cfg.max_step), "--seed", str(cfg.seed),
                               "--backend", cfg.backend, "--threads", str(cfg.threads), "--out", str(search_dir)]
                if not cfg.progress:
                    search_args.append("--no-progress")
                _nas(search_args, f"search {i}")
                result = json.loads((search_dir / "result.json").read_text())
                rows.append({"limit_ms": limit, "search_dir": search_dir, "result": result})

            _banner(6, total, "fine-tuning and validating each network (with distillation from the heaviest)")
            for i, row in enumerate(rows):
                experiment = f"finetune-{i}"
                _nas(["finetune", *_train_args(cfg, cfg.finetune_epochs, experiment, train_dir), "--search-result",
                      str(row["search_dir"] / "result.json"), "--supernet", str(supernet), "--teacher",
                      str(heaviest)], f"fine-tune {i}")
                checkpoint = _newest_run(train_dir, experiment)
                validation = out / f"validate-{i}.json"
                _nas(["validate", cfg.data, "--arch", row["result"]["arch"], "--checkpoint", str(checkpoint),
                      "--resolution", str(cfg.resolution), "--json", str(validation)], f"validate {i}")
                row["validation"] = json.loads(validation.read_text())
                row["checkpoint"] = checkpoint

            _banner(7, total, "measuring each network on this device and writing the report")
            from nas.latency_table import LatencyClient

            client = LatencyClient(server.url)
            for row in rows:
                figure = client.measure_network(row["result"]["arch"], resolution=cfg.resolution,
                                                backend=cfg.backend, threads=cfg.threads)
                row["final_measurement"] = figure
        finally:
            print("    stopping the latency server", flush=True)
            server.stop()
    table_rows = _report(cfg, rows)
    print(f"\ndemo finished in {(time.monotonic() - started) / 60:.1f} min; outputs in {out}/", flush=True)
    return table_rows


# -- report ------------------------------------------------------------------------------------------------------
def _params(arch: str, num_classes: int) -> int:
    from shared.builders import build_network

    return sum(p.numel() for p in build_network(arch, num_classes=num_classes).parameters())


def _report(cfg: DemoConfig, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = cfg.out_dir
    table: list[dict[str, Any]] = []
    for row in rows:
        result, validation, figure = row["result"], row["validation"], row["final_measurement"]
        measured = figure["measured"]
        table.append({
            "limit_ms": row["limit_ms"],
            "expected_ms": result["expected_latency_ms"],
            "search_measured_ms": result.get("measured_latency_ms"),
            "measured_ms": measured["median_ms"],
            "measured_spread_ms": figure.get("spread_ms", 0.0),
            "predicted_ms": figure.get("predicted_ms"),
            "budget_used": measured["median_ms"] / row["limit_ms"],
            "top1": validation["top1"],
            "top5": validation.get("top5"),
            "params_m": _params(result["arch"], int(validation.get("num_classes", 10))) / 1e6,
            "arch": result["arch"],
        })
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    header = ["limit (ms)", "expected (ms)", "measured (ms)", "predicted (ms)", "budget used", "top-1 (%)",
              "params (M)", "architecture"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table:
        cells = [f"{r['limit_ms']:.3f}", f"{r['expected_ms']:.3f}", f"{r['measured_ms']:.3f}",
                 "-" if r["predicted_ms"] is None else f"{r['predicted_ms']:.3f}", f"{r['budget_used']:.0%}",
                 f"{r['top1']:.1f}", f"{r['params_m']:.2f}", f"`{r['arch']}`"]
        lines.append("| " + " | ".join(cells) + " |")
    settings = (f"{cfg.data} at {cfg.resolution}px; latency: {cfg.backend}, {cfg.threads} thread, batch 1, "
                "median of independent rounds on this machine")
    (out / "results.md").write_text("# Demo results\n\n" + settings + "\n\n" + "\n".join(lines) + "\n")
    _plots(out, table, rows)
    print("\n" + "\n".join(lines))
    print("\n" + settings)
    for r in table:
        print(f"  limit {r['limit_ms']:.3f} ms -> measured {r['measured_ms']:.3f} ms "
              f"(spread {r['measured_spread_ms']:.3f} ms) [{_verdict(r)}], top-1 {r['top1']:.1f}%")
    return table


def _verdict(row: dict[str, Any]) -> str:
    """The search's measured guarantee (median <= T + the measurement's own spread), said plainly."""
    if row["measured_ms"] <= row["limit_ms"]:
        return "under the limit"
    if row["measured_ms"] <= row["limit_ms"] + row["measured_spread_ms"]:
        return "at the limit, within the measurement's spread"
    return "OVER the limit"


def _save(fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """Label, grid, save and close one figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plots(out: Path, table: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r["measured_ms"] for r in table], [r["top1"] for r in table], "o-")
    for r in table:
        ax.axvline(r["limit_ms"], color="grey", lw=0.6, ls="--")
        ax.annotate(f"T={r['limit_ms']:.2f}", (r["measured_ms"], r["top1"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    _save(fig, ax, out / "accuracy_vs_latency.png", "measured latency (ms, this device)", "top-1 (%)",
          "Accuracy vs measured latency")

    fig, ax = plt.subplots(figsize=(5, 4.5))
    pairs = [(r["expected_ms"], r["measured_ms"]) for r in table]
    ax.scatter([p for p, _ in pairs], [m for _, m in pairs], label="found networks")
    lo = min(min(p) for p in pairs) * 0.9
    hi = max(max(p) for p in pairs) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    ax.legend()
    _save(fig, ax, out / "predicted_vs_measured.png", "predicted by the table (ms)", "measured (ms)",
          "Predicted vs measured latency")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in rows:
        steps, lat = [], []
        with (row["search_dir"] / "trajectory.csv").open() as f:
            for rec in csv.DictReader(f):
                steps.append(int(rec["step"]))
                lat.append(float(rec["expected_latency_ms"]))
        (line,) = ax.plot(steps, lat, lw=1)
        ax.axhline(row["limit_ms"], color=line.get_color(), ls="--", lw=0.8)
    _save(fig, ax, out / "search_trajectories.png", "BCFW step", "expected latency (ms)",
          "Search trajectories (dashed: the hard limits)")
