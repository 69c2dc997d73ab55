"""``nas fleet status URL [URL ...]``: one table of a fleet of latency servers, one row per server.

Exit status: 0 when every server answered and is healthy, 1 when any is unreachable or unhealthy (so that a cron
job or a CI step can alert on it), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_HEALTHY, EXIT_SOME_DOWN = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="watch several latency servers at once")
    fleet = p.add_subparsers(dest="fleet_command", metavar="COMMAND", required=True)
    s = fleet.add_parser(
        "status",
        help="one row per server: health, device, software, queue, tables, drift, last verdict",
        description="Ask each latency server for its health, device, software versions, queue, tables (with the "
                    "drift since each was built) and last verdict, and print one table. Exit status 0 when every "
                    "server answered and is healthy, 1 when any is unreachable or unhealthy.",
    )
    s.add_argument("urls", nargs="+", metavar="URL", help="latency servers, e.g. http://10.0.0.5:8000")
    s.add_argument("--json", action="store_true", help="print the same data as JSON (a list, one object per server)")
    s.add_argument("--token", default=os.environ.get("LATENCY_SERVER_TOKEN"),
                   help="bearer token of the servers (default: env LATENCY_SERVER_TOKEN)")
    s.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for each answer (default 5)")
    s.set_defaults(func=run)


def _device(device: dict[str, Any]) -> str:
    model = device.get("gpu_model") or device.get("cpu_model") or "?"
    return f"{model}\n{device.get('cpu_count') or '?'} cores, {device.get('machine') or '?'}"


def _tables(tables: list[dict[str, Any]]) -> str:
    if not tables:
        return "none"
    lines = []
    for t in tables:
        drift = "building" if not t["complete"] else (
            "no drift reference" if t["drift_ratio"] is None else f"drift {100 * (t['drift_ratio'] - 1):+.1f} %")
        lines.append(f"{t['resolution']} px / {t['backend']} / {t['threads']} thr / batch {t['batch_size']}: {drift}")
    return "\n".join(lines)


def _verdict(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "none yet"
    return (f"{verdict['central_ms']:.3f} ms, bound {verdict['upper_ms']:.3f} ms at {100 * verdict['confidence']:.0f} %"
            f"\n{verdict['resolution']} px / {verdict['backend']}, {verdict['at'][:19].replace('T', ' ')}")


def _render(statuses: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="latency servers", show_lines=True)
    for column in ("server", "health", "device", "software", "queue", "tables (drift since build)", "last verdict"):
        table.add_column(column)
    for st in statuses:
        if not st.reachable:
            table.add_row(st.url, "[red]unreachable[/red]", st.error or "", "", "", "", "")
            continue
        health = "[green]ok[/green]" if st.health == "ok" else f"[red]{st.health}[/red]"
        health += f"\nworker {st.worker}" + ("\nread-only" if st.read_only else "")
        software = "\n".join(f"{k} {v}" for k, v in st.software.items())
        queue = f"{st.queue['depth']} / {st.queue['capacity']}"
        table.add_row(st.url, health, _device(st.device), software, queue, _tables(st.tables),
                      _verdict(st.last_verdict))
    Console(width=max(160, Console().width)).print(table)


def run(args: argparse.Namespace) -> int:
    from nas.latency.fleet_status import fleet_status

    statuses = fleet_status(args.urls, token=args.token, timeout_s=args.timeout)
    if args.json:
        json.dump([st.to_dict() for st in statuses], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _render(statuses)
    return EXIT_HEALTHY if all(st.healthy for st in statuses) else EXIT_SOME_DOWN
