"""Progress bars of the command line for work a latency server does, such as a table build.

tqdm is imported here, when a bar is drawn, so :mod:`nas.latency.client` reports progress through a plain callback and
needs no progress-bar library.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nas.latency.client import ProgressFn
from shared.api_schemas import JobStatus

__all__ = ["table_build_bar"]


@contextmanager
def table_build_bar(*, enabled: bool = True) -> Iterator[ProgressFn]:
    """A callback for :meth:`nas.latency.client.LatencyClient.wait_for_table` that draws the build as a bar of blocks
    measured (created at the first status, closed on exit); ``enabled=False`` draws nothing."""
    from tqdm import tqdm

    bar: Any = None

    def update(status: JobStatus) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=status.total or None, desc="latency table", unit="block", disable=not enabled)
        if status.total and bar.total != status.total:
            bar.total = status.total
        bar.n = status.done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
