"""``nas show``: print published architectures (or any arch string) with parameter counts and block tables."""

from __future__ import annotations

import argparse

from shared.arch_string import ArchStringError, parse_arch
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS, SearchSpaceError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print architectures with parameter counts and block tables")
    p.add_argument("--arch", help="an architecture string (default: the six published networks A-F)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.set_defaults(func=run)


def describe(arch_text: str, *, title: str, num_classes: int = 1000) -> str:
    """A block table of one network: stage, block, type, kernel, expansion, SE, channels, stride."""
    from shared.builders import build_network

    arch = parse_arch(arch_text)
    net = build_network(arch, num_classes=num_classes)
    params = sum(p.numel() for p in net.parameters())
    lines = [
        f"{title}: {params / 1e6:.3f} M parameters",
        f"  {arch_text}",
        "  stage block type  k  exp  se    out  stride act",
    ]
    for s, stage in enumerate(arch):
        for j, b in enumerate(stage):
            lines.append(
                f"  {s:>5} {j:>5} {b.type:<4} {'.'.join(map(str, b.kernel)):>2} {b.exp_ratio or 1:>4g} "
                f"{b.se_ratio or 0:<5g} {b.out_chs or 0:>4} {b.stride:>6} {b.act_name or 'hard_swish'}"
            )
    try:
        depths = HARDCORENAS.choice_from_arch(arch).depths
        lines.append(f"  in the HardCoRe-NAS space; depths per searchable stage: {depths}")
    except SearchSpaceError:
        lines.append("  not in the default HardCoRe-NAS space")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from nas.errors import UserError

    try:
        if args.arch:
            print(describe(args.arch, title="architecture", num_classes=args.num_classes))
            return 0
        for name, pub in PUBLISHED.items():
            print(
                describe(
                    pub.arch,
                    title=f"HardCoRe-NAS {name} (published {pub.latency_ms} ms on Xeon, top-1 {pub.top1_green}%)",
                    num_classes=args.num_classes,
                )
            )
            print()
    except ArchStringError as exc:
        raise UserError(f"bad --arch: {exc}") from None
    return 0
