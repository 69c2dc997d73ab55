"""``nas validate --timm NAME`` / ``--onnx FILE``: the latency server's verdict for a model outside the search space.

Not a sub-command of its own (no ``register``): :mod:`nas.commands.validate` hands these options here.
"""

from __future__ import annotations

import argparse

from nas.commands._json_answer import emit_json
from nas.errors import UserError

__all__ = ["run_model"]


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


def run_model(args: argparse.Namespace) -> int:
    """Measure ``--timm`` or ``--onnx`` on ``--latency-endpoint`` and print the verdict (or ``--json``)."""
    from nas.latency.client import LatencyClient
    from nas.latency.table import LatencyTableError

    if args.timm and args.onnx:
        raise UserError("give one of --timm and --onnx")
    if not args.latency_endpoint:
        raise UserError("--timm/--onnx measure on a latency server: give --latency-endpoint URL")
    try:
        with LatencyClient(args.latency_endpoint) as client:
            answer = client.measure_model(timm=args.timm or None, onnx=args.onnx or None,
                                          resolution=args.latency_resolution, confidence=args.confidence,
                                          profile=args.profile)
    except LatencyTableError as exc:
        raise UserError(f"latency endpoint {args.latency_endpoint}: {exc}") from None
    out = answer.model_dump(mode="json")
    if emit_json(args.json, out):
        return 0
    print(f"{answer.model} at {answer.resolution} px: {answer.parameters / 1e6:.3f} M parameters, "
          f"{answer.macs / 1e6:.1f} M MACs, peak memory {_mb(answer.peak_memory_bytes)}"
          + (" (stored answer)" if answer.cached else ""))
    print(f"latency {answer.measured.median_ms:.3f} ms (onnxruntime, batch 1, 1 thread, {len(answer.rounds)} rounds)")
    if answer.verdict is not None:
        v = answer.verdict
        print(f"verdict: central {v.central_ms:.3f} ms, {100 * v.confidence:g} % upper bound {v.upper_ms:.3f} ms")
    for op in answer.profile or []:
        print(f"  {op.mean_ms:8.3f} ms  {op.op_type:<16} {op.name}")
    return 0
