"""Random networks whose table latency lies in a band ``[low, high]``: the baseline a search is compared with.

The reference distribution is uniform sampling (each stage's depth uniform, each block's option uniform)
*conditioned* on the band. Drawing it by rejection fails near the top of the feasible range, where almost no
uniform network lies (at 80 % of the range, none of tens of thousands). So each network is drawn by a random walk
instead: start from a uniform network, walk into the band by single changes that never move away from it, then
take ``mix_steps`` Metropolis steps inside it. A step proposes one change of the full state (a new depth for one
stage, or a new option for one of the 20 block positions, used or not) uniformly at random and accepts it iff the
latency stays in the band. The proposal is symmetric, so the walk's stationary distribution is uniform over the
full states in the band, and a network's probability is that of uniform sampling conditioned on the band. Every
network starts from its own uniform draw; networks are distinct, and each is checked against the exact table sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.latency.expected_latency import LatencyModel
from shared.search_space import ArchChoice

__all__ = ["BandError", "band_of_limit", "lowest_band_from", "sample_in_band",
           "sample_across_range"]

#: The share of the limit the comparison band spans: random networks lie in ``[(1 - BAND) T, T]``.
BAND = 0.05
#: Grid steps over the table's range when counting the networks in a band (each rounding at most half a step a block).
GRID_BINS = 4096


class BandError(ValueError):
    """A latency band that holds no network, or too few distinct ones for the request."""


def band_of_limit(limit_ms: float, width: float = BAND) -> tuple[float, float]:
    """The band ``[(1 - width) T, T]`` of random networks comparable with a search under ``T``."""
    return (1.0 - width) * limit_ms, limit_ms


@dataclass
class _State:
    """Options of every block position (used or not) and each stage's depth index."""

    options: np.ndarray  # [stages, positions] int
    depth_idx: np.ndarray  # [stages] int


class _Walker:
    def __init__(self, model: LatencyModel, low_ms: float, high_ms: float, rng: np.random.Generator):
        self.model, self.low, self.high, self.rng = model, low_ms, high_ms, rng
        self.num_s, self.num_j, self.num_o = model.block_ms.shape
        self.depths = np.array(model.depths)
        self.stage_idx = np.arange(self.num_s)[:, None]
        self.pos_idx = np.arange(self.num_j)[None, :]

    def uniform(self) -> _State:
        return _State(
            self.rng.integers(self.num_o, size=(self.num_s, self.num_j)),
            self.rng.integers(len(self.depths), size=self.num_s),
        )

    def latency(self, st: _State) -> float:
        used = self.pos_idx < self.depths[st.depth_idx][:, None]
        return float(self.model.fixed_ms + self.model.block_ms[self.stage_idx, self.pos_idx, st.options][used].sum())

    def distance(self, latency: float) -> float:
        return max(0.0, self.low - latency, latency - self.high)

    def propose(self, st: _State) -> _State:
        """One uniformly drawn single change of the full state (symmetric: the reverse has the same chance)."""
        options, depth_idx = st.options.copy(), st.depth_idx.copy()
        s = int(self.rng.integers(self.num_s))
        if len(self.depths) > 1 and self.rng.random() < 0.5:
            depth_idx[s] = (depth_idx[s] + self.rng.integers(1, len(self.depths))) % len(self.depths)
        else:
            j = int(self.rng.integers(self.num_j))
            options[s, j] = (options[s, j] + self.rng.integers(1, self.num_o)) % self.num_o
        return _State(options, depth_idx)

    def into_band(self, st: _State, max_steps: int) -> _State | None:
        """Single changes that never increase the distance to the band, until inside (None: not reached)."""
        dist = self.distance(self.latency(st))
        for _ in range(max_steps):
            if dist == 0.0:
                return st
            cand = self.propose(st)
            d = self.distance(self.latency(cand))
            if d <= dist:
                st, dist = cand, d
        return st if dist == 0.0 else None

    def mix(self, st: _State, steps: int) -> _State:
        """Metropolis steps with a uniform target on the band: accept iff the latency stays inside."""
        for _ in range(steps):
            cand = self.propose(st)
            if self.distance(self.latency(cand)) == 0.0:
                st = cand
        return st

    def choice(self, st: _State) -> ArchChoice:
        return ArchChoice(tuple(
            tuple(int(o) for o in st.options[s, : self.depths[st.depth_idx[s]]]) for s in range(self.num_s)
        ))


def sample_in_band(model: LatencyModel, low_ms: float, high_ms: float, count: int, *, seed: int = 0,
                   mix_steps: int = 300, max_walk_steps: int = 5000, max_attempts: int | None = None,
                   distinct: bool = True) -> list[tuple[ArchChoice, float]]:
    """``count`` networks with table latency in ``[low_ms, high_ms]`` and their latencies (ms), distinct unless
    ``distinct`` is false (then independent draws, repeats possible).

    See the module docstring for the distribution. Raises :class:`BandError` when the band lies outside the
    table's feasible range or ``max_attempts`` walks (default ``20 * count``) give fewer networks.
    """
    if count < 1:
        raise BandError(f"count must be positive, got {count}")
    if not low_ms <= high_ms:
        raise BandError(f"band: low {low_ms} ms is above high {high_ms} ms")
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    if high_ms < lo or low_ms > hi:
        raise BandError(f"band [{low_ms:.4g}, {high_ms:.4g}] ms lies outside the table's range [{lo:.4g}, {hi:.4g}] ms")
    walker = _Walker(model, low_ms, high_ms, np.random.default_rng(seed))
    attempts = max_attempts if max_attempts is not None else 20 * count
    found: list[tuple[ArchChoice, float]] = []
    seen: set[ArchChoice] = set()
    for _ in range(attempts):
        st = walker.into_band(walker.uniform(), max_walk_steps)
        if st is None:
            continue
        choice = walker.choice(walker.mix(st, mix_steps))
        latency = model.choice_latency_ms(choice)  # the exact sum decides, not the walk's running figure
        if low_ms <= latency <= high_ms and not (distinct and choice in seen):
            found.append((choice, latency))
            seen.add(choice)
        if len(found) == count:
            return found
    raise BandError(
        f"band [{low_ms:.4g}, {high_ms:.4g}] ms: only {len(found)} {'distinct ' if distinct else ''}networks in "
        f"{attempts} walks, {count} asked"
    )


def _padded_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(max(len(a), len(b)))
    out[: len(a)] += a
    out[: len(b)] += b
    return out


def _network_histogram(model: LatencyModel, bins: int) -> tuple[np.ndarray, float]:
    """How many distinct networks lie at each grid step of table latency above ``fixed_ms``, and the step (ms)."""
    step = model.max_latency_ms() / bins
    rounded = np.rint(model.block_ms / step).astype(np.int64)
    total = np.ones(1)
    for s in range(rounded.shape[0]):
        stage = np.zeros(1)
        prefix = np.ones(1)
        for j in range(rounded.shape[1]):
            one_block = np.bincount(rounded[s, j], minlength=1).astype(np.float64)
            prefix = np.convolve(prefix, one_block)
            if j + 1 in model.depths:
                stage = _padded_sum(stage, prefix)
        total = np.convolve(total, stage)
    return total, step


def _count_in(histogram: tuple[np.ndarray, float], fixed_ms: float, low_ms: float, high_ms: float) -> float:
    total, step = histogram
    first = max(0, int(np.ceil((low_ms - fixed_ms) / step)))
    last = min(len(total) - 1, int(np.floor((high_ms - fixed_ms) / step)))
    return float(total[first : last + 1].sum()) if last >= first else 0.0


def lowest_band_from(model: LatencyModel, from_ms: float, cap_ms: float, count: int, *, width: float = BAND,
                     seed: int = 0) -> tuple[tuple[float, float], list[tuple[ArchChoice, float]]]:
    """The lowest band ``[(1 - width) h, h]`` with ``from_ms <= h <= cap_ms`` that yields ``count`` distinct networks,
    and those networks: ``h`` rises from ``from_ms`` in steps of half the band's width.

    For a search tightened to the table's lightest corner, where the band under its own limit holds too few
    networks to rank among: the next heavier networks are the closest fair comparison (they have more latency to
    spend, never less). Raises :class:`BandError` when even ``cap_ms``'s band falls short.
    """
    if from_ms > cap_ms:
        raise BandError(f"band start {from_ms:.4g} ms is above its cap {cap_ms:.4g} ms")
    histogram = _network_histogram(model, GRID_BINS)  # one grid for every band the rise looks at
    high = from_ms
    while True:
        low, high = band_of_limit(min(high, cap_ms), width)
        # a walk only when the grid count says the band can hold the networks: each failed one costs many walks
        if high >= cap_ms or _count_in(histogram, model.fixed_ms, low, high) >= 2 * count:
            try:
                return (low, high), sample_in_band(model, low, high, count, seed=seed)
            except BandError:
                if high >= cap_ms:
                    raise
        high *= 1.0 + width / 2


def sample_across_range(model: LatencyModel, count: int, *, strata: int = 6, seed: int = 0,
                        low_share: float = 0.05, high_share: float = 0.9) -> list[tuple[ArchChoice, float]]:
    """``count`` networks spread over the table's feasible range: ``strata`` bands, each ``BAND`` of the range wide,
    centred evenly from ``low_share`` to ``high_share`` of it (its very ends hold too few networks), each holding
    ``count / strata`` networks (the first ones one more where it does not divide) drawn like
    :func:`sample_in_band`: whether accuracy follows latency across the range, not only within one band."""
    if count < strata or strata < 2:
        raise BandError(f"count {count} and strata {strata}: at least 2 strata and one network per stratum")
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    span = hi - lo
    found: list[tuple[ArchChoice, float]] = []
    for i in range(strata):
        centre = lo + span * (low_share + (high_share - low_share) * i / (strata - 1))
        found += sample_in_band(model, centre - BAND / 2 * span, centre + BAND / 2 * span,
                                count // strata + (1 if i < count % strata else 0), seed=seed + 104729 * (i + 1))
    return found
