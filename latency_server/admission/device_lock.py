"""One measuring server per device: an OS lock on a file named after the device.

Two servers measuring on one device at once slow each other down and both store the polluted figures. The
first server to start takes an exclusive ``flock`` on the device's lock file (released by the kernel when its
process ends, however it ends) and measures; a later one finds the lock taken and serves read-only: stored
figures and complete tables, a 503 naming the holder for anything that would measure, and ``read_only`` in
``/healthz`` and ``/v1/stats``. The lock is taken when the application starts serving (its lifespan), through
:class:`DeviceLockMiddleware`, and released when it stops.

The lock file lives in ``LATENCY_SERVER_LOCK_DIR`` (default: beside the SQLite database, else ``/run/lock`` when
writable, else the system temp directory); containers of one device share it through a volume (the server image
puts it in ``/var/lib/latency-server``). A directory the server creates is owner-only (0700), the file 0600; a lock
path that is a link, or a file another user owns (planted to keep this server read-only, or to have it truncate
a file of theirs), is refused with an error at start rather than trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI, HTTPException
from sqlalchemy.engine import make_url

from latency_server.config import Settings
from latency_server.worker.fingerprint import cpu_model

__all__ = ["DeviceGuard", "DeviceLockMiddleware", "default_lock_dir", "default_lock_path", "device_status",
           "install_device_lock", "refuse_if_read_only"]

log = logging.getLogger(__name__)


def default_lock_dir(settings: Settings | None = None) -> Path:
    """``LATENCY_SERVER_LOCK_DIR``; else the SQLite database's directory; else ``/run/lock`` when writable; else
    the system temp directory."""
    if settings is not None and settings.lock_dir:
        return Path(settings.lock_dir).expanduser()
    if settings is not None:
        url = make_url(settings.database_url())
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).expanduser().parent
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK | os.X_OK):
        return run_lock
    return Path(tempfile.gettempdir())


def default_lock_path(directory: Path | None = None) -> Path:
    """``<directory>/hardcore-nas-latency-<device hash>.lock`` (default directory: the system temp directory): the
    same file for every server of this machine.

    The machine's CPU identifies it (a GPU's name would need torch, which the server process never imports; one
    measuring server per machine also keeps two GPUs' servers from sharing the CPU that drives them)."""
    host = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    text = json.dumps(host, sort_keys=True, default=str)
    directory = Path(tempfile.gettempdir()) if directory is None else directory
    return directory / f"hardcore-nas-latency-{hashlib.sha256(text.encode()).hexdigest()[:16]}.lock"


def _open_own(path: Path) -> IO[str]:
    """Open (creating owner-only) a lock file this user owns; refuse a link or a file another user owns."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    owner = os.fstat(fd).st_uid
    if owner != os.geteuid():
        os.close(fd)
        raise PermissionError(f"the device lock file {path} is owned by another user (uid {owner}); refusing to "
                              "use it: remove it, or set LATENCY_SERVER_LOCK_DIR to a directory of this user's")
    return os.fdopen(fd, "a+", encoding="utf-8")


class DeviceGuard:
    """The device lock of one server: taken at start, released at stop; ``read_only`` when another holds it."""

    def __init__(self, path: Path, identity: str = "") -> None:
        self.path = path
        self.identity = identity
        self.held = False
        self.holder: str | None = None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    @property
    def read_only(self) -> bool:
        """Whether this server may only serve stored figures (started, and another server holds the device)."""
        return self.holder is not None

    @property
    def reason(self) -> str | None:
        if self.holder is None:
            return None
        return (f"read-only: another latency server measures on this device ({self.holder}; lock file "
                f"{self.path}); this one serves stored figures only")

    def acquire(self) -> bool:
        """Take the lock if free (never waits); record who holds it otherwise."""
        with self._lock:
            if self.held:
                return True
            handle = _open_own(self.path)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                self.holder = handle.read(200).strip() or "holder unknown"
                handle.close()
                log.warning("%s", self.reason)
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}{' ' + self.identity if self.identity else ''}")
            handle.flush()
            self._file, self.held, self.holder = handle, True, None
            log.info("device lock %s taken: this server measures", self.path)
            return True

    def release(self) -> None:
        with self._lock:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()
            self._file, self.held, self.holder = None, False, None


Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class DeviceLockMiddleware:
    """Takes the guard's lock on lifespan start-up (before the app's own start-up) and releases it after shutdown."""

    def __init__(self, app: Callable[..., Awaitable[None]], guard: DeviceGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.guard.acquire()
            return message

        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed",
                                   "lifespan.startup.failed"):
                self.guard.release()
            await send(message)

        await self.app(scope, lifespan_receive, lifespan_send)


def install_device_lock(app: FastAPI, settings: Settings) -> DeviceGuard:
    """Give ``app`` its device guard (``app.state.device_guard``), active while the app serves."""
    path = (Path(settings.device_lock).expanduser() if settings.device_lock
            else default_lock_path(default_lock_dir(settings)))
    guard = DeviceGuard(path, identity=f"serving on {settings.host}:{settings.port}")
    app.state.device_guard = guard
    app.add_middleware(DeviceLockMiddleware, guard=guard)
    return guard


def device_status(app: Any) -> dict[str, Any]:
    """``read_only`` and ``read_only_reason`` for ``/healthz`` and ``/v1/stats``."""
    guard: DeviceGuard | None = getattr(app.state, "device_guard", None)
    return {"read_only": bool(guard and guard.read_only), "read_only_reason": guard.reason if guard else None}


def refuse_if_read_only(app: Any) -> None:
    """Raise the 503 a read-only server answers to anything that would measure."""
    guard: DeviceGuard | None = getattr(app.state, "device_guard", None)
    if guard is not None and guard.read_only:
        raise HTTPException(503, detail=[{"loc": [], "msg": guard.reason, "type": "read_only"}])
