"""The LP vertex of one block under every target's row, and the beta block's floored vertex.

A depth that the first steps' vertices drop is never run again, so its blocks' estimates rest on a handful of
runs, and the final choice uses them. The floored vertex keeps a small mass on every depth: the floor on every
depth plus the rest of the mass on the exact vertex of the LP whose room is what the floor leaves, so it meets every
row as the plain vertex does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas.search.lmo import InfeasibleError, solve_mck_lp
from nas.search.multi_lmo import solve_multi_lp

__all__ = ["FLOOR_ROOM_SHARE", "floored_vertex", "lp_vertex"]

#: the share of a beta step's latency room (above the lightest depths) that the depth floor may take at most; the
#: rest stays the LP's to spend
FLOOR_ROOM_SHARE = 0.5


def lp_vertex(c: np.ndarray, rows: list[np.ndarray], room: list[float]) -> tuple[np.ndarray, float]:
    """The exact LP vertex of one block under every target's row, and the constraints' total price (one row takes
    the one-row oracle, its fast path)."""
    if len(rows) == 1:
        res = solve_mck_lp(c, rows[0], room[0])
    else:
        res = solve_multi_lp(c, np.stack(rows), room)
    return res.x, res.multiplier


#: an LP oracle: (objective, rows, room) -> (vertex, price)
Oracle = Callable[[np.ndarray, list[np.ndarray], list[float]], tuple[np.ndarray, float]]


def floored_vertex(c: np.ndarray, rows: list[np.ndarray], room: list[float], floor: float,
                   oracle: Oracle = lp_vertex) -> tuple[np.ndarray, float]:
    """The beta LP's vertex with the depth floor: ``f`` on every depth plus ``1 - nd f`` times the exact vertex of
    the LP whose room is what the floor leaves (``(room - f sum(row)) / (1 - nd f)``); and the constraints' price.

    ``f`` is ``floor``, lowered where it would take more than :data:`FLOOR_ROOM_SHARE` of a row's room above its
    lightest depths (at a limit near the table's minimum the floor fades to nothing). Where several rows together
    leave the floored LP no point, the plain vertex is taken. ``oracle`` solves each LP (:func:`lp_vertex`).
    """
    nd = c.shape[1]
    for row, r in zip(rows, room, strict=True):
        lightest = float(np.min(row, axis=1).sum())
        span = float(row.sum()) - nd * lightest  # what each unit of floor costs above the lightest depths
        if span > 0.0:
            floor = min(floor, FLOOR_ROOM_SHARE * max(r - lightest, 0.0) / span)
    if floor <= 0.0:
        return oracle(c, rows, room)
    keep = 1.0 - nd * floor
    left = [(r - floor * float(row.sum())) / keep for row, r in zip(rows, room, strict=True)]
    try:
        x, price = oracle(c, rows, left)
    except InfeasibleError:
        return oracle(c, rows, room)
    return floor + keep * x, price
