"""The device speed behind the budget is learned per backend and configuration: figures of one (backend, threads,
batch size) never change the time estimated for another."""

from __future__ import annotations

from latency_server.admission.budget import Budget, DeviceSpeed, Limits
from latency_server.worker.stats import Method
from latency_server.worker.tasks import BlockTask
from shared.api_schemas import MeasureSettings
from shared.search_space import HARDCORENAS

METHOD = Method(warmup=10, min_repeats=30, budget_s=0.25)
LIMITS = Limits(max_parameters=100_000_000, max_activation_elements=1 << 28, max_memory_bytes=4096 << 20,
                max_request_s=3600.0)
DEFAULT = MeasureSettings()
WIDE = MeasureSettings(threads=8, batch_size=8)


def test_figures_of_one_configuration_do_not_move_another_configurations_speed() -> None:
    speed = DeviceSpeed(default_macs_per_s=1e9)
    key = HARDCORENAS.searchable_keys(224)[-1]
    speed.observe(key, 1e-4, WIDE)  # eight threads and a batch of eight: a tiny figure per image
    assert speed.rate(WIDE) > 100 * 1e9
    assert speed.rate(DEFAULT) == 1e9
    assert speed.rate(MeasureSettings(backend="torch-cpu", threads=8, batch_size=8)) == 1e9
    speed.observe(key, 10.0, DEFAULT)
    assert speed.rate(DEFAULT) < speed.rate(WIDE)


def test_the_budget_estimates_each_task_at_its_own_configurations_speed() -> None:
    speed = DeviceSpeed(default_macs_per_s=1e9)
    budget = Budget(LIMITS, speed)
    keys = HARDCORENAS.all_keys(224)[:40]
    work = [(BlockTask(DEFAULT, str(k), METHOD), ("body", "blocks", i)) for i, k in enumerate(keys)]
    before = budget.check(work).seconds
    for key in HARDCORENAS.searchable_keys(224):
        speed.observe(key, 1e-4, WIDE)  # another client's fast configuration
    assert budget.check(work).seconds == before
