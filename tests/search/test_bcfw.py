"""BCFW under a hard limit: every iterate and every final network within the limit, on random problems."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nas.search.bcfw import BCFW, BCFWConfig, LatencyLimitError, balanced_init, shrink_towards_lightest
from nas.search.finalize import discretize, fill_slack, finalize, sparsify
from shared.search_space import HARDCORENAS

REL = 1e-9


def _limit(model, u: float) -> float:
    lo, hi = model.min_latency_ms(), model.max_latency_ms()
    return lo + u * (hi - lo)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    integer=st.booleans(),
    u=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.2)),
    block_choice=st.sampled_from(["random", "alternate"]),
    schedule=st.sampled_from(["fixed", "decaying"]),
    max_step=st.sampled_from([0.002, 0.1, 0.5, 1.0]),
    momentum=st.sampled_from([0.0, 0.9]),
)
def test_every_iterate_and_the_final_network_meet_the_limit(
    make_model, seed, integer, u, block_choice, schedule, max_step, momentum
) -> None:
    model = make_model(seed, integer=integer)
    limit = _limit(model, u)
    cfg = BCFWConfig(block_choice=block_choice, step_schedule=schedule, max_step=max_step, momentum=momentum)
    opt = BCFW(model, limit, cfg, seed=seed)
    bound = limit * (1 + REL)
    assert opt.expected_latency_ms() <= bound
    rng = np.random.default_rng(seed)
    for _ in range(30):
        info = opt.step(rng.normal(size=model.alpha_shape), rng.normal(size=model.beta_shape))
        assert info.expected_latency_ms <= bound
        assert np.all(opt.alpha >= 0) and np.all(opt.beta >= 0)
        np.testing.assert_allclose(opt.alpha.sum(-1), 1.0, atol=1e-12)
        np.testing.assert_allclose(opt.beta.sum(-1), 1.0, atol=1e-12)
    fin = finalize(model, opt.alpha, opt.beta, limit)
    assert fin.sparse_latency_ms <= bound
    assert fin.latency_ms <= limit  # strict: the returned network never exceeds T
    assert fin.latency_ms == model.choice_latency_ms(fin.choice)
    HARDCORENAS.check_choice(fin.choice)
    # a tightened re-run of the final steps (a measurement above T): still within the tighter limit
    tighter = model.min_latency_ms() + 0.5 * (limit - model.min_latency_ms())
    assert finalize(model, opt.alpha, opt.beta, tighter).latency_ms <= tighter


def test_limit_below_minimum_stops_at_once_stating_it(make_model) -> None:
    model = make_model(3)
    minimum = model.min_latency_ms()
    with pytest.raises(LatencyLimitError, match=f"{minimum:.6g} ms") as info:
        BCFW(model, minimum * 0.99)
    assert info.value.minimum_ms == minimum
    BCFW(model, minimum)  # exactly the minimum is allowed


def test_balanced_init_is_uniform_when_feasible_else_tight(make_model) -> None:
    model = make_model(5)
    ua, ub = model.uniform()
    e_uniform = model.expected_latency_ms(ua, ub)
    a, b = balanced_init(model, e_uniform + 1.0)
    np.testing.assert_array_equal(a, ua)
    np.testing.assert_array_equal(b, ub)
    limit = 0.5 * (model.min_latency_ms() + e_uniform)
    a, b = balanced_init(model, limit)
    assert model.expected_latency_ms(a, b) <= limit
    assert model.expected_latency_ms(a, b) == pytest.approx(limit, rel=1e-9)  # as uniform as possible
    assert a.min() > 0 and b.min() > 0


def test_schedules_and_momentum(make_model) -> None:
    model = make_model(1)
    limit = _limit(model, 0.5)
    opt = BCFW(model, limit, BCFWConfig(step_schedule="decaying", max_step=0.5, block_choice="alternate"))
    gammas = []
    for _ in range(5):
        info = opt.step(np.ones(model.alpha_shape), np.ones(model.beta_shape))
        gammas.append(info.gamma)
    assert gammas == pytest.approx([0.5 * 4 / (k + 4) for k in range(5)])
    # alternate starts with beta; the alpha buffer moves only on alpha steps
    opt = BCFW(model, limit, BCFWConfig(block_choice="alternate", momentum=0.9))
    info = opt.step(np.ones(model.alpha_shape), np.full(model.beta_shape, 2.0))
    assert info.block == "beta" and np.all(opt.m_alpha == 0) and np.allclose(opt.m_beta, 0.2)
    info = opt.step(np.ones(model.alpha_shape), np.full(model.beta_shape, 2.0))
    assert info.block == "alpha" and np.allclose(opt.m_alpha, 0.1) and np.allclose(opt.m_beta, 0.2)
    fixed = BCFW(model, limit, BCFWConfig(max_step=0.002))
    assert fixed.step(np.ones(model.alpha_shape), np.ones(model.beta_shape)).gamma == 0.002


def test_same_seed_same_path(make_model) -> None:
    model = make_model(11)
    limit = _limit(model, 0.3)

    def run(seed: int):
        opt = BCFW(model, limit, BCFWConfig(max_step=0.2), seed=seed)
        rng = np.random.default_rng(0)
        blocks = [
            opt.step(rng.normal(size=model.alpha_shape), rng.normal(size=model.beta_shape)).block for _ in range(40)
        ]
        return blocks, finalize(model, opt.alpha, opt.beta, limit).choice

    assert run(1) == run(1)
    assert run(1)[0] != run(2)[0]


def test_sparsify_reaches_a_vertex(make_model) -> None:
    model = make_model(21)
    limit = _limit(model, 0.4)
    rng = np.random.default_rng(0)
    alpha = rng.dirichlet(np.ones(12), size=(5, 4))
    beta = rng.dirichlet(np.ones(3), size=5)
    alpha, beta, _ = shrink_towards_lightest(model, alpha, beta, limit)
    sa, sb = sparsify(model, alpha, beta, limit)
    assert int(np.sum((sa > 0).sum(-1) > 1)) <= 1
    assert int(np.sum((sb > 0).sum(-1) > 1)) <= 1
    assert model.expected_latency_ms(sa, sb) <= limit * (1 + REL)
    # with a loose limit sparsify is the per-block argmax of the distribution
    sa, sb = sparsify(model, alpha, beta, model.max_latency_ms() + 1)
    np.testing.assert_array_equal(sa.argmax(-1), alpha.argmax(-1))
    np.testing.assert_array_equal(sb.argmax(-1), beta.argmax(-1))


def test_discretize_repairs_a_network_above_the_limit(make_model) -> None:
    model = make_model(8)
    limit = _limit(model, 0.3)
    alpha, beta = model.one_hot(model.heaviest_choice())  # far above the limit
    choice, repairs = discretize(model, alpha, beta, limit)
    assert repairs > 0
    assert model.choice_latency_ms(choice) <= limit
    choice, _ = discretize(model, alpha, beta, model.min_latency_ms())  # only the lightest networks fit
    assert model.choice_latency_ms(choice) == model.min_latency_ms()


def _upgrades_that_fit(model, choice, limit: float) -> list:
    """Every single upgrade (one option, or one stage one depth deeper with any options) that fits the limit."""
    from shared.search_space import ArchChoice

    fits = []
    for s, stage in enumerate(choice.options):
        for j, i in enumerate(stage):
            for alt in range(model.alpha_shape[2]):
                gain = model.block_ms[s, j, alt] - model.block_ms[s, j, i]
                cand = ArchChoice(tuple(tuple(alt if b == j else o for b, o in enumerate(stage)) if k == s else opts
                                        for k, opts in enumerate(choice.options)))
                if gain > 0 and model.choice_latency_ms(cand) <= limit:
                    fits.append((s, j, alt))
        d = model.depths.index(len(stage))
        if d + 1 < len(model.depths):
            extra = [int(np.argmin(model.block_ms[s, j])) for j in range(len(stage), model.depths[d + 1])]
            deeper = ArchChoice(tuple(tuple(stage) + tuple(extra) if k == s else o
                                      for k, o in enumerate(choice.options)))
            if model.choice_latency_ms(deeper) <= limit:
                fits.append((s, "depth"))
    return fits


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), integer=st.booleans(), u=st.floats(0.0, 1.0))
@example(seed=81, integer=False, u=0.9999999999999999)  # the incremental sum fit, the exact one was 1 ulp above
def test_fill_slack_keeps_the_limit_and_leaves_no_upgrade_that_fits(make_model, seed, integer, u) -> None:
    model = make_model(seed, integer=integer)
    limit = _limit(model, u)
    rng = np.random.default_rng(seed)
    alpha = rng.dirichlet(np.ones(12), size=(5, 4))
    beta = rng.dirichlet(np.ones(3), size=5)
    plain = finalize(model, alpha, beta, limit, fill=False)
    filled = finalize(model, alpha, beta, limit)
    assert plain.upgrades == 0 and plain.latency_ms == plain.discrete_latency_ms
    assert filled.discrete_latency_ms == plain.latency_ms  # the fill starts from the discretised network
    assert plain.latency_ms <= filled.latency_ms <= limit
    assert filled.latency_ms == model.choice_latency_ms(filled.choice)
    assert (filled.upgrades > 0) == (filled.latency_ms > plain.latency_ms)
    assert _upgrades_that_fit(model, filled.choice, limit) == []  # the slack is spent
    HARDCORENAS.check_choice(filled.choice)


def test_fill_slack_takes_the_upgrade_the_distribution_prefers(make_model) -> None:
    model = make_model(4)
    light = model.lightest_choice()
    alpha, beta = model.one_hot(light)
    # the distribution prefers, in stage 2 block 0, the most expensive option; elsewhere the lightest one
    s, j = 2, 0
    best = int(np.argmax(model.block_ms[s, j]))
    alpha[s, j] = 0.0
    alpha[s, j, best] = 0.9
    alpha[s, j, light.options[s][j]] += 0.1
    room = model.block_ms[s, j, best] - model.block_ms[s, j, light.options[s][j]]
    limit = model.min_latency_ms() + room + 1e-9  # exactly room for that one upgrade
    choice, upgrades = fill_slack(model, light, limit, alpha, beta)
    assert choice.options[s][j] == best and upgrades >= 1
    assert model.choice_latency_ms(choice) <= limit
    # no room: nothing changes
    assert fill_slack(model, light, model.min_latency_ms(), alpha, beta) == (light, 0)
    with pytest.raises(ValueError, match="above the limit"):
        fill_slack(model, model.heaviest_choice(), model.min_latency_ms(), alpha, beta)
