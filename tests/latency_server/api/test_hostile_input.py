"""A hostile-input corpus against a real server: every request gets a small JSON 4xx naming its field, none a 5xx,
nothing is measured, and the server stays healthy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from nas.latency.local_server import LocalServer
from shared.published import PUBLISHED
from tests.live import TOKEN

BLOCK = {"type": "ir", "in_chs": 16, "out_chs": 24, "stride": 2, "resolution": 16, "exp_ratio": 3, "kernel": 3,
         "se_ratio": 0.25, "act": "relu"}
NET = PUBLISHED["A"].arch
HUGE = "9" * 400
#: no answer may be larger (the largest error body is 20 items of at most 300 characters)
MAX_ANSWER_BYTES = 10_000
NON_ASCII_DIGITS = ["\u00b2", "\u2460", "\u0663", "\uff13", "\u0969", "\U0001d7d1"]  # ² ① ٣ ３ ३ 𝟑
BLOCKS, NETWORK, LUT, DEVICE = "/v1/latency/blocks", "/v1/latency/network", "/v1/lut", "/v1/device"


@dataclass
class Case:
    """One request and the text its 4xx answer must contain (the field it is about)."""

    category: str
    method: str
    path: str
    needle: str
    raw: bytes | None = None  # a body sent as is
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] | None = None  # None: the valid token
    status: int | None = None  # the exact 4xx expected, where it is known
    stream: bool = False  # send the body in chunks, without Content-Length


def _body(category: str, path: str, text: str, needle: str, status: int | None = None, stream: bool = False) -> Case:
    return Case(category, "POST", path, needle, raw=text.encode(), status=status, stream=stream)


def _blocks(category: str, needle: str, **changes: object) -> Case:
    return _body(category, BLOCKS, json.dumps({"blocks": [{**BLOCK, **changes}]}), needle)


def _block_literal(category: str, name: str, literal: str) -> Case:
    """A block whose field ``name`` is a raw JSON literal (NaN, a 400-digit number...)."""
    fields = ", ".join(f'"{k}": {literal if k == name else json.dumps(v)}' for k, v in {**BLOCK, name: 0}.items())
    return _body(category, BLOCKS, '{"blocks": [{' + fields + "}]}", name)


def _network(category: str, needle: str, **fields: object) -> Case:
    return _body(category, NETWORK, json.dumps({"arch": NET, **fields}), needle)


def _network_literal(category: str, name: str, literal: str) -> Case:
    return _body(category, NETWORK, f'{{"arch": {json.dumps(NET)}, "{name}": {literal}}}', name)


def _arch(category: str, arch: str, needle: str = "arch") -> Case:
    return _body(category, NETWORK, json.dumps({"arch": arch, "resolution": 32}), needle)


def _query(category: str, path: str, needle: str, **params: str) -> Case:
    return Case(category, "GET", path, needle, params={"resolution": "32", **params} if path == LUT else params)


def corpus() -> Iterator[Case]:
    block_ints = ["in_chs", "out_chs", "resolution", "kernel", "num_classes"]
    block_floats = ["exp_ratio", "se_ratio"]
    # numbers beyond range: 400-digit integers, their negatives and exponents past float range, everywhere
    for name in block_ints + block_floats:
        for literal in (HUGE, "-" + HUGE, "1e400", "-1e400"):
            yield _block_literal("overflow", name, literal)
    for name in ("batch_size", "threads"):
        yield _body("overflow", BLOCKS, f'{{"blocks": [{json.dumps(BLOCK)}], "{name}": {HUGE}}}', name)
        yield _network_literal("overflow", name, HUGE)
    yield _network_literal("overflow", "resolution", HUGE)
    for path in (LUT, DEVICE):
        for name in ("batch_size", "threads") + (("resolution",) if path == LUT else ()):
            yield _query("overflow", path, name, **{name: HUGE})
            yield _query("overflow", path, name, **{name: "-" + HUGE})
    # non-ASCII digits in arch strings (and query integers)
    for digit in NON_ASCII_DIGITS:
        for template in ("ir_r{d}_k3_s1_e3_c16", "cn_r1_k1_s1_c{d}", "ir_r1_k{d}_s1_e3_c16", "ir_r1_k3_s{d}_e3_c16",
                         "ir_r1_k3_s1_e{d}_c16", "ir_r1_k3_s1_e3_c16_se0.{d}"):
            yield _arch("non-ascii digits", f"[['{template.format(d=digit)}']]")
        yield _query("non-ascii digits", LUT, "threads", threads=digit)
    # NaN and Infinity as JSON literals in every numeric field
    for name in block_ints + block_floats:
        for literal in ("NaN", "Infinity", "-Infinity"):
            yield _block_literal("nan/inf", name, literal)
    for name in ("resolution", "batch_size", "threads"):
        for literal in ("NaN", "Infinity"):
            yield _network_literal("nan/inf", name, literal)
    yield _query("nan/inf", LUT, "resolution", resolution="nan")
    yield _query("nan/inf", LUT, "threads", threads="inf")
    # over-long strings
    long = "x" * 20_000
    long_query = "x" * 4_000  # (an HTTP request line stays under the server's 16 KB)
    yield _arch("long strings", "[['" + "ir_r1_k3_s1_e3_c16', '" * 500 + "ir_r1_k3_s1_e3_c16']]")
    yield _arch("long strings", "[['" + long + "']]")
    yield _arch("long strings", "[" + "[" * 5000)
    for name in ("type", "act"):
        yield _blocks("long strings", name, **{name: long})
    yield _network("long strings", "space", space=long)
    yield _network("long strings", "backend", backend=long)
    yield _blocks("long strings", "xxxx", **{long: 1})
    yield _body("long strings", NETWORK, json.dumps({"arch": NET, long: 1}), "xxxx")
    yield _query("long strings", LUT, "space", space=long_query)
    yield _query("long strings", LUT, "backend", backend=long_query)
    yield Case("long strings", "GET", "/v1/jobs/" + "j" * 5000, "job_id", status=404)
    # over-size bodies: announced, and streamed without a length
    big = json.dumps({"blocks": [BLOCK] * 12_000})  # about 1.5 MB, over the 1 MiB default
    yield _body("big bodies", BLOCKS, big, "body", status=413)
    yield _body("big bodies", NETWORK, json.dumps({"arch": "[['" + "x" * 2_000_000 + "']]"}), "body", status=413)
    yield _body("big bodies", BLOCKS, big, "body", status=413, stream=True)
    yield _body("big bodies", NETWORK, " " * 5_000_000, "body", status=413)  # past the drained size: refused at once
    # wrong types
    for name, value in (("in_chs", "16"), ("in_chs", 16.5), ("in_chs", True), ("in_chs", None), ("in_chs", [16]),
                        ("stride", "2"), ("exp_ratio", "3"), ("exp_ratio", False), ("se_ratio", {}), ("act", 1),
                        ("type", ["ir"]), ("kernel", 3.5), ("num_classes", -1), ("resolution", {"px": 16})):
        yield _blocks("wrong types", name, **{name: value})
    for payload, needle in (({"blocks": "ir"}, "blocks"), ({"blocks": {}}, "blocks"), ({"blocks": [1]}, "blocks"),
                            ({"blocks": [None]}, "blocks"), ({"blocks": []}, "blocks"),
                            ({"blocks": [BLOCK], "batch_size": "one"}, "batch_size")):
        yield _body("wrong types", BLOCKS, json.dumps(payload), needle)
    for raw, needle in (("[1, 2]", "body"), ('"blocks"', "body"), ("null", "body"), ("{", "body"),
                        ("not json", "body"), ('{"blocks": [' + json.dumps(BLOCK) + "]", "body")):
        yield _body("wrong types", BLOCKS, raw, needle)
    for name, value in (("arch", 42), ("arch", None), ("arch", ["ir_r1_k3_s1_e3_c16"]), ("resolution", "224"),
                        ("resolution", 224.5), ("threads", True), ("space", 1)):
        yield _network("wrong types", name, **{name: value})
    # unknown fields
    for name in ("foo", "blocks_", "Type", "__proto__", "block"):
        yield _blocks("unknown fields", name, **{name: 1})
        yield _network("unknown fields", name, **{name: 1})
    # bad enums
    for name, value in (("type", "zz"), ("type", "IR"), ("type", "er"), ("act", "gelu"), ("act", ""), ("stride", 3),
                        ("stride", 0), ("kernel", 4), ("kernel", 99)):
        yield _blocks("bad enums", name, **{name: value})
    for name, value in (("backend", "tpu"), ("backend", "ONNXRUNTIME"), ("space", "nope"), ("space", "")):
        yield _network("bad enums", name, **{name: value})
    yield _query("bad enums", LUT, "space", space="nope")
    yield _query("bad enums", LUT, "backend", backend="tpu")
    yield _query("bad enums", DEVICE, "backend", backend="tpu")
    # values beyond this server's limits
    for name, value in (("in_chs", 5000), ("out_chs", 10**6), ("resolution", 2048), ("kernel", 13),
                        ("exp_ratio", 9), ("exp_ratio", 0.001), ("se_ratio", 1.5), ("num_classes", 10**6)):
        yield _blocks("limits", name, **{name: value})
    yield _blocks("limits", "num_classes", type="head", num_classes=0)
    yield _blocks("limits", "MAX_CHANNELS", in_chs=4000, exp_ratio=6)
    yield _body("limits", BLOCKS, json.dumps({"blocks": [BLOCK] * 300}), "blocks")
    # bad arch strings
    for arch, needle in (("", "arch"), ("garbage", "arch"), ("[[]]", "stage"), ("[['ir_r1_k3_s1_e3_c16'", "arch"),
                         ("[['ir_r1_k3_s1_e3_c16']]]", "arch"), ("[['zz_r1_k3_s1_c16']]", "zz"),
                         ("[['ir_r1_k5']]", "arch"), ("[['ir_r1_k3_s1_e3_c16_zz9']]", "zz9"),
                         ("[['ir_r1_s1_k3_e3_c16']]", "grammar"), ("[['ir_r1_k3.5_s1_e3_c16']]", "grammar"),
                         ("[['ir_r1_k3_a2_s1_e3_c16']]", "grammar"), ("[['ir_r1_k4_s1_e3_c16']]", "kernel"),
                         ("[['ir_r1_k3_s3_e3_c16']]", "stride"), ("[['ir_r1_k3_s1_e0_c16']]", "expansion"),
                         ("[['ir_r1_k3_s1_e3_c16_se0']]", "squeeze"), ("[['ir_r1_k3_s1_e3_c0']]", "'c'"),
                         ("[['cn_r1_k1_s1_c999999']]", "channels"), ("[['cn_r1_k99_s1_c16']]", "kernel"),
                         ("[['cn_r100_k1_s1_c16']]", "block count"), ("[['ir_r1_k3_s1_e3_c16 ']]", "whitespace"),
                         ("[['ir_r1_k3_s1_e3_c16'], ]", "arch"), ("[['ir_r1_k3_s1_e3_c1234567890']]", "too long"),
                         ("[['ir_r1_k3_s1_e99_c16']]", "expansion ratio"), ("[[\"ir_r1_k3_s1_e3_c16']]", "quote")):
        yield _arch("bad arch strings", arch, needle)
    yield _network("bad arch strings", "resolution", resolution=16)
    yield _network("bad arch strings", "resolution", resolution=4096)
    # bad query values
    for params, needle in (({"resolution": "33"}, "resolution"), ({"resolution": "0"}, "resolution"),
                           ({"resolution": "-32"}, "resolution"), ({"resolution": "abc"}, "resolution"),
                           ({"resolution": ""}, "resolution"), ({"resolution": "2048"}, "resolution"),
                           ({"threads": "0"}, "threads"), ({"threads": "x"}, "threads"),
                           ({"batch_size": "0"}, "batch_size"), ({"batch_size": "1000"}, "batch_size"),
                           ({"threads": "1.5"}, "threads")):
        yield Case("bad query values", "GET", LUT, needle, params=params)
    for params, needle in (({"threads": "0"}, "threads"), ({"batch_size": "-1"}, "batch_size"),
                           ({"threads": "1000"}, "threads")):
        yield Case("bad query values", "GET", DEVICE, needle, params=params)


def _browser_corpus() -> Iterator[Case]:
    """What a web page could send: non-JSON bodies, a rebound Host, a foreign Origin, an ``<img>`` load, and a
    body of a megabyte of empty items."""
    token = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"blocks": [BLOCK]}).encode()
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        yield Case("browser", "POST", BLOCKS, "Content-Type", raw=body, headers={**token, "content-type": kind},
                   status=415)
    yield Case("browser", "POST", NETWORK, "Host", raw=json.dumps({"arch": NET}).encode(),
               headers={**token, "Host": "attacker.example"}, status=400)
    yield Case("browser", "GET", LUT, "Host", params={"resolution": "32", "threads": "7"},
               headers={**token, "Host": "attacker.example:80"}, status=400)
    yield Case("browser", "POST", BLOCKS, "Origin", raw=body, headers={**token, "Origin": "http://attacker.example"},
               status=403)
    yield Case("browser", "GET", LUT, "Sec-Fetch-Site", params={"resolution": "32", "threads": "7"},
               headers={**token, "Sec-Fetch-Site": "cross-site"}, status=403)
    yield _body("browser", BLOCKS, json.dumps({"blocks": [{}] * ((1 << 20) // 4 - 16)}), "blocks", status=422)


AUTH_CASES = [
    ({}, "Authorization"),
    ({"Authorization": "Bearer wrong"}, "Authorization"),
    ({"Authorization": f"Basic {TOKEN}"}, "Authorization"),
    ({"Authorization": "Bearer"}, "Authorization"),
    ({"Authorization": "Bearer " + "t" * 5000}, "Authorization"),
    ({"Authorization": TOKEN}, "Authorization"),
]


def _auth_corpus() -> Iterator[Case]:
    """Missing and invalid tokens on every endpoint that may measure (valid bodies: only the token is wrong)."""
    for headers, needle in AUTH_CASES:
        yield Case("tokens", "POST", BLOCKS, needle, raw=json.dumps({"blocks": [BLOCK]}).encode(), headers=headers,
                   status=401)
        yield Case("tokens", "POST", NETWORK, needle, raw=json.dumps({"arch": NET}).encode(), headers=headers,
                   status=401)
        yield Case("tokens", "GET", LUT, needle, params={"resolution": "32"}, headers=headers, status=401)


def _send(client: httpx.Client, case: Case) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"} if case.headers is None else dict(case.headers)
    if case.method == "GET":
        return client.get(case.path, params=case.params, headers=headers)
    headers.setdefault("content-type", "application/json")
    body = case.raw or b""
    if case.stream:  # chunks, no Content-Length
        return client.post(case.path, content=(body[i:i + 65536] for i in range(0, len(body), 65536)), headers=headers)
    return client.post(case.path, content=body, headers=headers)


def _counters(server: LocalServer) -> dict:
    stats = httpx.get(f"{server.url}/v1/stats", timeout=30).json()
    return {k: stats[k] for k in ("measurements", "calibration_measurements", "queued", "active_jobs")}


@pytest.mark.slow  # a live server and the whole corpus
def test_hostile_corpus_gets_small_json_4xx_naming_the_field(module_server: LocalServer) -> None:
    cases = list(corpus()) + list(_auth_corpus()) + list(_browser_corpus())
    categories = {case.category for case in cases}
    assert len(cases) >= 150 and len(categories) >= 12, (len(cases), categories)
    before = _counters(module_server)
    failures = []
    with module_server.client(timeout_s=60) as client:
        for case in cases:
            resp = _send(client, case)
            problems = []
            if not 400 <= resp.status_code < 500 or (case.status and resp.status_code != case.status):
                problems.append(f"status {resp.status_code}")
            if len(resp.content) > MAX_ANSWER_BYTES:
                problems.append(f"{len(resp.content)} bytes")
            try:
                detail = resp.json()["detail"]
                messages = [detail] if isinstance(detail, str) else [item["msg"] for item in detail]
            except (ValueError, KeyError, TypeError):
                problems.append("no JSON detail")
                messages = []
            if not any(case.needle in msg for msg in messages):
                problems.append(f"no message names {case.needle!r}")
            if problems:
                failures.append(f"{case.category}: {case.method} {case.path} {str(case.raw or case.params)[:80]} -> "
                                f"{problems}: {resp.text[:200]}")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures)
    assert _counters(module_server) == before, "hostile input must be refused before anything is measured"
    health = httpx.get(f"{module_server.url}/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    with module_server.client(TOKEN) as client:  # and it still measures
        assert client.post(BLOCKS, json={"blocks": [{**BLOCK, "resolution": 8}]}).status_code == 200


def test_many_errors_are_cut_and_a_500_says_nothing_but_a_request_id(make_client) -> None:  # noqa: ANN001
    client = make_client()
    resp = client.post(BLOCKS, json={"blocks": [{**BLOCK, "in_chs": "x" * 100}] * 200})
    detail = resp.json()["detail"]
    assert resp.status_code == 422 and len(detail) == 21 and len(resp.content) < MAX_ANSWER_BYTES
    assert detail[-1]["msg"] == "request: 180 more errors not shown"
    assert all(item["msg"].startswith(f"blocks.{i}.in_chs") for i, item in enumerate(detail[:20]))
