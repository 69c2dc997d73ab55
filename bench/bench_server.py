"""Benchmark the latency server: cold build of a full table, then warm ``GET /v1/lut`` under concurrent clients.

Starts a real ``latency-server serve`` process on a fresh SQLite file (production measurement settings unless
overridden through LATENCY_SERVER_* variables), or uses ``--endpoint`` of a running server. Targets:
cold build of the 224 table (onnxruntime, 1 thread, batch 1) under 3 minutes on a 2-core machine; warm p99
under 50 ms with 16 concurrent clients.

    .venv/bin/python bench/bench_server.py [--resolution 224] [--clients 16] [--requests 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from record import add_state_argument, write_result

from nas.latency.client import LatencyClient
from nas.latency.local_server import LocalServer
from shared.api_schemas import JobStatus


def cold_build(url: str, params: dict, token: str | None) -> tuple[float, int]:
    """Seconds from the first ``GET /v1/lut`` to the 200 answer, and the entries measured."""
    start = time.perf_counter()
    shown = -1

    def report(job: JobStatus) -> None:
        nonlocal shown
        line = f"  build: {job.done}/{job.total} entries, {time.perf_counter() - start:.0f} s"
        if sys.stdout.isatty():
            print(f"\r{line}", end="", flush=True)
        elif job.done // 20 != shown // 20 or (job.done == job.total and job.done != shown):
            print(line, flush=True)
        shown = job.done

    with LatencyClient(url, token=token, timeout_s=60) as client:
        client.wait_for_table(**params, on_progress=report)
        elapsed = time.perf_counter() - start
        measured = client.stats().measurements
    if sys.stdout.isatty():
        print()
    return elapsed, measured


def warm_load(url: str, params: dict, headers: dict, clients: int, requests: int) -> np.ndarray:
    """Per-request latencies (ms) of ``clients`` threads each sending ``requests`` sequential GETs."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker() -> None:
        mine = []
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            client.get("/v1/lut", params=params).raise_for_status()  # connection set up
            barrier.wait()
            for _ in range(requests):
                t0 = time.perf_counter()
                resp = client.get("/v1/lut", params=params)
                mine.append((time.perf_counter() - t0) * 1000)
                assert resp.status_code == 200 and len(resp.json()["entries"]) > 0
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.asarray(latencies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="use a running server instead of starting one on a fresh database")
    parser.add_argument("--token", default=os.environ.get("LATENCY_SERVER_TOKEN"))
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50, help="sequential requests per client")
    parser.add_argument("--db", type=Path, help="SQLite file to use (kept; default: a fresh temporary file)")
    add_state_argument(parser)
    args = parser.parse_args(argv)

    params = {"space": "hardcorenas", "resolution": args.resolution, "backend": args.backend,
              "batch_size": args.batch_size, "threads": args.threads}
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-server-")
    try:
        if args.endpoint:
            url = args.endpoint.rstrip("/")
        else:
            db_path = args.db or Path(tmp.name) / "bench.db"
            env = {"LATENCY_SERVER_LOG_LEVEL": os.environ.get("LATENCY_SERVER_LOG_LEVEL", "warning")}
            proc = LocalServer(f"sqlite:///{db_path}", log_path=Path(tmp.name) / "server.log", env=env).start()
            url = proc.url
        with LatencyClient(url, token=args.token) as client:
            device = client.device(**{k: params[k] for k in ("backend", "batch_size", "threads")})
        hw = device.hardware
        print(f"device: {hw['cpu_model']} ({hw['cpu_count']} cores), fingerprint {device.fingerprint}")
        print(f"table: hardcorenas @ {args.resolution} px, {args.backend}, {args.threads} thread(s), "
              f"batch {args.batch_size}")
        build_s, measured = cold_build(url, params, args.token)
        print(f"cold build: {build_s:.1f} s ({measured} entries measured by this server)")
        single = warm_load(url, params, headers, 1, 200)
        print(f"warm GET /v1/lut, 1 client x 200 requests: p50 {np.median(single):.2f} ms, "
              f"p99 {np.percentile(single, 99):.2f} ms")
        lat = warm_load(url, params, headers, args.clients, args.requests)
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        print(f"warm GET /v1/lut, {args.clients} concurrent clients x {args.requests} requests: "
              f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {lat.max():.1f} ms")
        figures = {"resolution": args.resolution, "backend": args.backend, "cold_build_s": build_s,
                   "entries_measured": measured, "single_p50_ms": float(np.median(single)),
                   "single_p99_ms": float(np.percentile(single, 99)), "clients": args.clients,
                   "warm_p50_ms": float(p50), "warm_p90_ms": float(p90), "warm_p99_ms": float(p99),
                   "warm_max_ms": float(lat.max()), "target_p99_ms": 50}
    finally:
        if proc is not None:
            proc.stop()
        tmp.cleanup()
    write_result("bench_server", figures, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
