"""Write a bench's result as data: one JSON file per run under ``bench/results/<bench>/``.

Every bench calls :func:`write_result` at its end with its headline figures; ``scripts/gen_docs.py`` renders
``docs/benchmarks.md`` (latest figures and history per bench) from these files. A file holds:

- ``bench``: the bench's name (its script's stem), ``command``: the command line as run,
- ``commit``: the short commit of the checkout (``null`` outside git), ``date``: UTC, ISO 8601 to the second,
- ``machine``: a fingerprint (CPU model, cores, Python, torch/onnxruntime versions where importable),
- ``state``: how busy the machine was: ``label`` (``quiet``, ``loaded`` or ``unknown``), ``source`` (``given``
  with ``--state``, ``bench`` where the bench knows, e.g. it ran a load beside itself, else ``none``), the load
  average at the end, and whatever the bench measured of the device's variability (e.g. a reference's spread),
- ``figures``: the headline figures (a flat dict), optional ``rows`` (a list of dicts) and ``notes``.

Benches run as ``python bench/X.py``, so this folder is on ``sys.path`` and ``from record import ...`` works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
STATES = ("quiet", "loaded", "unknown")


def add_state_argument(parser: argparse.ArgumentParser) -> None:
    """``--state``: what the person running the bench knows of the machine's load (recorded with the figures)."""
    parser.add_argument("--state", choices=STATES, default=None,
                        help="the machine's state during the run, recorded with the result (default: what the "
                             "bench measured itself, else unknown)")
    parser.add_argument("--no-record", action="store_true", help="do not write a result file under bench/results/")


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine's fingerprint: what a figure is only valid for."""
    info: dict[str, Any] = {"cpu_model": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    for name in ("torch", "onnxruntime"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        info[name] = getattr(module, "__version__", None)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_state(given: str | None = None, *, bench_label: str | None = None, **measured: Any) -> dict[str, Any]:
    """The state record: the label given with ``--state`` wins over the bench's own, else ``unknown``."""
    label, source = (given, "given") if given else (bench_label, "bench") if bench_label else ("unknown", "none")
    state: dict[str, Any] = {"label": label, "source": source}
    try:
        state["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    state.update({k: v for k, v in measured.items() if v is not None})
    return state


def write_result(bench: str, figures: dict[str, Any], *, state: dict[str, Any] | None = None,
                 rows: list[dict[str, Any]] | None = None, notes: str | None = None,
                 args: argparse.Namespace | None = None, results: Path = RESULTS) -> Path | None:
    """Write ``results/<bench>/<UTC date-time>_<commit>.json`` and return its path (None with ``--no-record``)."""
    if args is not None and getattr(args, "no_record", False):
        return None
    if state is None:
        state = machine_state(getattr(args, "state", None) if args is not None else None)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    commit = _commit()
    doc: dict[str, Any] = {
        "bench": bench,
        "command": shlex.join(["python", *sys.argv]) if sys.argv and sys.argv[0] else None,
        "commit": commit,
        "date": now.isoformat().replace("+00:00", "Z"),
        "machine": machine(),
        "state": state,
        "figures": figures,
    }
    if rows is not None:
        doc["rows"] = rows
    if notes:
        doc["notes"] = notes
    folder = results / bench
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now.strftime('%Y-%m-%dT%H%M%SZ')}_{commit or 'nogit'}.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"result recorded in {path}")
    return path
