"""The architecture search under a hard latency limit: BCFW over option and depth probabilities, the final steps
that turn them into one network under the limit, and the measured guarantee on a device.

Modules, from pure to wired: :mod:`~nas.search.lmo` (the exact LP oracle), :mod:`~nas.search.expected_latency`
(the bilinear latency model), :mod:`~nas.search.bcfw` (the optimizer), :mod:`~nas.search.finalize` (sparsify,
discretise, repair, fill the slack), :mod:`~nas.search.gradients` (held-out loss gradients from a frozen supernet;
needs torch), :mod:`~nas.search.result` (settings and results), :mod:`~nas.search.driver` (the search loop),
:mod:`~nas.search.guarantee` (measure and re-run), :mod:`~nas.search.outputs` (result.json, CSV, plot) and
:mod:`~nas.search.run` (what ``nas search`` does). Importing this package imports neither torch nor matplotlib.
"""

from nas.search.bcfw import BCFW, BCFWConfig, LatencyLimitError, check_limit
from nas.search.driver import GradientFn, Gradients, refinalize, search
from nas.search.expected_latency import LatencyModel, LatencyModelError
from nas.search.finalize import Finalization, finalize
from nas.search.guarantee import measured_guarantee
from nas.search.outputs import write_outputs
from nas.search.result import SearchResult, SearchSettings, TrajectoryRow
from nas.search.run import run_search

__all__ = [
    "BCFW",
    "BCFWConfig",
    "Finalization",
    "GradientFn",
    "Gradients",
    "LatencyLimitError",
    "LatencyModel",
    "LatencyModelError",
    "SearchResult",
    "SearchSettings",
    "TrajectoryRow",
    "check_limit",
    "finalize",
    "measured_guarantee",
    "refinalize",
    "run_search",
    "search",
    "write_outputs",
]
