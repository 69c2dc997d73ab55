"""Do two builds of the same latency table on the same host agree?

Give two servers of the same device on *different* databases (e.g. two ``latency-server serve`` processes,
or one restarted on a fresh file); the tables are fetched (built) one after the other, never concurrently.
Each entry of build B is scaled by the drift ratio ``reference_A / reference_B`` (both tables store their
reference network's latency at build time) and compared with build A: median and worst relative difference,
raw and drift-compensated, for the block entries and for the corrected predictions of random networks.

    latency-server serve --port 8001 --db sqlite:///a.db &   # then, when A is built, on another file:
    latency-server serve --port 8002 --db sqlite:///b.db &
    python bench/table_reproducibility.py --endpoints http://127.0.0.1:8001 http://127.0.0.1:8002
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import add_state_argument, write_result

ROOT = Path(__file__).resolve().parents[1]

from latency_server.tables.correction import sample_choices  # noqa: E402
from nas.latency.client import LatencyClient  # noqa: E402
from nas.latency.table import LatencyTable  # noqa: E402
from shared.search_space import get_space  # noqa: E402


def _rel(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = 100 * np.abs(b - a) / a
    return {"median_pct": float(np.median(d)), "p90_pct": float(np.percentile(d, 90)), "worst_pct": float(d.max())}


def compare(a: LatencyTable, b: LatencyTable, *, networks: int = 200, seed: int = 3) -> dict[str, Any]:
    """Per-entry and per-network agreement of two builds, raw and after drift compensation."""
    ref_a = (a.meta.get("reference") or {}).get("median_ms")
    ref_b = (b.meta.get("reference") or {}).get("median_ms")
    ratio = ref_a / ref_b if ref_a and ref_b else 1.0
    keys = sorted(a.entries)
    ea = np.array([a.entries[k] for k in keys])
    eb = np.array([b.entries[k] for k in keys])
    space = get_space(a.space)
    ma, mb = a.model(space), b.model(space)
    choices = sample_choices(space, networks, seed)
    pa = np.array([ma.choice_latency_ms(c) for c in choices])
    pb = np.array([mb.choice_latency_ms(c) for c in choices])
    return {
        "reference_ms": {"a": ref_a, "b": ref_b, "drift_ratio_a_over_b": ratio},
        "entries": len(keys),
        "entries_raw": _rel(ea, eb),
        "entries_drift_compensated": _rel(ea, eb * ratio),
        "fixed_ms": {"a": a.fixed_ms, "b": b.fixed_ms, "b_compensated": b.fixed_ms * ratio},
        "networks": networks,
        "network_predictions_raw": _rel(pa, pb),
        "network_predictions_drift_compensated": _rel(pa, pb * ratio),
        "correction_a": (a.meta.get("correction") or {}).get("coefficients"),
        "correction_b": (b.meta.get("correction") or {}).get("coefficients"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoints", nargs=2, required=True, metavar="URL", help="two servers on different databases")
    p.add_argument("--token", default=None)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--networks", type=int, default=200, help="random networks whose predictions are compared")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "table_reproducibility.json"))
    add_state_argument(p)
    args = p.parse_args(argv)
    tables = []
    for url in args.endpoints:  # one after the other: builds must not share the CPU
        start = time.monotonic()
        with LatencyClient(url, token=args.token, timeout_s=3600) as client:
            tables.append(client.fetch_table(resolution=args.resolution, backend=args.backend,
                                             threads=args.threads))
        print(f"{url}: table ready in {time.monotonic() - start:.0f} s", flush=True)
    result = compare(tables[0], tables[1], networks=args.networks)
    result["settings"] = {"resolution": args.resolution, "backend": args.backend, "threads": args.threads,
                          "endpoints": args.endpoints}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    figures = {"resolution": args.resolution, "backend": args.backend, "entries": result["entries"],
               "entries_median_pct": result["entries_drift_compensated"]["median_pct"],
               "entries_worst_pct": result["entries_drift_compensated"]["worst_pct"],
               "networks": result["networks"],
               "networks_median_pct": result["network_predictions_drift_compensated"]["median_pct"],
               "networks_worst_pct": result["network_predictions_drift_compensated"]["worst_pct"]}
    write_result("table_reproducibility", figures, args=args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
