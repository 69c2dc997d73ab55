"""The architecture search under a hard latency limit: BCFW over option and depth probabilities, the final steps
that turn them into one network under the limit, and the measured guarantee on a device.

Modules, from pure to wired: :mod:`~nas.search.lmo` (the exact LP oracle) and :mod:`~nas.search.multi_lmo` (the
same with one latency row per target of a fleet), :mod:`~nas.latency.expected_latency`
(the bilinear latency model), :mod:`~nas.search.start` (the maximum-entropy start), :mod:`~nas.search.discretize`
(the exact best network under the limit for an additive score), :mod:`~nas.search.bcfw` (the optimizer and the loss
model its averaged gradients fit), :mod:`~nas.search.finalize` (the search's final objective and its optimum under
a limit), :mod:`~nas.search.gradients` (held-out loss gradients from a frozen supernet;
needs torch), :mod:`~nas.search.result` (settings and results), :mod:`~nas.search.driver` (the search loop),
:mod:`~nas.search.guarantee` (measure and re-run), :mod:`~nas.search.fleet` (targets, their specs and joint
feasibility), :mod:`~nas.search.fleet_guarantee` (every target's verdict), :mod:`~nas.search.outputs` (result.json,
CSV, plot, a sweep's frontier) and
:mod:`~nas.search.run` (what ``nas search`` does). Importing this package imports neither torch nor matplotlib.
"""

from nas.latency.expected_latency import LatencyModel, LatencyModelError
from nas.search.bcfw import BCFW, BCFWConfig
from nas.search.discretize import DiscretizationError, NetworkScore, best_network
from nas.search.driver import GradientFn, Gradients, refinalize, search
from nas.search.finalize import Finalization, finalize
from nas.search.fleet import FleetInfeasibleError, Target, check_fleet
from nas.search.fleet_guarantee import fleet_guarantee
from nas.search.guarantee import measured_guarantee
from nas.search.latency_limit import LatencyLimitError, check_limit
from nas.search.outputs import write_outputs
from nas.search.result import SearchResult, SearchSettings, TrajectoryRow
from nas.search.run import run_search
from nas.search.start import max_entropy_start

__all__ = [
    "BCFW",
    "BCFWConfig",
    "DiscretizationError",
    "Finalization",
    "FleetInfeasibleError",
    "GradientFn",
    "Gradients",
    "LatencyLimitError",
    "LatencyModel",
    "LatencyModelError",
    "NetworkScore",
    "SearchResult",
    "SearchSettings",
    "Target",
    "TrajectoryRow",
    "best_network",
    "check_fleet",
    "check_limit",
    "finalize",
    "fleet_guarantee",
    "max_entropy_start",
    "measured_guarantee",
    "refinalize",
    "run_search",
    "search",
    "write_outputs",
]
