"""The main job end to end on the embedded default: a local latency server on SQLite, the bundled ``digits``
data, heaviest and supernet training, three searches under hard limits, fine-tuning, validation and on-device
measurement; one results table (Markdown + CSV) and three plots under ``outputs/demo/``.

Every stage runs the same CLI commands a user would type (``nas lut``, ``nas train-heaviest``, ...), in this
process; only the latency server is a separate process (``latency-server serve``, :mod:`nas.local_server`), stopped
on exit, Ctrl-C or failure. This module owns the stages and their order; :mod:`nas.demo.report` writes the results.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.client import LatencyClient
from nas.demo.report import write_report
from nas.local_server import LocalServer, ServerStartError

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
    server = LocalServer(f"sqlite:///{db_path}", log_path=out / "latency-server.log", env=cfg.extra_server_env)
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
            with LatencyClient(server.url) as client:
                for row in rows:
                    row["final_measurement"] = client.measure_network(
                        row["result"]["arch"], resolution=cfg.resolution, backend=cfg.backend, threads=cfg.threads)
        finally:
            print("    stopping the latency server", flush=True)
            server.stop()
    table_rows = write_report(cfg, rows)
    print(f"\ndemo finished in {(time.monotonic() - started) / 60:.1f} min; outputs in {out}/", flush=True)
    return table_rows
