"""``POST /v1/latency/network`` with another stem and head than the space's (a timm model written as an arch
string): bounded like channels, built as asked, stored under a key of its own and never predicted by a table."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from latency_server.admission.budget import task_cost
from latency_server.admission.validate import arch_pattern
from latency_server.store.models import NetworkMeasurement
from latency_server.tables.prediction import TableView
from latency_server.verdicts.networks import DEFAULT_WIDTH, network_key
from latency_server.worker.stats import Method
from latency_server.worker.tasks import NetworkTask
from shared.api_schemas import NETWORK_NUM_FEATURES, NETWORK_STEM_SIZE, MeasureSettings, NetworkRequest
from shared.arch_string import parse_arch
from shared.published import PUBLISHED
from tests.test_builders import MOBILENETV3_SMALL_ARCH, MOBILENETV3_SMALL_WIDTHS

ARCH = PUBLISHED["A"].arch
SMALL = MOBILENETV3_SMALL_WIDTHS


def test_the_defaults_are_the_builders_and_the_space_s() -> None:
    import inspect

    from shared.builders import build_network
    from shared.search_space import HARDCORENAS

    params = inspect.signature(build_network).parameters
    assert (params["stem_size"].default, params["num_features"].default) == (NETWORK_STEM_SIZE, NETWORK_NUM_FEATURES)
    assert (HARDCORENAS.stem_chs, HARDCORENAS.num_features) == DEFAULT_WIDTH
    request = NetworkRequest(arch=ARCH)
    assert (request.stem_size, request.num_features) == DEFAULT_WIDTH


def test_the_store_key_names_another_stem_or_head_and_keeps_the_default_s() -> None:
    arch = parse_arch(ARCH)
    assert network_key(arch) == network_key(arch, DEFAULT_WIDTH) == str(arch)  # the keys stored so far
    keys = {network_key(arch, width) for width in (DEFAULT_WIDTH, (16, 1024), (16, 1280), (32, 1024))}
    assert len(keys) == 4


def test_the_budget_counts_the_stem_and_head_it_builds() -> None:
    import timm

    arch = parse_arch(ARCH)
    method = Method(warmup=1, min_repeats=1, max_repeats=1, budget_s=0.0)
    default = NetworkTask(MeasureSettings(), (arch,), 64, method)
    wide = NetworkTask(MeasureSettings(), (arch,), 64, method, widths=((64, 4096),))
    assert task_cost(wide, 1e9).parameters > task_cost(default, 1e9).parameters
    net = timm.create_model("hardcorenas_a", pretrained=False)
    assert task_cost(default, 1e9).parameters == pytest.approx(sum(p.numel() for p in net.parameters()), rel=0.02)


@pytest.mark.parametrize(("field", "value", "status", "words"), [
    ("stem_size", 100_000, 422, "MAX_CHANNELS"),
    ("num_features", 100_000, 422, "MAX_CHANNELS"),
    ("stem_size", 0, 422, "greater than or equal to 1"),
    ("num_features", "16", 422, "integer"),
])
def test_out_of_range_widths_get_a_422_naming_the_field(client: TestClient, field: str, value: object, status: int,
                                                        words: str) -> None:
    answer = client.post("/v1/latency/network", json={"arch": ARCH, "resolution": 32, field: value})
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", field] and words in detail["msg"], detail


def test_timm_s_own_arch_def_passes_the_grammar(client: TestClient) -> None:
    """timm writes the squeeze-excite ratio before the activation (``ds_..._se0.25_nre``) and ratios like 3.67."""
    pattern = re.compile(arch_pattern(client.app.state.settings))
    assert pattern.fullmatch(MOBILENETV3_SMALL_ARCH)
    assert pattern.fullmatch(MOBILENETV3_SMALL_ARCH.replace("_se0.25_nre", "_nre_se0.25"))  # ours, canonical
    assert not pattern.fullmatch(MOBILENETV3_SMALL_ARCH.replace("_se0.25_nre", "_se0.25_nre_se0.25"))
    answer = client.post("/v1/latency/network",
                         json={"arch": MOBILENETV3_SMALL_ARCH, "resolution": 32, **MOBILENETV3_SMALL_WIDTHS})
    assert answer.status_code == 200, answer.text


def test_another_head_is_measured_apart_and_never_predicted(make_client: Callable[..., TestClient]) -> None:
    client = make_client(network_rounds=3, verdict_max_rounds=3)
    service = client.app.state.service
    # a complete table stands in (every entry 1 ms): the default network is predicted from it, the other not
    view = TableView(defaultdict(lambda: 1.0), 4.0, {}, None)
    service.networks.tables.view = lambda *args, **kwargs: view
    default = client.post("/v1/latency/network", json={"arch": ARCH, "resolution": 32})
    other = client.post("/v1/latency/network", json={"arch": ARCH, "resolution": 32, **SMALL})
    assert default.status_code == 200 and other.status_code == 200, (default.text, other.text)
    assert default.json()["predicted_ms"] is not None and default.json()["predicted_table_ms"] is not None
    assert other.json()["predicted_ms"] is None and other.json()["predicted_table_ms"] is None
    assert other.json()["verdict"] is not None  # a verdict all the same, against the same drift reference
    with service.measurer.store.sessions() as session:
        keys = session.scalars(select(NetworkMeasurement.arch).where(NetworkMeasurement.role == "network")).all()
    arch = parse_arch(ARCH)
    assert sorted(keys) == sorted([network_key(arch), network_key(arch, (16, 1024))])
