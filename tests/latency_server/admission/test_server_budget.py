"""Budgets before work: the cost of blocks, networks and table builds against real models, and the refusals."""

from __future__ import annotations

import pytest

from latency_server.admission.budget import Budget, DeviceSpeed, Limits, block_figures, request_cost, task_cost
from latency_server.errors import OverBudget
from latency_server.worker.stats import Method
from latency_server.worker.tasks import BlockTask, NetworkTask
from shared.api_schemas import MeasureSettings
from shared.arch_string import parse_arch
from shared.block_key import BlockKey
from shared.builders import build_block, build_network
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS

METHOD = Method(warmup=10, min_repeats=30, budget_s=0.25)
ONE = MeasureSettings()
LIMITS = Limits(max_parameters=100_000_000, max_activation_elements=1 << 28, max_memory_bytes=4096 << 20,
                max_request_s=3600.0)


def _parameters(module) -> int:  # noqa: ANN001
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["A", "F"])
def test_network_parameters_match_the_built_model(name: str) -> None:
    arch = PUBLISHED[name].arch
    cost = task_cost(NetworkTask(ONE, (parse_arch(arch),), 224, METHOD), 1e9)
    assert cost.parameters == pytest.approx(_parameters(build_network(arch)), rel=0.05)


def test_block_parameters_match_the_built_module() -> None:
    for key in HARDCORENAS.all_keys(224)[::7]:
        assert block_figures(key).parameters == pytest.approx(_parameters(build_block(key)), rel=0.1), key


def test_the_expanded_width_is_in_chs_times_exp_ratio() -> None:
    wide_in = BlockKey("ir", 4096, 16, 1, 8, exp_ratio=6)
    cost = task_cost(BlockTask(MeasureSettings(batch_size=2), str(wide_in), METHOD), 1e9)
    assert cost.activation_elements == 2 * 4096 * 6 * 8 * 8


def test_the_examples_are_refused_naming_the_limit_and_the_figure() -> None:
    budget = Budget(LIMITS, DeviceSpeed(2e9))
    huge = NetworkTask(ONE, (parse_arch("[['ir_r64_k3_s1_e6_c4096']]"),), 32, METHOD, rounds=7)
    with pytest.raises(OverBudget) as refused:
        budget.check([(huge, ("body", "arch"))])
    assert refused.value.status_code == 422 and refused.value.loc == ("body", "arch")
    assert "LATENCY_SERVER_MAX_PARAMETERS" in refused.value.msg and "12.7 G parameters" in refused.value.msg
    big_batch = MeasureSettings(batch_size=256)
    table = [(BlockTask(big_batch, str(key), METHOD), ("query", "resolution")) for key in HARDCORENAS.all_keys(1024)]
    with pytest.raises(OverBudget, match="LATENCY_SERVER_MAX_ACTIVATION_ELEMENTS"):
        budget.check(table)


def test_time_is_estimated_at_the_learned_speed_and_only_for_work_to_do() -> None:
    speed = DeviceSpeed(default_macs_per_s=1e9)
    assert speed.macs_per_s == 1e9
    speed.observe(HARDCORENAS.searchable_keys(32)[0], median_ms=1.0)  # too small to tell the device's speed
    assert speed.macs_per_s == 1e9
    key = HARDCORENAS.searchable_keys(224)[-1]
    speed.observe(key, median_ms=1.0)
    figures = block_figures(key)
    naive = figures.macs / 1e-3  # the per-run overhead is counted apart: the compute rate is a little higher
    assert naive < speed.macs_per_s <= 2 * naive
    slow = Method(warmup=10, min_repeats=30, max_repeats=10**9, budget_s=100.0)  # 100 s per block at least
    work = [(BlockTask(ONE, str(k), slow), ("body", "blocks", i)) for i, k in enumerate(HARDCORENAS.all_keys(32))]
    budget = Budget(LIMITS, speed)
    with pytest.raises(OverBudget, match="LATENCY_SERVER_MAX_REQUEST_S"):
        budget.check(work)
    cost = budget.check(work, timed=[i < 30 for i in range(len(work))])  # the rest is stored already
    assert 3000 < cost.seconds and request_cost([]).seconds == 0


def test_a_table_build_costs_its_entries_and_calibration_networks() -> None:
    rate = 2e9
    blocks = [task_cost(BlockTask(ONE, str(k), METHOD), rate) for k in HARDCORENAS.all_keys(224)]
    heaviest = HARDCORENAS.arch_from_choice(HARDCORENAS.heaviest())
    rounds = [task_cost(NetworkTask(ONE, (heaviest,) * 15, 224, METHOD, first_round=r), rate) for r in range(3)]
    total = request_cost(blocks + rounds)
    assert total.seconds == pytest.approx(sum(c.seconds for c in blocks + rounds))
    assert total.parameters == max(c.parameters for c in blocks + rounds) < LIMITS.max_parameters
    assert total.seconds < LIMITS.max_request_s  # the default limits let a 224 table be built at the default speed


def _conv_macs(module, resolution: int) -> int:  # noqa: ANN001
    """Multiply-adds of every convolution and linear layer in one forward pass, counted by hooks."""
    import torch

    total = 0

    def count(layer, _inputs, output) -> None:  # noqa: ANN001
        nonlocal total
        if isinstance(layer, torch.nn.Conv2d):
            total += output.numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            total += layer.in_features * layer.out_features

    hooks = [m.register_forward_hook(count) for m in module.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        module.eval()(torch.randn(1, 3, resolution, resolution))
    for hook in hooks:
        hook.remove()
    return total


def test_strides_past_output_stride_32_are_dilations_as_timm_builds_them() -> None:
    # eight stride-2 stages: after the stem and four of them the network is at stride 32, and timm dilates the rest
    stages = ", ".join(f"['ir_r1_k5_s2_e6_c{c}']" for c in (24, 40, 64, 96, 128, 160, 192))
    arch = f"[['ds_r1_k3_s2_e1_c16'], {stages}]"
    cost = task_cost(NetworkTask(ONE, (parse_arch(arch),), 128, METHOD), 1e9)
    assert cost.macs == pytest.approx(_conv_macs(build_network(arch), 128), rel=0.1)


def test_a_deep_stride_2_stack_at_1024_px_is_refused_by_cost() -> None:
    arch = parse_arch("[[" + ", ".join(["'ir_r1_k11_s2_e8_c256'"] * 44) + "]]")
    limits = Limits(**{**LIMITS.__dict__, "task_timeout_s": 900.0})
    with pytest.raises(OverBudget, match="LATENCY_SERVER_"):
        Budget(limits, DeviceSpeed(2e9)).check([(NetworkTask(ONE, (arch,), 1024, METHOD, rounds=25), ("body", "arch"))])


def test_work_over_the_task_timeout_is_refused_before_it_is_queued() -> None:
    key = HARDCORENAS.all_keys(224)[0]
    task = BlockTask(ONE, str(key), Method(warmup=10, min_repeats=30, budget_s=5.0))
    assert task_cost(task, 2e9).seconds > 5.0
    Budget(Limits(**{**LIMITS.__dict__, "task_timeout_s": 3600.0}), DeviceSpeed(2e9)).check([(task, ("body",))])
    with pytest.raises(OverBudget, match="LATENCY_SERVER_TASK_TIMEOUT_S"):
        Budget(Limits(**{**LIMITS.__dict__, "task_timeout_s": 5.0}), DeviceSpeed(2e9)).check([(task, ("body",))])
