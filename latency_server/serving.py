"""Serving the app with uvicorn and a bounded, graceful shutdown.

On SIGTERM or Ctrl-C the server stops accepting connections and, at once, cancels the measurements that have
not started, so the requests waiting for them answer 503 instead of holding the shutdown; the running
measurement may finish within ``LATENCY_SERVER_SHUTDOWN_TIMEOUT_S``, then the worker is killed. A table build
cut short resumes on the next start from the entries already stored.
"""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from latency_server.config import Settings

__all__ = ["serve"]


class _Server(uvicorn.Server):
    """uvicorn, telling the service to cancel pending work as soon as a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        service = getattr(self._app.state, "service", None)
        if service is not None and not self.should_exit:
            # not in the signal handler itself: it may have interrupted a thread holding the queue's lock
            threading.Thread(target=service.begin_stop, name="begin-stop", daemon=True).start()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, settings: Settings) -> None:
    """Run ``app`` on ``settings.host:settings.port`` until a shutdown signal, then stop within the timeout."""
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)))
    _Server(config, app).run()
