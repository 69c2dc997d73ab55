"""The training commands end to end on digits at 32 px, a few steps each: files, formats, resume, errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import timm
import torch
import yaml

from nas.cli import main
from nas.training import load_checkpoint
from shared.published import PUBLISHED
from shared.search_space import HARDCORENAS

from ._helpers import FAST, run_dir, summary

pytestmark = pytest.mark.slow  # real training runs

ARCH_A = PUBLISHED["A"].arch


def test_train_heaviest_writes_run_folder(heaviest_dir):
    assert heaviest_dir.name.endswith("-heaviest-digits-32")
    for name in ("last.pth.tar", "model_best.pth.tar", "args.yaml", "summary.csv"):
        assert (heaviest_dir / name).is_file(), name
    args = yaml.safe_load((heaviest_dir / "args.yaml").read_text())
    assert args["kind"] == "heaviest" and args["resolution"] == 32 and args["batch_size"] == 16 and args["threads"] == 1
    rows = summary(heaviest_dir)
    assert len(rows) == 1 and {"epoch", "train_loss", "eval_top1", "eval_top5", "lr"} <= set(rows[0])
    ckpt = load_checkpoint(heaviest_dir / "last.pth.tar")
    assert ckpt["kind"] == "heaviest" and ckpt["epoch"] == 0 and ckpt["num_classes"] == 10
    assert HARDCORENAS.choice_from_arch(ckpt["arch"]) == HARDCORENAS.heaviest()
    assert "optimizer" in ckpt and "classifier.weight" in ckpt["state_dict"]


def test_resume_continues_from_saved_epoch(tmp_path, heaviest_dir):
    import shutil

    d = tmp_path / "run"
    shutil.copytree(heaviest_dir, d)
    before = load_checkpoint(d / "last.pth.tar")["state_dict"]["conv_stem.weight"]
    assert main(["train-heaviest", "digits", *FAST[:-2], "--epochs", "2", "--resume", str(d / "last.pth.tar")]) == 0
    ckpt = load_checkpoint(d / "last.pth.tar")
    assert ckpt["epoch"] == 1
    assert [r["epoch"] for r in summary(d)] == ["0", "1"]
    assert not torch.equal(before, ckpt["state_dict"]["conv_stem.weight"])  # it trained on
    # nothing left to do: a finished run resumes to no further epochs
    assert main(["train-heaviest", "digits", *FAST[:-2], "--epochs", "2", "--resume", str(d / "last.pth.tar")]) == 0
    assert len(summary(d)) == 2


def test_train_supernet_is_seeded_from_teacher(supernet_dir, heaviest_dir):
    ckpt = load_checkpoint(supernet_dir / "last.pth.tar")
    assert ckpt["kind"] == "supernet" and ckpt["arch"] is None and ckpt["space"] == "hardcorenas"
    assert ckpt["args"]["reorder_channels"] is True  # the teacher's channels are sorted by importance by default
    row = summary(supernet_dir)[0]
    assert {"eval_top1_heaviest", "eval_top1_lightest"} <= set(row)
    sd = ckpt["state_dict"]
    assert "blocks.1.0.bn3.5.weight" in sd and "blocks.1.0.conv_dw.0.weight" in sd
    # k=3 kernels start from the centre of k=5 ones: after 2 small steps they are still close, not random
    k3, k5 = sd["blocks.3.1.conv_dw.0.weight"], sd["blocks.3.1.conv_dw.1.weight"][..., 1:4, 1:4]
    assert (k3 - k5).abs().max() < 0.1 * k5.abs().max()


def test_finetune_from_arch_and_search_result(tmp_path, supernet_dir, heaviest_dir):
    common = ["--supernet", str(supernet_dir / "last.pth.tar"), "--teacher", str(heaviest_dir / "last.pth.tar")]
    out = tmp_path / "ft"
    assert main(["finetune", "digits", *FAST, "--arch", ARCH_A, *common, "--output", str(out)]) == 0
    d = run_dir(out)
    ckpt = load_checkpoint(d / "model_best.pth.tar")
    assert ckpt["kind"] == "child" and HARDCORENAS.choice_from_arch(ckpt["arch"]) == HARDCORENAS.choice_from_arch(
        ARCH_A
    )
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"arch": ARCH_A, "latency_ms": 1.0}))
    out2 = tmp_path / "ft2"
    assert main(["finetune", "digits", *FAST, "--search-result", str(result), *common, "--output", str(out2)]) == 0
    assert load_checkpoint(run_dir(out2) / "last.pth.tar")["kind"] == "child"


def test_validate_json(capsys, heaviest_dir):
    assert main(["validate", "digits", "--checkpoint", str(heaviest_dir / "last.pth.tar"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 360 and out["top1"] <= out["top5"]
    assert HARDCORENAS.choice_from_arch(out["arch"]) == HARDCORENAS.heaviest()


def test_validate_json_to_file(tmp_path, capsys, heaviest_dir):
    path = tmp_path / "v.json"
    assert main(["validate", "digits", "--checkpoint", str(heaviest_dir / "last.pth.tar"), "--json", str(path)]) == 0
    out = json.loads(path.read_text())
    assert out["num_classes"] == 10 and out["images"] == 360 and "top-1" in capsys.readouterr().out


def test_validate_slices_child_from_supernet(capsys, supernet_dir):
    ckpt = str(supernet_dir / "last.pth.tar")
    assert (
        main(["validate", "digits", "--checkpoint", ckpt, "--arch", ARCH_A, "--bn-recal-batches", "2", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["bn_recalibrated_batches"] == 2 and out["images"] == 360
    assert main(["validate", "digits", "--checkpoint", ckpt]) == 2  # a supernet needs --arch
    assert "needs --arch" in capsys.readouterr().err


class _FakeLatencyServer(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        stats = {"median_ms": 4.25, "iqr_ms": 0.1, "p90_ms": 4.5, "samples": 50, "warmup": 10}
        data = json.dumps({"fingerprint": "fake", "measured": stats, "predicted_ms": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_validate_with_latency_endpoint(capsys, heaviest_dir):
    server = HTTPServer(("127.0.0.1", 0), _FakeLatencyServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        ckpt = str(heaviest_dir / "last.pth.tar")
        assert main(["validate", "digits", "--checkpoint", ckpt, "--latency-endpoint", url, "--json"]) == 0
    finally:
        server.shutdown()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["latency_ms"] == 4.25
    (req,) = _FakeLatencyServer.requests
    assert req["path"] == "/v1/latency/network" and req["backend"] == "onnxruntime"
    assert req["batch_size"] == 1 and req["threads"] == 1 and req["resolution"] == 224 and req["arch"] == out["arch"]


def test_validate_unreachable_endpoint_is_one_line(capsys, heaviest_dir):
    ckpt = str(heaviest_dir / "last.pth.tar")
    assert main(["validate", "digits", "--checkpoint", ckpt, "--latency-endpoint", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: latency endpoint") and "\n" not in err


def test_export_onnx_and_timm_state_dict(tmp_path, supernet_dir):
    import onnxruntime as ort

    onnx_path, sd_path = tmp_path / "a.onnx", tmp_path / "a.pth"
    ckpt = str(supernet_dir / "last.pth.tar")
    argv = [
        "export",
        "--arch",
        ARCH_A,
        "--checkpoint",
        ckpt,
        "--onnx",
        str(onnx_path),
        "--state-dict",
        str(sd_path),
        "--resolution",
        "32",
    ]
    assert main(argv) == 0
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 32, 32)
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    # timm's own hardcorenas_a (the same string) loads the state dict with no missing or unexpected keys
    net = timm.create_model("hardcorenas_a", pretrained=False, num_classes=10)
    result = net.load_state_dict(torch.load(sd_path), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(onnx_out), net.eval()(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "digits", "--checkpoint", "/nonexistent.pth.tar"], "does not exist"),
        (["validate", "/no/such/folder", "--checkpoint", "{ckpt}"], "neither"),
        (["validate", "digits", "--checkpoint", "{ckpt}", "--arch", "[['ir_r1']]"], "arch"),
        (["train-supernet", "digits", "--teacher", "/nonexistent.pth"], "does not exist"),
        (["train-heaviest", "digits", "--epochs", "0"], "--epochs must be positive"),
        (["finetune", "digits", "--search-result", "/nonexistent.json"], "cannot read"),
        (["export", "--checkpoint", "{ckpt}", "--onnx", "/tmp/x.onnx", "--resolution", "50"], "multiple of 32"),
    ],
)
def test_bad_input_is_one_line(capsys, heaviest_dir, argv, message):
    argv = [a.replace("{ckpt}", str(heaviest_dir / "last.pth.tar")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "Traceback" not in err and "\n" not in err
