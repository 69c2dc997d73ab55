"""Training: the loop, losses, checkpoints, distributed helpers and the three phases (heaviest, supernet, fine-tune).

Entry points: :func:`train_heaviest`, :func:`train_supernet`, :func:`finetune` (each takes a :class:`TrainConfig`
and returns a :class:`FitResult`), :func:`load_network` / :func:`load_supernet` for checkpoints.
"""

from nas.training.bn import recalibrate_bn
from nas.training.checkpoint import CheckpointError, load_checkpoint, model_state
from nas.training.config import TrainConfig
from nas.training.engine import FitResult, evaluate_classifier, fit
from nas.training.models import load_network, load_supernet
from nas.training.tasks import arch_from_search_result, finetune, train_heaviest, train_supernet

__all__ = [
    "CheckpointError",
    "FitResult",
    "TrainConfig",
    "arch_from_search_result",
    "evaluate_classifier",
    "finetune",
    "fit",
    "load_checkpoint",
    "load_network",
    "load_supernet",
    "model_state",
    "recalibrate_bn",
    "train_heaviest",
    "train_supernet",
]
