"""What the demo's stages share: its settings (:class:`DemoConfig`), the record of one run (:class:`DemoRun`), the
error a failed stage raises and :func:`run_nas`, which runs one ``nas`` command as a stage. The stages
(:mod:`nas.demo.run`), the baselines and fleet steps (:mod:`nas.demo.baselines`, :mod:`nas.demo.fleet`) and the
report (:mod:`nas.demo.report`, :mod:`nas.demo.plots`) all import it, and it imports none of them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.latency.local_server import LocalServer

#: the published networks (:data:`~nas.latency.compare.PUBLISHED_BASELINES`) in the demo's order
DEMO_BASELINES = ("hardcorenas_a", "mobilenetv3_large_100", "hardcorenas_f", "mobilenetv3_small_100", "hardcorenas_c",
                  "hardcorenas_b", "hardcorenas_d", "hardcorenas_e")

__all__ = ["DemoConfig", "DemoError", "DemoRun", "run_nas"]

log = logging.getLogger("nas.demo")


class DemoError(RuntimeError):
    """A demo stage failed; the message says which and why."""


@dataclass
class DemoConfig:
    """What the demo runs. The defaults are sized to finish within 15 minutes on a 2-core CPU."""

    out_dir: Path = Path("outputs/demo")
    data: str = "digits"
    resolution: int = 32
    backend: str = "onnxruntime"
    threads: int = 1
    heaviest_epochs: int = 4
    supernet_epochs: int = 4
    finetune_epochs: int = 1
    #: torch threads of the stages that train or evaluate (the server measures nothing meanwhile): both cores of
    #: a 2-core box ran an epoch 1.4x faster than 1 thread; 1 is the robust choice when other work shares the box
    train_threads: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    steps_per_epoch: int | None = None  # cap on training steps per epoch (smoke runs)
    bcfw_steps: int = 60  # median regret 0.9 % on the planted benchmark (0.3 % at 150), and 15 minutes hold
    #: the final steps choose among this many networks by their children's held-out accuracy: the 4-epoch
    #: supernet's averaged gradients rate no larger option well, so the score alone left half the highest budget unused
    child_candidates: int = 6
    #: the limits' places between the lowest limit the device can guarantee now (the lightest network's verified
    #: bound, with ``floor_headroom``) and the heaviest network's table latency: at 32 px on a 2-core box the bound
    #: runs 1.3-2x the central figure, so a limit placed on the table's range alone (0.96 ms on a noisy day) fell
    #: under the lightest network's bound (0.99 ms) and could not be met
    limit_fractions: tuple[float, ...] = (0.3, 0.55, 0.8)
    floor_headroom: float = 1.1
    random_networks: int = 30  # random networks per limit the searched one is ranked among
    #: random networks over the table's whole range, for the correlation of latency and accuracy: the verdict
    #: tightens the searches at 32 px into the table's light end, where the limits' bands span too little latency
    spread_networks: int = 30
    recal_batches: int = 4  # training batches (64 images) re-estimating each compared child's BN statistics
    seed: int = 0
    progress: bool = True
    extra_server_env: dict[str, str] = field(default_factory=dict)
    #: the fleet step's second target (the same server through this runtime; None: no fleet step), its limits'
    #: share of each table's feasible range and its search's steps
    fleet_backend: str | None = "torch-cpu"
    fleet_fraction: float = 0.7  # torch-cpu's bound ran 1.3-1.7x its table at 32 px on a loaded 2-core box
    fleet_bcfw_steps: int = 60
    #: timm models measured beside the searched networks on the demo's server (nas.demo.baselines; (): none), the
    #: published range's ends first, so that a budget with room for only some of them still spans it
    baselines: tuple[str, ...] = DEMO_BASELINES
    #: seconds of demo clock the baselines and fleet steps must fit in (None: no budget): the demo's other stages
    #: run 10-13 minutes on a 2-core box and up to 1.3x longer when the box is slow; each of the two steps (8
    #: verdicts, about a minute; another table and a search, about 2.5 minutes) runs only where its estimate from
    #: this run's own stage times fits, so that ``make demo`` with the environment's set-up (about a minute) stays
    #: within 15 minutes
    time_budget_s: float | None = 13.75 * 60


@dataclass
class DemoRun:
    """What the stages share: the settings, the server, the files written so far and each stage's wall time."""

    cfg: DemoConfig
    server: LocalServer
    #: ``nas.cli.main``, handed in by the command that runs the demo (the demo runs each stage as a user would)
    cli_main: Callable[[list[str]], int] | None = field(default=None, repr=False)
    lut_path: Path | None = None
    feasible_ms: tuple[float, float] = (0.0, 0.0)
    heaviest: Path | None = None
    supernet: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per limit
    versus_random: Any = None  # nas.evaluation.versus_random.VersusRandom
    baselines: dict[str, Any] | None = None  # the published networks' figures (nas.demo.baselines)
    fleet: dict[str, Any] | None = None  # the fleet step's result and costs (nas.demo.fleet)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)  # the demo clock's start
    out: Path = field(init=False)
    train_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = self.cfg.out_dir
        self.train_dir = self.out / "train"


def run_nas(run: DemoRun, argv: Sequence[str], stage: str) -> None:
    """Run ``nas ARGV`` in this process, through the command line the demo was started from (``run.cli_main``),
    as the demo stage ``stage``; a non-zero exit is a :class:`DemoError`."""
    if run.cli_main is None:
        raise DemoError(f"stage '{stage}': no command line to run `nas {' '.join(argv)}` through")
    log.info("$ nas %s", " ".join(argv))
    code = run.cli_main(list(argv))
    if code != 0:
        raise DemoError(f"stage '{stage}' failed: `nas {' '.join(argv)}` exited with {code}")
