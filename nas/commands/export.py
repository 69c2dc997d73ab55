"""``nas export``: a trained network as ONNX and as a timm-compatible state dict."""

from __future__ import annotations

import argparse

from nas.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a network as ONNX (and a timm state dict)", description=__doc__)
    p.add_argument("--arch", default="", help="architecture string (default: the one the checkpoint records)")
    p.add_argument("--checkpoint", required=True, help="a heaviest/child checkpoint, or a supernet one with --arch")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--state-dict", default="", help="also write a plain timm state dict (.pth)")
    p.add_argument("--resolution", type=int, default=224, help="input size of the exported graph")
    p.add_argument("--no-ema", dest="use_ema", action="store_false", help="use the raw weights, not the EMA copy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.models.export import export_checked_onnx, save_state_dict
    from nas.training import load_network

    try:
        net, arch, _ = load_network(args.checkpoint, args.arch or None, use_ema=args.use_ema)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.resolution < 32 or args.resolution % 32:
        raise UserError(f"--resolution must be a positive multiple of 32, got {args.resolution}")
    try:
        diff = export_checked_onnx(net, args.onnx, resolution=args.resolution)
        if args.state_dict:
            save_state_dict(net, args.state_dict)
    except OSError as exc:
        raise UserError(f"cannot write: {exc}") from None
    print(f"wrote {args.onnx} (ONNX Runtime vs PyTorch: max |difference| {diff:.2e})")
    if args.state_dict:
        print(f"wrote {args.state_dict} (timm MobileNetV3 state dict; build the network from: {arch})")
    return 0
