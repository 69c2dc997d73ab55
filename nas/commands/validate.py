"""``nas validate``: top-1/top-5 of a network on a data set's val split, and optionally its measured latency; or,
with ``--timm NAME`` or ``--onnx FILE``, the latency server's verdict for any model (no data, no checkpoint)."""

from __future__ import annotations

import argparse
import itertools

from nas.commands._json_answer import emit_json
from nas.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="top-1/top-5 of a network (and its latency from a latency server)", description=__doc__
    )
    p.add_argument("data", nargs="?", default="", help="'digits', 'synthetic' or an ImageFolder root with val/")
    p.add_argument("--arch", default="", help="architecture string (default: the one the checkpoint records)")
    p.add_argument("--checkpoint", default="", help="a heaviest/child checkpoint, or a supernet one with --arch")
    p.add_argument("--timm", default="", metavar="NAME",
                   help="measure this timm model (random weights) on --latency-endpoint instead of a checkpoint")
    p.add_argument("--onnx", default="", metavar="FILE",
                   help="upload this ONNX file to --latency-endpoint and measure it instead of a checkpoint")
    p.add_argument("--confidence", type=float, default=0.95, help="the verdict's confidence (default %(default)s)")
    p.add_argument("--profile", action="store_true", help="with --timm/--onnx: ONNX Runtime's top operators")
    p.add_argument("--resolution", type=int, default=32, help="input size (default %(default)s)")
    p.add_argument("-b", "--batch-size", type=int, default=128)
    p.add_argument("-j", "--workers", type=int, default=0)
    p.add_argument("--no-ema", dest="use_ema", action="store_false", help="use the raw weights, not the EMA copy")
    p.add_argument(
        "--bn-recal-batches",
        type=int,
        default=10,
        help="a child sliced from a supernet: re-estimate its BN statistics on this many training "
        "batches first (0: keep the supernet's mixed statistics)",
    )
    p.add_argument("--latency-endpoint", default="", help="latency server URL; measures the network there")
    p.add_argument("--latency-resolution", type=int, default=224, help="input size of the latency measurement")
    p.add_argument(
        "--json", nargs="?", const="-", default=None, metavar="PATH", help="print one JSON object (or write it to PATH)"
    )
    p.set_defaults(func=run)


def measure_latency_ms(endpoint: str, arch: str, resolution: int) -> float:
    """Median latency (ms) of a whole network measured by a latency server (ONNX Runtime, batch 1, 1 thread)."""
    from nas.latency.client import LatencyClient
    from nas.latency.table import LatencyTableError

    try:
        with LatencyClient(endpoint) as client:
            answer = client.measure_network(arch, resolution=resolution, backend="onnxruntime", batch_size=1,
                                            threads=1)
    except LatencyTableError as exc:
        raise UserError(f"latency endpoint {endpoint}: {exc}") from None
    return answer.measured.median_ms


def run(args: argparse.Namespace) -> int:
    if args.timm or args.onnx:
        from nas.commands.validate_model import run_model

        return run_model(args)
    if not args.checkpoint or not args.data:
        raise UserError("nas validate needs DATA and --checkpoint (or --timm NAME / --onnx FILE with "
                        "--latency-endpoint)")
    import torch
    from torch.utils.data import DataLoader

    from nas.data import build_dataset
    from nas.training import evaluate_classifier, load_network
    from nas.training.distributed import DistInfo

    try:
        net, arch, ckpt = load_network(args.checkpoint, args.arch or None, use_ema=args.use_ema)
        val = build_dataset(args.data, "val", args.resolution, train_transforms=False)
        recal = args.bn_recal_batches if ckpt.get("kind") == "supernet" else 0
        if recal > 0:
            train = build_dataset(args.data, "train", args.resolution, train_transforms=False)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if net.num_classes != getattr(val, "num_classes", net.num_classes):
        raise UserError(f"the checkpoint has {net.num_classes} classes, the data {val.num_classes}")
    loader = DataLoader(val, batch_size=args.batch_size, num_workers=args.workers)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device)
    if recal > 0:
        from nas.training import recalibrate_bn

        recal_loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
        recalibrate_bn(net, (x for x, _ in itertools.islice(recal_loader, recal)), device)
    metrics = evaluate_classifier(net.to(device), loader, DistInfo(device=device))
    out = {
        "arch": arch,
        "checkpoint": args.checkpoint,
        "data": args.data,
        "resolution": args.resolution,
        "images": len(val),
        "bn_recalibrated_batches": recal,
        "num_classes": net.num_classes,
        "top1": round(metrics["top1"], 3),
        "top5": round(metrics["top5"], 3),
        "loss": round(metrics["loss"], 5),
        "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 4),
    }
    if args.latency_endpoint:
        out["latency_ms"] = measure_latency_ms(args.latency_endpoint, arch, args.latency_resolution)
        out["latency_resolution"] = args.latency_resolution
    if not emit_json(args.json, out):
        print(
            f"top-1 {out['top1']:.2f}  top-5 {out['top5']:.2f}  loss {out['loss']:.4f}  on {out['images']} images "
            f"({out['params_m']} M parameters)"
        )
        if "latency_ms" in out:
            print(f"latency {out['latency_ms']:.3f} ms (onnxruntime, batch 1, 1 thread, {args.latency_resolution} px)")
    return 0
