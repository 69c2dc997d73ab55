"""The depth floor: every block keeps running, so its options keep being estimated; the floored beta vertex meets
every limit as the plain one does, fades where the room cannot pay for it and falls back to the plain vertex where
several limits leave it no point."""

from __future__ import annotations

import numpy as np
import pytest

from nas.search import BCFW, BCFWConfig, NetworkScore
from nas.search.floored_vertex import lp_vertex
from tests.nas.search.helpers import planted_gradients


def _limit(model, u: float) -> float:
    return model.min_latency_ms() + u * (model.max_latency_ms() - model.min_latency_ms())


@pytest.mark.parametrize("seed", [0, 3])
def test_the_floor_keeps_every_block_running_and_its_options_estimated(make_model, seed: int) -> None:
    """Each extra block costs far more than its options bring, so the LP leaves the deeper depths at once. Without
    the floor their blocks stop running (a few runs in all, from the first steps) and their options' estimates stay
    about as far off as the noise of one run; with it every block keeps the floor's activity, gets a share of the
    gradients and its estimates come within a fraction of that."""
    model = make_model(seed)
    rng = np.random.default_rng(seed)
    option = rng.lognormal(0.0, 0.3, size=model.alpha_shape)
    utility = NetworkScore(option, -4.0 * np.arange(len(model.depths))[None, :] * np.ones(model.beta_shape))
    limit = _limit(model, 0.8)
    found = {}
    for floor in (0.0, 0.05):
        opt = BCFW(model, limit, BCFWConfig(depth_floor=floor), seed=seed)
        grads = planted_gradients(model, utility, 1.0, seed)
        for _ in range(300):
            g = grads(opt.alpha, opt.beta)
            opt.step(g.alpha, g.beta)
        deep_error = float(np.sqrt(((opt.surrogate().option - option)[:, 2:] ** 2).mean()))
        found[floor] = (model.depth_weights(opt.beta).min(), float((opt.m_active * opt.k).min()), deep_error)
    (act0, runs0, err0), (act1, runs1, err1) = found[0.0], found[0.05]
    assert act0 < 1e-3 and runs0 < 5.0
    assert act1 >= 0.05 * (1 - 1e-9) and runs1 >= 0.05 * 300
    assert err1 < 0.5 * err0


def _opt(make_model, floor: float = 0.05) -> BCFW:
    model = make_model(5)
    return BCFW(model, _limit(model, 0.5), BCFWConfig(depth_floor=floor))


def test_the_floored_vertex_keeps_the_floor_and_meets_the_row(make_model) -> None:
    opt = _opt(make_model)
    rng = np.random.default_rng(0)
    c, row = rng.normal(size=(5, 3)), rng.uniform(0.5, 2.0, size=(5, 3))
    room = float(row.min(axis=1).sum() + 0.6 * (row.max(axis=1) - row.min(axis=1)).sum())
    x, _ = opt.beta_vertex(c, [row], [room])
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-12)
    assert x.min() >= 0.05 - 1e-12
    assert float((row * x).sum()) <= room * (1 + 1e-12)


def test_the_floor_fades_where_the_room_cannot_pay_for_it(make_model) -> None:
    """Close above the lightest depths the floor takes at most half the room; at the lightest it is gone and the
    vertex is the plain LP's."""
    opt = _opt(make_model)
    rng = np.random.default_rng(1)
    c, row = rng.normal(size=(5, 3)), rng.uniform(0.5, 2.0, size=(5, 3))
    lightest = float(row.min(axis=1).sum())
    span = float(row.sum()) - 3 * lightest
    for extra in (1e-3, 1e-2):
        x, _ = opt.beta_vertex(c, [row], [lightest + extra])
        assert 0.0 < x.min() <= 0.5 * extra / span * (1 + 1e-9)
        assert float((row * x).sum()) <= (lightest + extra) * (1 + 1e-12)
    x, _ = opt.beta_vertex(c, [row], [lightest])
    plain, _ = lp_vertex(c, [row], [lightest])
    np.testing.assert_array_equal(x, plain)


def test_several_rows_that_leave_the_floor_no_point_give_the_plain_vertex(make_model) -> None:
    """Each row alone affords the floor, the two together do not: the vertex is the plain LP's, within both."""
    opt = _opt(make_model)
    c = np.array([[0.0, -1.0, 0.0]])
    rows = [np.array([[0.0, 10.0, 10.0]]), np.array([[10.0, 10.0, 0.0]])]
    x, _ = opt.beta_vertex(c, rows, [5.0, 5.0])
    plain, _ = lp_vertex(c, rows, [5.0, 5.0])
    np.testing.assert_allclose(x, plain)
    assert all(float((row * x).sum()) <= 5.0 + 1e-12 for row in rows)


def test_a_floor_that_leaves_the_lp_nothing_is_refused(make_model) -> None:
    with pytest.raises(ValueError, match="depth_floor"):
        BCFWConfig(depth_floor=0.5)
    with pytest.raises(ValueError, match="depth_floor"):
        BCFWConfig(depth_floor=-0.1)
    with pytest.raises(ValueError, match="leaves nothing"):
        _opt(make_model, floor=0.4)  # three depths: 1.2 of the mass
