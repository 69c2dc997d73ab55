"""Other work on the device during a bench: a training process beside the latency server.

``steady``: the training process runs throughout (a machine with a training job beside it). ``bursty``: the same
process is stopped and resumed every ``period_s`` seconds (a shared machine whose load comes and goes), so the
device's speed changes within minutes, the condition under which a smoothed level lags and a bound drawn from a
quiet moment is tested. The process trains the heaviest network on digits with one thread: real work of the kind a
user's device sees, not a busy loop.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

PATTERNS = ("steady", "bursty")


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """``--load`` (run a training process beside the server) and ``--load-pattern`` / ``--load-period``."""
    parser.add_argument("--load", action="store_true", help="run a training process beside the server throughout")
    parser.add_argument("--load-pattern", choices=PATTERNS, default="steady",
                        help="steady: the load runs throughout; bursty: it stops and resumes every --load-period")
    parser.add_argument("--load-period", type=float, default=60.0, metavar="S",
                        help="seconds on, then as many off, for a bursty load (default 60)")


def describe(args: argparse.Namespace) -> str | None:
    """The load as recorded with a result: None without one."""
    if not args.load:
        return None
    return "steady" if args.load_pattern == "steady" else f"bursty, {args.load_period:g} s on / off"


@contextlib.contextmanager
def background_load(pattern: str | None, period_s: float = 60.0) -> Iterator[None]:
    """Run the load for the ``with`` block (nothing for ``pattern`` None)."""
    if pattern is None:
        yield
        return
    if pattern not in PATTERNS:
        raise ValueError(f"load pattern: expected one of {PATTERNS}, got {pattern!r}")
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen(
            [sys.executable, "-m", "nas", "train-heaviest", "digits", "--epochs", "1000", "--resolution", "32",
             "--threads", "1", "--no-progress", "--output", f"{tmp}/train"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = threading.Event()
        toggler = None
        if pattern == "bursty":
            toggler = threading.Thread(target=_toggle, args=(process.pid, period_s, stop), daemon=True)
            toggler.start()
        try:
            yield
        finally:
            stop.set()
            if toggler is not None:
                toggler.join()
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _toggle(pid: int, period_s: float, stop: threading.Event) -> None:
    """Stop and resume the process every ``period_s`` until ``stop`` is set."""
    running = True
    while not stop.wait(period_s):
        running = not running
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT if running else signal.SIGSTOP)
