"""Benchmark: the supernet's multipath training step time as a ratio to the heaviest network's step time.

Both take one SGD step (forward, CE loss, backward, update) on the same random batch; the supernet draws a
fresh sub-network per image every step. Steps alternate between the two models so drift on a shared machine
hits both alike; the median of each is reported.

    .venv/bin/python bench/bench_supernet.py --resolution 32 --batch-size 32 --steps 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from record import add_state_argument, write_result
from torch import nn

from nas.models.supernet import ElasticSupernet
from shared.builders import build_network
from shared.search_space import HARDCORENAS


def step_time_s(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    t0 = time.perf_counter()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    p.add_argument("--json", action="store_true")
    add_state_argument(p)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    heaviest = build_network(HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest()), num_classes=10).train()
    supernet = ElasticSupernet(num_classes=10).train()
    supernet.set_multipath(torch.Generator().manual_seed(0))
    x = torch.randn(args.batch_size, 3, args.resolution, args.resolution)
    y = torch.randint(0, 10, (args.batch_size,))
    opts = {m: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for m in (heaviest, supernet)}
    times: dict[nn.Module, list[float]] = {heaviest: [], supernet: []}
    for i in range(args.warmup + args.steps):
        for m in (heaviest, supernet):
            t = step_time_s(m, opts[m], x, y)
            if i >= args.warmup:
                times[m].append(t)
    h_ms = 1000 * statistics.median(times[heaviest])
    s_ms = 1000 * statistics.median(times[supernet])
    result = {
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "heaviest_step_ms": round(h_ms, 2),
        "multipath_step_ms": round(s_ms, 2),
        "ratio": round(s_ms / h_ms, 3),
        "target_ratio": 2.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"heaviest step {h_ms:.1f} ms, multipath supernet step {s_ms:.1f} ms: ratio {s_ms / h_ms:.2f}x "
              f"(target <= 2x; {args.resolution} px, batch {args.batch_size}, {torch.get_num_threads()} threads)")
    write_result("bench_supernet", result, args=args)


if __name__ == "__main__":
    main()
