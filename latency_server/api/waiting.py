"""Waiting for queued measurements on behalf of a request, and letting go when its client disconnects.

A request that waits for queued measurements also listens for its client's disconnect. If the client goes first,
the request releases its futures (:meth:`~latency_server.worker.queue.MeasurementQueue.release`): a task nobody waits
for any more is not started. The asyncio side never cancels a measurement's future itself, because other
requests may be waiting for the same (merged) task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from starlette.requests import Request

from latency_server.errors import RequestAbandoned
from latency_server.worker.queue import MeasurementQueue

__all__ = ["results_or_release"]

T = TypeVar("T")


def _awaitable(future: Future) -> asyncio.Future:
    """An asyncio future that follows ``future`` (cancelling it does not cancel ``future``)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future = loop.create_future()

    def copy(source: Future) -> None:
        if out.done():
            return
        if source.cancelled():
            out.set_exception(RequestAbandoned("the measurement was cancelled"))
        elif source.exception() is not None:
            out.set_exception(source.exception())  # type: ignore[arg-type]
        else:
            out.set_result(source.result())

    future.add_done_callback(lambda source: loop.call_soon_threadsafe(copy, source))
    return out


async def _disconnected(request: Request) -> None:
    """Return when the client has disconnected (the request's body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def results_or_release(request: Request, queue: MeasurementQueue, items: Sequence[T | Future]) -> list[T]:
    """Each item's value, waiting for the futures among them; the first failure is raised.

    If the client disconnects first, or one measurement fails, the futures still pending are released.
    """
    futures = [item for item in items if isinstance(item, Future)]
    if not futures:
        return list(items)  # type: ignore[arg-type]
    waiting = asyncio.gather(*(_awaitable(f) for f in futures))
    disconnect = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiting, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnect.cancel()
    if waiting not in done:
        waiting.cancel()
        for future in futures:
            queue.release(future)
        raise RequestAbandoned("the client disconnected")
    try:
        values = iter(waiting.result())
    except BaseException:
        for future in futures:
            queue.release(future)
        raise
    out: list[Any] = [next(values) if isinstance(item, Future) else item for item in items]
    return out
