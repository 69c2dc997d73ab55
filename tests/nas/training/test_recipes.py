"""``--recipe``: every training command's defaults come from a recipe, and options typed explicitly win."""

from __future__ import annotations

import pytest
import torch
import yaml
from timm.optim import create_optimizer_v2

from nas.cli import build_parser, main
from nas.training import TrainConfig, load_checkpoint
from nas.training.options import config_from_args
from nas.training.recipes import recipe_config

from ._helpers import FAST, run_dir

TEACHER = ["--teacher", "t.pth.tar"]
ARCH = ["--arch", "x"]


def _config(argv: list[str], phase: str) -> TrainConfig:
    return config_from_args(build_parser().parse_args(argv), phase)


def test_digits_is_the_default_recipe_and_keeps_the_former_defaults() -> None:
    heaviest = _config(["train-heaviest", "digits"], "heaviest")
    assert heaviest == TrainConfig(data="digits")
    assert (heaviest.opt, heaviest.lr, heaviest.epochs, heaviest.resolution) == ("adamw", 3e-3, 8, 32)
    supernet = _config(["train-supernet", "digits", *TEACHER], "supernet")
    assert (supernet.lr, supernet.epochs, supernet.warmup_epochs, supernet.teacher) == (3e-4, 6, 1, "t.pth.tar")
    finetune = _config(["finetune", "digits", *ARCH], "finetune")
    assert (finetune.lr, finetune.epochs, finetune.smoothing, finetune.gamma_knowledge) == (1e-3, 5, 0.0, 2.0)


def test_paper_recipe_sets_the_original_imagenet_settings() -> None:
    h = _config(["train-heaviest", "/data/imagenet", "--recipe", "paper"], "heaviest")
    assert h.recipe == "paper" and h.data == "/data/imagenet"
    assert (h.opt, h.momentum, h.batch_size, h.lr, h.sched, h.epochs) == ("sgd", 0.9, 256, 0.128, "step", 300)
    assert (h.decay_epochs, h.decay_rate, h.warmup_epochs, h.warmup_lr) == (2.4, 0.97, 3, 1e-6)
    assert (h.weight_decay, h.drop, h.drop_path, h.smoothing) == (1e-5, 0.3, 0.2, 0.1)
    assert (h.model_ema, h.model_ema_decay, h.amp, h.resolution) == (True, 0.999, True, 224)

    s = _config(["train-supernet", "/data/imagenet", "--recipe", "paper", *TEACHER], "supernet")
    assert (s.opt, s.batch_size, s.lr, s.sched, s.epochs, s.warmup_lr) == ("sgd", 200, 0.0128, "cosine", 100, 1e-4)
    assert (s.gamma_knowledge, s.ikd_divisor, s.real_kd, s.model_ema, s.cooldown_epochs) == (1.0, 50.0, True, True, 10)
    assert (s.drop, s.drop_path, s.smoothing, s.weight_decay) == (0.0, 0.0, 0.1, 1e-5)

    f = _config(["finetune", "/data/imagenet", "--recipe", "paper", *ARCH], "finetune")
    assert (f.opt, f.batch_size, f.lr, f.sched, f.epochs, f.warmup_lr) == ("sgd", 128, 0.00128, "cosine", 50, 1e-4)
    assert (f.smoothing, f.gamma_knowledge, f.model_ema, f.warmup_epochs) == (0.0, 2.0, True, 3)


def test_the_paper_optimizer_is_sgd_with_nesterov_momentum() -> None:
    cfg = recipe_config("paper", "heaviest")
    opt = create_optimizer_v2(torch.nn.Linear(2, 2), opt=cfg.opt, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


def test_explicit_options_override_the_recipe() -> None:
    cfg = _config(["train-heaviest", "digits", "--recipe", "paper", "--lr", "0.5", "-b", "64", "--no-model-ema",
                   "--resolution", "32", "--sched", "cosine", "--drop-path", "0"], "heaviest")
    assert (cfg.lr, cfg.batch_size, cfg.model_ema, cfg.resolution, cfg.sched, cfg.drop_path) == (
        0.5, 64, False, 32, "cosine", 0.0)
    assert (cfg.opt, cfg.epochs, cfg.drop, cfg.weight_decay) == ("sgd", 300, 0.3, 1e-5)  # the rest stays the paper's
    digits = _config(["train-heaviest", "digits", "--model-ema", "--opt", "sgd"], "heaviest")
    assert digits.model_ema and digits.opt == "sgd" and digits.lr == 3e-3


def test_help_shows_each_recipes_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train-supernet", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(digits: 0.0003; paper: 0.0128)" in text and "--recipe {digits,paper}" in text


def test_unknown_recipe_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train-heaviest", "digits", "--recipe", "imagenet"])
    assert exc.value.code == 2 and "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_a_paper_run_on_the_cpu_records_its_settings_and_keeps_an_ema(tmp_path) -> None:
    """The recipe end to end at a smoke scale (explicit options shrink it): SGD, EMA weights, its args recorded."""
    argv = ["train-heaviest", "digits", "--recipe", "paper", "--resolution", "32", *FAST, "--output", str(tmp_path)]
    assert main(argv) == 0
    d = run_dir(tmp_path)
    args = yaml.safe_load((d / "args.yaml").read_text())
    assert (args["recipe"], args["opt"], args["model_ema"], args["drop_path"], args["epochs"]) == (
        "paper", "sgd", True, 0.2, 1)
    ckpt = load_checkpoint(d / "last.pth.tar")
    assert "state_dict_ema" in ckpt and ckpt["args"]["lr"] == 0.128
