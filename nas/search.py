"""The search driver: BCFW under a hard latency limit, final steps, outputs (result.json, trajectory CSV and plot).

Layers, from pure to wired:

* :func:`search` -- the optimisation on a :class:`~nas.expected_latency.LatencyModel` and a gradient callable
  ``(alpha, beta) -> Gradients``; no I/O; deterministic given the seed.
* :func:`refinalize` -- re-runs the final steps (sparsify + discretisation) of a finished search under another
  internal limit and records the attempt (a measured result above the limit re-runs them tighter).
* :func:`write_outputs` -- ``result.json``, ``trajectory.csv``, ``trajectory.png``.
* :func:`measured_guarantee` -- measures the found network on the device and, while it is above the limit by
  more than its measured spread, tightens the internal limit and re-runs the final steps (bounded retries).
* :func:`run_search` -- what ``nas search`` does: table (file or server), data, supernet, search, outputs, and
  with a server the measured guarantee.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.bcfw import BCFW, BCFWConfig, Finalization, check_limit, finalize
from nas.expected_latency import LatencyModel
from nas.search_gradients import Gradients
from shared.search_space import HARDCORENAS, ArchChoice, SearchSpace, get_space

__all__ = [
    "SearchResult",
    "SearchSettings",
    "TrajectoryRow",
    "load_supernet",
    "measured_guarantee",
    "refinalize",
    "run_search",
    "search",
    "write_outputs",
]

log = logging.getLogger(__name__)

GradientFn = Callable[[np.ndarray, np.ndarray], Gradients]


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines a search besides the table, the data and the supernet."""

    latency_limit_ms: float
    bcfw_steps: int = 1000
    batch_size: int = 16
    train_percent: float = 80.0
    resolution: int = 224
    seed: int = 0
    bcfw: BCFWConfig = field(default_factory=BCFWConfig)
    aggregate_batches: int = 1
    #: BN statistics of the supernet passes: "batch" (each option's own, default) or "running" (the original's)
    bn_statistics: str = "batch"
    # the table's measuring identity this search needs
    backend: str = "onnxruntime"
    latency_batch_size: int = 1
    threads: int = 1


@dataclass(frozen=True)
class TrajectoryRow:
    """One BCFW step: which block moved, the step size, the expected latency after it and the batch loss."""

    step: int
    block: str
    gamma: float
    expected_latency_ms: float
    loss: float
    multiplier: float


@dataclass
class SearchResult:
    """A finished search. ``choice``/``arch`` is the network returned: the last attempt's."""

    space: SearchSpace
    model: LatencyModel
    settings: SearchSettings
    alpha: np.ndarray  # BCFW's final option probabilities [S, D, O] (input of the final steps)
    beta: np.ndarray  # [S, nd]
    init_latency_ms: float
    trajectory: list[TrajectoryRow]
    attempts: list[dict[str, Any]]
    finalization: Finalization
    lut_fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def choice(self) -> ArchChoice:
        return self.finalization.choice

    @property
    def arch(self) -> str:
        return str(self.space.arch_from_choice(self.choice))

    @property
    def expected_latency_ms(self) -> float:
        """Table latency of the returned network (at most the limit)."""
        return self.finalization.latency_ms

    @property
    def relaxed_latency_ms(self) -> float:
        """Expected latency of BCFW's final distribution."""
        return self.model.expected_latency_ms(self.alpha, self.beta)

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "arch": self.arch,
            "expected_latency_ms": self.expected_latency_ms,
            "latency_limit_ms": s.latency_limit_ms,
            "lut_fingerprint": self.lut_fingerprint,
            "steps": len(self.trajectory),
            "seed": s.seed,
            "budget_used": self.expected_latency_ms / s.latency_limit_ms,
            "relaxed_expected_latency_ms": self.relaxed_latency_ms,
            "init_expected_latency_ms": self.init_latency_ms,
            "min_latency_ms": self.model.min_latency_ms(),
            "max_latency_ms": self.model.max_latency_ms(),
            "choice": [list(stage) for stage in self.choice.options],
            "depths": list(self.choice.depths),
            "space": self.space.name,
            "resolution": s.resolution,
            "settings": {
                **{k: v for k, v in asdict(s).items() if k != "bcfw"},
                "bcfw": asdict(s.bcfw),
            },
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "attempts": self.attempts,
            "final_loss": self.trajectory[-1].loss if self.trajectory else None,
        }
        out.update(self.extra)
        return out


def _attempt(fin: Finalization, space: SearchSpace) -> dict[str, Any]:
    return {
        "internal_limit_ms": fin.limit_ms,
        "arch": str(space.arch_from_choice(fin.choice)),
        "expected_latency_ms": fin.latency_ms,
        "sparse_expected_latency_ms": fin.sparse_latency_ms,
        "shrink": fin.shrink,
        "repairs": fin.repairs,
        "discrete_latency_ms": fin.discrete_latency_ms,
        "upgrades": fin.upgrades,
    }


def search(
    model: LatencyModel,
    gradients: GradientFn,
    settings: SearchSettings,
    *,
    space: SearchSpace = HARDCORENAS,
    lut_fingerprint: str = "",
    progress: bool = True,
) -> SearchResult:
    """Run BCFW for ``settings.bcfw_steps`` steps from the balanced start, then the final steps.

    Raises :class:`~nas.bcfw.LatencyLimitError` at once when the limit is below the table's minimum.
    """
    from tqdm import tqdm

    limit = settings.latency_limit_ms
    check_limit(model, limit)
    opt = BCFW(model, limit, settings.bcfw, seed=settings.seed)
    init_latency = opt.expected_latency_ms()
    trajectory: list[TrajectoryRow] = []
    bar = tqdm(range(settings.bcfw_steps), desc="search", unit="step", disable=not progress)
    try:
        for _ in bar:
            g = gradients(opt.alpha, opt.beta)
            info = opt.step(g.alpha, g.beta)
            trajectory.append(
                TrajectoryRow(info.step, info.block, info.gamma, info.expected_latency_ms, g.loss, info.multiplier)
            )
            bar.set_postfix_str(f"E={info.expected_latency_ms:.4g}/{limit:.4g} ms loss={g.loss:.4f}")
    except KeyboardInterrupt:  # like the original: Ctrl-C jumps to the final steps
        log.warning("interrupted after %d steps: finishing with the current distribution", len(trajectory))
    finally:
        bar.close()
    fin = finalize(model, opt.alpha, opt.beta, limit, sparsify_steps=settings.bcfw.sparsify_steps,
                   fill=settings.bcfw.fill_slack)
    return SearchResult(
        space=space,
        model=model,
        settings=settings,
        alpha=opt.alpha,
        beta=opt.beta,
        init_latency_ms=init_latency,
        trajectory=trajectory,
        attempts=[_attempt(fin, space)],
        finalization=fin,
        lut_fingerprint=lut_fingerprint,
    )


def refinalize(result: SearchResult, internal_limit_ms: float) -> Finalization:
    """Re-run the final steps of ``result`` under ``internal_limit_ms``; the new network becomes the result's."""
    fin = finalize(
        result.model, result.alpha, result.beta, internal_limit_ms, sparsify_steps=result.settings.bcfw.sparsify_steps,
        fill=result.settings.bcfw.fill_slack,
    )
    result.finalization = fin
    result.attempts.append(_attempt(fin, result.space))
    return fin


# -- the measured guarantee ----------------------------------------------------------------------------------
def measured_guarantee(
    result: SearchResult,
    measure: Callable[[str], dict[str, Any]],
    *,
    max_retries: int = 3,
    on_attempt: Callable[[], Any] | None = None,
    good_use: float = 0.95,
) -> bool:
    """Measure the found network on the device and re-run the final steps under a tighter internal limit while it
    is above the limit T (at most ``max_retries`` re-runs in all); met means ``m <= T + spread``.

    ``measure(arch)`` answers like ``POST /v1/latency/network``. A network measured at ``m`` ms whose table
    latency is ``E`` shows the device running ``m / E`` times the table; the next internal limit is
    ``E * T / m`` (the observed ratio applied to the limit), which is below ``E`` so the next network differs.
    The search steers for ``m <= T``; the measurement's spread is the tolerance of the verdict, not the target.

    One measurement can catch the device in a slow moment and tighten too far. So once a network measures under T
    but uses less than ``good_use`` of it after a tighter re-run, the internal limit moves back up between the
    highest internal limit measured under T and the lowest measured above (the observed ratio, or their midpoint),
    while re-runs are left. The network returned is the one measured under T with the highest latency; else the
    one within T + spread with the highest latency; else the last. The internal limit never exceeds T, so every
    attempt keeps the table guarantee. Every attempt (internal limit, arch, expected, measured, spread, verdicts,
    ``returned``) is in ``result.attempts``; ``result.extra["guarantee"]`` says whether the returned network met
    ``m <= T + spread``.
    """
    from nas.bcfw import LatencyLimitError

    limit = result.settings.latency_limit_ms
    first = len(result.attempts) - 1
    finals = {first: result.finalization}
    lowest_above: float | None = None  # internal limit of the tightest attempt measured above T
    retries = 0
    reason = ""

    def best_of(key: str) -> int | None:
        hits = [i for i, a in enumerate(result.attempts) if i >= first and a.get(key)]
        return max(hits, key=lambda i: result.attempts[i]["measured_latency_ms"]) if hits else None

    while True:
        index = len(result.attempts) - 1
        fin = result.finalization
        answer = measure(result.arch)
        stats = answer.get("measured") or {}
        m = float(stats["median_ms"])
        spread = float(answer.get("spread_ms") or 0.0)
        result.attempts[-1].update({
            "measured_latency_ms": m,
            "measured_spread_ms": spread,
            "measured": stats,
            "under_limit": m <= limit,
            "within_limit": m <= limit + spread,
            **{key: answer.get(key) for key in _ANSWER_KEYS},
            "measurement_fingerprint": answer.get("fingerprint"),
        })
        if m > limit:
            lowest_above = fin.limit_ms if lowest_above is None else min(lowest_above, fin.limit_ms)
        log.info("attempt %d: %s measured %.4f ms (spread %.4f ms) against T = %.4f ms (table %.4f ms): %s",
                 len(result.attempts), result.arch, m, spread, limit, fin.latency_ms,
                 "under" if m <= limit else "within the spread" if m <= limit + spread else "ABOVE")
        under = best_of("under_limit")
        best = under if under is not None else best_of("within_limit")
        returned = best if best is not None else index
        _return_attempt(result, finals, returned)
        if on_attempt is not None:
            on_attempt()
        if under is not None and (result.attempts[under]["measured_latency_ms"] >= good_use * limit
                                  or lowest_above is None):
            break  # uses the budget well, or measured under T at the full limit (never exceeded)
        if retries >= max_retries:
            if best is None:
                reason = f"still above the limit after {retries} retries"
            break
        ratio_limit = fin.latency_ms * limit / m  # the observed ratio applied to the limit
        if under is None:
            nxt = ratio_limit
        else:  # between the highest internal limit measured under T and the lowest measured above
            lo = max(a["internal_limit_ms"] for a in result.attempts[first:] if a.get("under_limit"))
            hi = min(lowest_above, limit)  # type: ignore[type-var]
            nxt = ratio_limit if lo < ratio_limit < hi else 0.5 * (lo + hi)
            if hi - lo <= 0.002 * limit:
                break  # the bracket is as tight as the measurement noise allows
        try:
            refinalize(result, min(nxt, limit))
        except LatencyLimitError as exc:
            reason = f"cannot tighten further: {exc}"
            log.warning("measured guarantee: %s", reason)
            break
        retries += 1
        finals[len(result.attempts) - 1] = result.finalization
    met = bool(result.attempts[returned].get("within_limit"))
    result.extra["guarantee"] = {
        "met": met,
        "under_limit": bool(result.attempts[returned].get("under_limit")),
        "criterion": "measured median <= latency_limit_ms + measured spread",
        "retries": retries,
        "max_retries": max_retries,
        "returned_attempt": returned,
        **({"reason": reason} if reason and not met else {}),
    }
    return met


#: fields of a ``POST /v1/latency/network`` answer kept with each attempt (and the returned one's in result.json)
_ANSWER_KEYS = ("predicted_ms", "predicted_table_ms", "predicted_naive_ms", "normalized_ms", "drift_ratio")


def _return_attempt(result: SearchResult, finals: dict[int, Finalization], index: int) -> None:
    """Make attempt ``index`` the result's network, and its measurement the result's headline figures."""
    result.finalization = finals[index]
    for i, attempt in enumerate(result.attempts):
        attempt["returned"] = i == index
    a = result.attempts[index]
    keys = ("measured_latency_ms", "measured_spread_ms", "measured", *_ANSWER_KEYS, "measurement_fingerprint")
    result.extra.update({key: a.get(key) for key in keys})
    result.extra["measured_budget_used"] = a["measured_latency_ms"] / result.settings.latency_limit_ms


# -- outputs --------------------------------------------------------------------------------------------------
def write_outputs(result: SearchResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result.json``, ``trajectory.csv`` and ``trajectory.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "result.json", "trajectory": out / "trajectory.csv", "plot": out / "trajectory.png"}
    paths["result"].write_text(json.dumps(result.to_json(), indent=1) + "\n")
    with paths["trajectory"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "block", "gamma", "expected_latency_ms", "loss", "multiplier"])
        for row in result.trajectory:
            writer.writerow(
                [
                    row.step,
                    row.block,
                    repr(row.gamma),
                    repr(row.expected_latency_ms),
                    repr(row.loss),
                    repr(row.multiplier),
                ]
            )
    _plot(result, paths["plot"])
    return paths


def _plot(result: SearchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in result.trajectory]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(steps, [r.expected_latency_ms for r in result.trajectory], label="expected latency")
    ax1.axhline(result.settings.latency_limit_ms, color="red", linestyle="--", label="limit T")
    ax1.axhline(result.expected_latency_ms, color="green", linestyle=":", label="returned network")
    ax1.set_ylabel("ms")
    ax1.legend(loc="best")
    ax1.set_title(f"BCFW search under T = {result.settings.latency_limit_ms:.4g} ms")
    losses = [r.loss for r in result.trajectory]
    ax2.plot(steps, losses, alpha=0.4, label="batch loss")
    if len(losses) >= 5:
        w = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax2.plot(steps[w - 1 :], smooth, label=f"mean of {w}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("held-out loss")
    ax2.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the command's wiring ---------------------------------------------------------------------------------------
def load_supernet(path: str | Path, space: SearchSpace, num_classes: int):
    """An :class:`~nas.supernet.ElasticSupernet` with a checkpoint's weights (EMA weights when present).

    Reads the training issue's checkpoints (``kind``, ``space``, ``num_classes``, ``state_dict``,
    ``state_dict_ema``) or a bare supernet state dict; raises ``ValueError`` with one line otherwise.
    """
    import torch

    from nas.supernet import ElasticSupernet

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"supernet checkpoint {p} does not exist")
    try:
        ckpt = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - fall back to a full load for checkpoints holding plain Python objects
        try:
            ckpt = torch.load(str(p), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
            raise ValueError(f"cannot read supernet checkpoint {p}: {exc}") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{p} holds a {type(ckpt).__name__}, not a checkpoint")
    if "state_dict" in ckpt:
        kind = ckpt.get("kind", "supernet")
        if kind != "supernet":
            raise ValueError(f"{p} is a {kind} checkpoint; --supernet needs a supernet checkpoint")
        if ckpt.get("space", space.name) != space.name:
            raise ValueError(f"{p} is a supernet of space {ckpt['space']!r}, not {space.name!r}")
        state = ckpt.get("state_dict_ema") or ckpt["state_dict"]
    else:
        state = ckpt
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    head = state.get("classifier.weight")
    if head is not None:
        num_classes = int(head.shape[0])
    net = ElasticSupernet(space, num_classes=num_classes)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise ValueError(f"{p} is not a supernet checkpoint of space {space.name!r}: {first}") from None
    if missing or unexpected:
        raise ValueError(
            f"{p} is not a supernet checkpoint of space {space.name!r}: {len(missing)} missing and "
            f"{len(unexpected)} unexpected tensors (e.g. {(missing or unexpected)[0]})"
        )
    return net


def run_search(
    data: str,
    out_dir: str | Path,
    settings: SearchSettings,
    *,
    lut_path: str | Path | None = None,
    latency_endpoint: str | None = None,
    token: str | None = None,
    supernet_path: str | Path | None = None,
    space: SearchSpace | str = HARDCORENAS,
    device: str = "cpu",
    progress: bool = True,
    max_retries: int = 3,
    use_correction: bool = True,
) -> SearchResult:
    """``nas search``: table -> model, held-out data, frozen supernet, BCFW, outputs, and (with an endpoint) the
    measured guarantee (:func:`measured_guarantee`, at most ``max_retries`` re-runs of the final steps).
    The server's table is used with its fitted whole-network correction unless ``use_correction`` is false.
    Raises ``ValueError`` subclasses for user errors."""
    import torch

    from nas.data import build_dataset, num_classes, split_per_class
    from nas.latency_table import LatencyClient, LatencyTable
    from nas.search_gradients import SupernetGradients
    from nas.supernet import ElasticSupernet

    space = get_space(space) if isinstance(space, str) else space
    space.check_resolution(settings.resolution)
    if (lut_path is None) == (latency_endpoint is None):
        raise ValueError("give exactly one of a latency table file or a latency endpoint")
    if not (math.isfinite(settings.latency_limit_ms) and settings.latency_limit_ms > 0):
        raise ValueError(f"latency limit must be a positive number of ms, got {settings.latency_limit_ms}")
    client = LatencyClient(latency_endpoint, token=token) if latency_endpoint else None
    try:
        if client is not None:
            table = client.fetch_table(
                space=space.name,
                resolution=settings.resolution,
                backend=settings.backend,
                batch_size=settings.latency_batch_size,
                threads=settings.threads,
                progress=progress,
                use_correction=use_correction,
            )
        else:
            table = LatencyTable.load(lut_path)  # type: ignore[arg-type]
        table.check_matches(settings.resolution, settings.backend, settings.latency_batch_size)
        model = table.model(space)
        check_limit(model, settings.latency_limit_ms)  # stop before any data or network work

        train = build_dataset(data, "train", settings.resolution, train_transforms=False)
        _, held_out = split_per_class(train, settings.train_percent)
        classes = num_classes(train)
        torch.manual_seed(settings.seed)
        if supernet_path is None:
            log.warning("no --supernet given: searching with a freshly initialised supernet (gradients are noise)")
            supernet = ElasticSupernet(space, num_classes=classes)
        else:
            supernet = load_supernet(supernet_path, space, classes)
        grads = SupernetGradients(
            supernet,
            held_out,
            batch_size=settings.batch_size,
            seed=settings.seed,
            aggregate_batches=settings.aggregate_batches,
            bn_statistics=settings.bn_statistics,
            device=device,
        )
        result = search(model, grads, settings, space=space, lut_fingerprint=table.fingerprint, progress=progress)
        result.extra.update(
            {
                "data": data,
                "supernet": str(supernet_path) if supernet_path else None,
                "num_classes": classes,
                "held_out_images": len(held_out),
                "skipped_batches": grads.skipped,
                "lut": {
                    "source": table.source,
                    "backend": table.backend,
                    "batch_size": table.batch_size,
                    "threads": table.threads,
                    "resolution": table.resolution,
                    "fixed_ms": table.fixed_ms,
                    "correction": table.corrections.get("method"),
                },
            }
        )
        write_outputs(result, out_dir)  # the table-guaranteed result is on disk before any measurement
        if client is not None:

            def measure(arch: str) -> dict[str, Any]:
                return client.measure_network(
                    arch,
                    resolution=settings.resolution,
                    backend=settings.backend,
                    batch_size=settings.latency_batch_size,
                    threads=settings.threads,
                )

            measured_guarantee(result, measure, max_retries=max_retries,
                               on_attempt=lambda: write_outputs(result, out_dir))
            write_outputs(result, out_dir)
    finally:
        if client is not None:
            client.close()
    return result
