"""The service's own exceptions, each with the HTTP answer it gets (status, ``Retry-After``, error type).

Bad input and over-budget requests are the requester's to fix (4xx). Everything else is a server-side fault
and answers 5xx: 503 with ``Retry-After`` where a retry can help (the worker is restarting, the database is
locked or unreachable, the server is stopping), 429 when the queue is full, 504 when a measurement ran over
its time limit, 500 when it ran over its memory limit, crashed the worker or raised. 5xx messages name what
failed and why, never an exception's text: that goes to the server log with its traceback.
"""

from __future__ import annotations

__all__ = [
    "DatabaseUnavailable",
    "OverBudget",
    "QueueFull",
    "RecentFailure",
    "RequestAbandoned",
    "ServerStopping",
    "ServiceError",
    "TaskError",
    "TaskFailed",
    "TaskKilled",
    "WorkerUnavailable",
]

Loc = tuple[str | int, ...]


class ServiceError(RuntimeError):
    """An error the REST layer answers as ``{"detail": [{"loc", "msg", "type"}]}`` with :attr:`status_code`."""

    status_code = 500
    error_type = "server_error"

    def __init_subclass__(cls, *, status: int | None = None, error_type: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.status_code = status or cls.status_code
        cls.error_type = error_type or cls.error_type

    def __init__(self, msg: str, *, loc: Loc = (), retry_after_s: float | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc = loc
        self.retry_after_s = retry_after_s


class OverBudget(ServiceError, status=422, error_type="over_budget"):
    """A request whose estimated cost exceeds a configured limit; refused before any work."""


class QueueFull(ServiceError, status=429, error_type="queue_full"):
    """The measurement queue holds as many tasks as it may."""


class WorkerUnavailable(ServiceError, status=503, error_type="worker_unavailable"):
    """The measurement worker is down or restarting."""


class DatabaseUnavailable(ServiceError, status=503, error_type="database_unavailable"):
    """The database is locked or unreachable."""


class ServerStopping(ServiceError, status=503, error_type="server_stopping"):
    """The server is shutting down; queued work was cancelled."""


class RequestAbandoned(ServiceError, status=503, error_type="request_abandoned"):
    """The client disconnected while its measurements were queued (nobody reads this answer)."""


class TaskFailed(ServiceError):
    """A measurement task that did not complete in the worker; ``reason`` says how."""

    reason = "error"

    def __init__(self, label: str, why: str, **kwargs: object) -> None:
        super().__init__(f"{label}: {why}", **kwargs)  # type: ignore[arg-type]
        self.label = label
        self.why = why


class TaskError(TaskFailed, error_type="measurement_error"):
    """The task raised in the worker (its type, message and traceback are logged, not answered)."""

    def __init__(self, label: str, exc_type: str, exc_message: str, traceback_text: str) -> None:
        super().__init__(label, f"the measurement raised {exc_type} (details in the server log)")
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback_text = traceback_text


class TaskKilled(TaskFailed):
    """The worker was killed over the task's time or memory limit, or died while running it."""

    def __init__(self, label: str, reason: str, why: str) -> None:
        super().__init__(label, why)
        self.reason = reason  # timeout, memory or crash
        self.status_code = 504 if reason == "timeout" else 500
        self.error_type = f"measurement_{reason}"


class RecentFailure(ServiceError):
    """Work that recently killed or crashed the worker, refused until its cool-down has passed."""

    def __init__(self, msg: str, *, status_code: int, error_type: str, retry_after_s: float, loc: Loc = ()) -> None:
        super().__init__(msg, loc=loc, retry_after_s=retry_after_s)
        self.status_code = status_code
        self.error_type = error_type
