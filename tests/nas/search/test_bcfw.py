"""BCFW under a hard limit: every iterate and every final network within the limit, on random problems; its
schedules and the loss model its averaged gradients fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.search.bcfw import BCFW, BCFWConfig
from nas.search.finalize import finalize, probability_score, search_score
from nas.search.latency_limit import LatencyLimitError
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
    momentum=st.sampled_from(["fixed", "decaying"]),
    objective=st.sampled_from(["surrogate", "momentum"]),
    final_score=st.sampled_from(["linearised", "probability"]),
    depth_floor=st.sampled_from([0.0, 0.05, 0.3]),
)
def test_every_iterate_and_the_final_network_meet_the_limit(
    make_model, seed, integer, u, block_choice, schedule, max_step, momentum, objective, final_score, depth_floor
) -> None:
    model = make_model(seed, integer=integer)
    limit = _limit(model, u)
    cfg = BCFWConfig(block_choice=block_choice, step_schedule=schedule, max_step=max_step,
                     momentum_schedule=momentum, objective=objective, final_score=final_score,
                     depth_floor=depth_floor)
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
    score = search_score(opt)
    fin = finalize(model, score, limit)
    assert fin.latency_ms <= limit  # strict: the returned network never exceeds T
    assert fin.latency_ms == model.choice_latency_ms(fin.choice)
    assert fin.score == score.of(fin.choice, model.depths)
    HARDCORENAS.check_choice(fin.choice)
    # a tightened re-run of the final steps (the measured guarantee's): within the tighter limit, never better
    tighter = model.min_latency_ms() + 0.5 * (limit - model.min_latency_ms())
    again = finalize(model, score, tighter)
    assert again.latency_ms <= tighter and again.score <= fin.score + 1e-6


def test_limit_below_minimum_stops_at_once_stating_it(make_model) -> None:
    model = make_model(3)
    minimum = model.min_latency_ms()
    with pytest.raises(LatencyLimitError, match=f"{minimum:.6g} ms") as info:
        BCFW(model, minimum * 0.99)
    assert info.value.minimum_ms == minimum
    BCFW(model, minimum)  # exactly the minimum is allowed


def test_schedules_and_averaging(make_model) -> None:
    model = make_model(1)
    limit = _limit(model, 0.5)
    # decaying: each block counts its own steps; alternate starts with beta
    opt = BCFW(model, limit, BCFWConfig(step_schedule="decaying", max_step=0.5, step_offset=2.0))  # 1 / (k + 2)
    steps = [opt.step(np.ones(model.alpha_shape), np.ones(model.beta_shape)) for _ in range(6)]
    assert [s.block for s in steps] == ["beta", "alpha"] * 3
    assert [s.gamma for s in steps] == pytest.approx([0.5, 0.5, 0.5 * 2 / 3, 0.5 * 2 / 3, 0.25, 0.25])
    fixed = BCFW(model, limit, BCFWConfig(step_schedule="fixed", max_step=0.002))
    assert fixed.step(np.ones(model.alpha_shape), np.ones(model.beta_shape)).gamma == 0.002
    # both averages take every gradient: by default the running mean; weights 2/(t+2) weight gradient t by t+1
    for offset, weights in ((1.0, np.full(4, 0.25)), (2.0, np.arange(1, 5) / 10)):
        opt = BCFW(model, limit, BCFWConfig(momentum_schedule="decaying", averaging_offset=offset))
        grads = [np.full(model.alpha_shape, float(t) ** 2) for t in range(4)]
        for t, g in enumerate(grads):
            opt.step(g, np.full(model.beta_shape, -float(t)))
        np.testing.assert_allclose(opt.m_alpha, np.sum([w * g for w, g in zip(weights, grads, strict=True)], axis=0))
        np.testing.assert_allclose(opt.m_beta, -np.dot(weights, np.arange(4.0)))
    # fixed: the original's momentum, m <- 0.9 m + 0.1 g, on both buffers
    opt = BCFW(model, limit, BCFWConfig(momentum_schedule="fixed", momentum=0.9))
    opt.step(np.ones(model.alpha_shape), np.full(model.beta_shape, 2.0))
    assert np.allclose(opt.m_alpha, 0.1) and np.allclose(opt.m_beta, 0.2)


def _additive_gradients(model, option: np.ndarray, depth: np.ndarray, noise: float, seed: int):
    """Gradients of -E[U] for an additive utility (options per active block, a term per depth), with noise."""
    rng = np.random.default_rng(seed)

    def grads(alpha, beta):
        active = model.depth_weights(beta)[:, :, None]
        ga = -active * option + noise * np.sqrt(active) * rng.normal(size=option.shape)
        gb = -(depth + np.einsum("sjo,sjo->sj", alpha, option) @ model.block_weight)
        return ga, gb + noise * rng.normal(size=depth.shape)

    return grads


def test_the_averaged_gradients_recover_an_additive_loss(make_model) -> None:
    """Noise-free: the fitted loss model equals the planted utilities on every block that ran (depth scores up to a
    constant per stage), whatever the path; with noise the estimate of a block that hardly ran is shrunk to its
    block's mean, so it cannot outbid blocks the search knows."""
    model = make_model(2)
    rng = np.random.default_rng(0)
    option, depth = rng.normal(size=model.alpha_shape), rng.normal(size=model.beta_shape)
    opt = BCFW(model, _limit(model, 0.4), BCFWConfig())
    grads = _additive_gradients(model, option, depth, 0.0, 0)
    for _ in range(40):
        opt.step(*grads(opt.alpha, opt.beta))
    fitted = opt.surrogate()
    ran = opt.m_active > 1e-6
    np.testing.assert_allclose(fitted.option[ran], option[ran], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fitted.depth - fitted.depth[:, :1], depth - depth[:, :1], rtol=1e-6, atol=1e-9)
    # the third and fourth blocks of every stage run in 1e-4 of the networks: their raw estimates are mostly noise
    beta = np.tile([1 - 1e-4, 5e-5, 5e-5], (5, 1))
    alpha = model.one_hot(model.lightest_choice())[0]
    noisy = BCFW(model, model.max_latency_ms(), BCFWConfig(), alpha=alpha, beta=beta)
    grads = _additive_gradients(model, option, depth, 1.0, 1)
    for _ in range(200):
        noisy.step(*grads(noisy.alpha, noisy.beta), block="alpha")
    raw = -noisy.m_alpha / noisy.m_active[:, :, None]
    fitted = noisy.surrogate()
    assert np.ptp(raw[:, 2:], axis=-1).min() > 2 * np.ptp(option, axis=-1).max()  # the noise dominates them
    assert np.all(np.ptp(fitted.option[:, 2:], axis=-1) < 0.2 * np.ptp(raw[:, 2:], axis=-1))  # shrunk
    np.testing.assert_allclose(fitted.option[:, :2], option[:, :2], atol=0.5)  # the blocks that always ran


def test_probability_score_is_the_log_probability_of_a_network(make_model) -> None:
    model = make_model(3)
    rng = np.random.default_rng(1)
    alpha = rng.dirichlet(np.ones(12), size=(5, 4))
    beta = rng.dirichlet(np.ones(3), size=5)
    choice = model.lightest_choice()
    expected = sum(np.log(beta[s, model.depths.index(len(st))]) + sum(np.log(alpha[s, j, i]) for j, i in enumerate(st))
                   for s, st in enumerate(choice.options))
    assert probability_score(alpha, beta).of(choice, model.depths) == pytest.approx(expected)


def test_same_seed_same_path(make_model) -> None:
    model = make_model(11)
    limit = _limit(model, 0.3)

    def run(seed: int):
        opt = BCFW(model, limit, BCFWConfig(max_step=0.2, block_choice="random"), seed=seed)
        rng = np.random.default_rng(0)
        blocks = [
            opt.step(rng.normal(size=model.alpha_shape), rng.normal(size=model.beta_shape)).block for _ in range(40)
        ]
        return blocks, finalize(model, search_score(opt), limit).choice

    assert run(1) == run(1)
    assert run(1)[0] != run(2)[0]


def test_the_latency_prior_shrinks_towards_each_blocks_latency_line(make_model) -> None:
    """``prior="latency"``: where the options' utility is a line over their log latency, noisy estimates are pulled
    towards that line (closer to the truth than the raw estimates and than the block-mean prior); a misspelt prior
    is refused."""
    model = make_model(2)
    x = np.log(model.block_ms)
    option = 0.5 * (x - x.mean(axis=-1, keepdims=True))
    depth = np.zeros(model.beta_shape)
    errors = {}
    for prior in ("block", "latency"):
        opt = BCFW(model, model.max_latency_ms(), BCFWConfig(prior=prior), seed=3)
        grads = _additive_gradients(model, option, depth, 2.0 * float(np.std(option)), 4)
        for _ in range(100):
            opt.step(*grads(opt.alpha, opt.beta))
        fitted = opt.surrogate().option
        centred = fitted - fitted.mean(axis=-1, keepdims=True)
        errors[prior] = float(np.abs(centred - option).mean())
    assert errors["latency"] < errors["block"]
    with pytest.raises(ValueError, match="prior"):
        BCFWConfig(prior="lat")
