"""Pretraining BERT (MLM + NSP) and ALBERT (MLM + SOP): trainer, optimizers, checkpoints,
distributed setup. See :mod:`core.training.trainer` for the loop and its events."""

from core.training.config import TrainConfig
from core.training.listeners import CheckpointWriter, FinalExport, JsonlLog
from core.training.loss import Losses, pretraining_loss
from core.training.optim import OPTIMIZERS, Lamb, build_optimizer, build_scheduler, warmup_linear
from core.training.setup import evaluate_model, prepare_data, prepare_training
from core.training.trainer import (
    EvalMetrics,
    ProgressEvent,
    StepStats,
    Trainer,
    TrainResult,
    evaluate,
)

__all__ = [
    "OPTIMIZERS",
    "CheckpointWriter",
    "EvalMetrics",
    "FinalExport",
    "JsonlLog",
    "Lamb",
    "Losses",
    "ProgressEvent",
    "StepStats",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "evaluate_model",
    "prepare_data",
    "prepare_training",
    "pretraining_loss",
    "warmup_linear",
]
