"""Jobs: a group of queued measurements (a table build) with progress, and the bounded registry that finds them.

A :class:`Job` follows its tasks' futures for ``GET /v1/jobs/{id}``. :class:`JobRegistry` keeps jobs in
memory for that endpoint and forgets finished ones after a time-to-live, and the oldest finished ones beyond a
maximum count, so a long-running server's registry stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "JobRegistry"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """A group of queued measurements (a table build) with progress for ``GET /v1/jobs/{id}``.

    A failing entry does not stop the others (they are stored, so a retry measures only what failed); the
    job ends ``failed`` with the first error once every entry has ended, ``done`` otherwise. A cancelled job
    (:meth:`cancel`) shows ``cancelled`` at once; its steps not started are dropped, what was stored stays.
    The error served is the entry, a reason code and a request id; the exception itself is logged under that id.
    """

    kind: str
    total: int
    done: int = 0
    state: str = "queued"
    error: str | None = None
    reason: str | None = None  # of the first failure: a code such as timeout, crash, error
    request_id: str | None = None  # the first failure's details are logged under it
    params: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    finished_at: float | None = None  # time.monotonic() when it ended
    futures: list[tuple[str, Future]] = field(default_factory=list, repr=False)
    _remaining: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    on_finish: Callable[[Job], None] | None = field(default=None, repr=False)
    on_cancel: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def cancel(self) -> bool:
        """Cancel the job (``False`` when it had ended already): its steps not started are dropped."""
        with self._lock:
            if self.finished:
                return False
            self.state = "cancelled"
            if self._remaining == 0 and self.finished_at is None:
                self.finished_at = time.monotonic()
        if self.on_cancel is not None:
            self.on_cancel(self)
        return True

    def mark_running(self) -> None:
        with self._lock:
            if self.state == "queued":
                self.state = "running"

    def fail_with(self, name: str, exc: BaseException) -> None:
        """Record ``name``'s failure as the job's error (the first one wins), sanitised; the job ends ``failed``."""
        with self._lock:
            if self.error is None:
                self._record_failure(name, exc)

    def fail(self, error: str) -> None:
        """Record ``error`` as the job's error (the first one wins); the job ends ``failed``."""
        with self._lock:
            if self.error is None:
                self.error = error

    def track(self, futures: list[tuple[str, Future]]) -> None:
        """Follow ``futures`` (name, future); the job ends when all have ended."""
        with self._lock:
            self._remaining = len(futures)
            self.futures = list(futures)
        if not futures:
            self._finish()
            return
        for name, future in futures:
            future.add_done_callback(lambda fut, name=name: self._one_done(name, fut))

    def _one_done(self, name: str, future: Future) -> None:
        with self._lock:
            self._remaining -= 1
            remaining = self._remaining
            if future.cancelled():
                if self.error is None and self.state != "cancelled":
                    self.error = f"{name}: cancelled"
            elif future.exception() is not None:
                if self.error is None:  # the job ends 'failed' once its other entries have ended
                    self._record_failure(name, future.exception())
            else:
                self.done += 1
                if self.state == "queued":
                    self.state = "running"
        if remaining == 0:
            self._finish()

    def _record_failure(self, name: str, exc: BaseException | None) -> None:
        """Keep a reason code and a request id for clients; the exception's text (SQL, paths) goes to the log."""
        self.reason = str(getattr(exc, "reason", None) or getattr(exc, "error_type", None) or "error")
        self.request_id = uuid.uuid4().hex[:16]
        self.error = f"{name}: {self.reason}; details in the server log under request id {self.request_id}"
        log.error("job %s: %s failed (request id %s)", self.id, name, self.request_id, exc_info=exc)

    def _finish(self) -> None:
        with self._lock:
            if self.state not in ("failed", "cancelled"):
                self.state = "failed" if self.error else "done"
            self.finished_at = time.monotonic()
        if self.on_finish is not None:
            self.on_finish(self)


class JobRegistry:
    """The jobs of this process by id; finished jobs expire after ``ttl_s``, and beyond ``max_jobs``."""

    def __init__(self, max_jobs: int = 1000, ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self.clock = clock
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._expire()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire()
            return self._jobs.get(job_id)

    def active(self) -> int:
        """Jobs not finished."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if not job.finished)

    def __len__(self) -> int:
        return len(self._jobs)

    def snapshot(self) -> list[Job]:
        """The jobs kept now (running and recently finished), oldest first."""
        with self._lock:
            self._expire()
            return list(self._jobs.values())

    def _expire(self) -> None:
        now = self.clock()
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in finished:
            if now - job.finished_at > self.ttl_s:  # type: ignore[operator]
                self._jobs.pop(job.id, None)
        excess = len(self._jobs) - self.max_jobs
        for job in sorted((j for j in finished if j.id in self._jobs), key=lambda j: j.finished_at)[:max(0, excess)]:
            self._jobs.pop(job.id, None)
