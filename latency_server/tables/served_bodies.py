"""Complete tables as served: their serialised answers kept in memory, so a repeated ``GET /v1/lut`` is a lookup.

A complete table does not change, so its body stays valid until its metadata changes (a new fit) or the device's
fingerprints do; the builds forget it then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from shared.api_schemas import MeasureSettings

if TYPE_CHECKING:  # the builds hand the measurer in; only its fingerprints are read here
    from latency_server.admission.measurer import Measurer

__all__ = ["ServedBodies"]

#: serialised tables kept (a device serves a handful)
_BODIES_KEPT = 64


class ServedBodies:
    """The serialised complete tables of this process, keyed by (fingerprint, space, resolution)."""

    def __init__(self, measurer: Measurer) -> None:
        self.measurer = measurer
        self._bodies: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, measuring: MeasureSettings, space: str, resolution: int) -> bytes | None:
        """The serialised complete table if this process has served it before."""
        fp = self.measurer.known_fingerprint(measuring)
        if fp is None:
            return None
        return self._bodies.get((fp.id, space, resolution))

    def keep(self, fp_id: str, space: str, resolution: int, body: bytes) -> None:
        """Remember a serialised complete table for later requests."""
        with self._lock:
            self._bodies[(fp_id, space, resolution)] = body
            while len(self._bodies) > _BODIES_KEPT:
                self._bodies.popitem(last=False)

    def forget(self, fp_id: str, space: str, resolution: int) -> None:
        """Forget the serialised table (its metadata changed)."""
        with self._lock:
            self._bodies.pop((fp_id, space, resolution), None)

    def clear(self) -> None:
        """Forget every serialised table (the device's fingerprints changed)."""
        with self._lock:
            self._bodies.clear()
