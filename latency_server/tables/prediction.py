"""Predicting a network's latency from a table whose entries are all stored.

This module owns :class:`TableView` (a table's raw medians, its metadata and the correction read back from
that metadata) and :class:`Prediction` (the naive sum of a network's entries and the corrected figure), and
the arithmetic between them. It reads nothing itself: the table module builds the view from the store, and
drift compensation against the reference network happens where the network is measured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latency_server.store.models import BlockMeasurement
from latency_server.tables.correction import Correction, CorrectionError
from shared.arch_string import ArchDef
from shared.block_key import BlockKey
from shared.search_space import ArchChoice, SearchSpace, SearchSpaceError

__all__ = ["Prediction", "TableView", "choice_in", "correction_of", "predict"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """A table's prediction of one network (drift compensation is applied by the caller)."""

    naive_ms: float  # fixed parts plus raw block medians
    corrected_ms: float  # with the table's fitted correction (= naive_ms without one)
    reference_ms: float | None  # the reference network's latency when the table was built


@dataclass(frozen=True)
class TableView:
    """A table with every entry stored, as predictions use it: raw medians, its metadata, its correction."""

    medians: dict[str, float]  # key -> median_ms of every entry, fixed parts included
    fixed_raw_ms: float  # sum of the fixed parts' medians
    meta: dict[str, Any]
    correction: Correction | None

    @classmethod
    def from_rows(
        cls, rows: Mapping[str, BlockMeasurement], fixed_keys: Mapping[str, BlockKey], searchable: list[BlockKey],
        meta: dict[str, Any],
    ) -> TableView:
        """The view of the stored ``rows`` of every entry of a table, with the table's ``meta``."""
        medians = {str(k): rows[str(k)].median_ms for k in list(fixed_keys.values()) + searchable}
        return cls(medians, sum(medians[str(k)] for k in fixed_keys.values()), meta, correction_of(meta))

    @property
    def reference_ms(self) -> float | None:
        """The reference network's latency when the table was built (``None`` before calibration)."""
        ref = self.meta.get("reference") or {}
        return ref.get("median_ms")


def choice_in(space: SearchSpace, arch: ArchDef, resolution: int) -> ArchChoice | None:
    """``arch`` as a choice of ``space`` when it is one and ``resolution`` is valid there, else ``None``."""
    try:
        choice = space.choice_from_arch(arch)
        space.check_resolution(resolution)
    except SearchSpaceError:
        return None
    return choice


def predict(view: TableView, space: SearchSpace, choice: ArchChoice, resolution: int) -> Prediction:
    """The view's naive and corrected prediction of the network ``choice`` of ``space``."""
    pairs = [(k, view.medians[str(k)]) for s, stage in enumerate(choice.options) for j, o in enumerate(stage)
             for k in (space.block_key(s, j, o, resolution),)]
    naive = view.fixed_raw_ms + sum(t for _, t in pairs)
    corrected = naive if view.correction is None else view.correction.predict_ms(view.fixed_raw_ms, pairs)
    return Prediction(naive, corrected, view.reference_ms)


def correction_of(meta: dict[str, Any]) -> Correction | None:
    """The correction stored in a table's metadata (``None`` when absent or unreadable)."""
    data = meta.get("correction")
    if not data:
        return None
    try:
        return Correction.from_json(data)
    except (CorrectionError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring a stored correction that cannot be read: %s", exc)
        return None
