"""Pretraining BERT (MLM + NSP) and ALBERT (MLM + SOP): trainer, optimizers, checkpoints,
distributed setup. See :mod:`core.training.trainer` for the loop and its events.

Re-exports are lazy (:mod:`core._lazy`): ``TrainConfig`` (:mod:`core.training.config`) and the
events (:mod:`core.training.events`) load no torch; the loop and its parts do."""

from typing import TYPE_CHECKING

from core._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "core.choices": ("OPTIMIZERS",),
        "core.training.config": ("TrainConfig",),
        "core.training.events": ("EvalMetrics", "ProgressEvent", "TrainResult"),
        "core.training.listeners": ("CheckpointWriter", "FinalExport", "JsonlLog"),
        "core.training.loss": ("Losses", "pretraining_loss"),
        "core.training.optim": ("Lamb", "build_optimizer", "build_scheduler", "warmup_linear"),
        "core.training.setup": ("evaluate_model", "prepare_data", "prepare_training"),
        "core.training.trainer": ("StepStats", "Trainer", "evaluate"),
    },
)

if TYPE_CHECKING:  # what type checkers and editors see
    from core.choices import OPTIMIZERS
    from core.training.config import TrainConfig
    from core.training.events import EvalMetrics, ProgressEvent, TrainResult
    from core.training.listeners import CheckpointWriter, FinalExport, JsonlLog
    from core.training.loss import Losses, pretraining_loss
    from core.training.optim import Lamb, build_optimizer, build_scheduler, warmup_linear
    from core.training.setup import evaluate_model, prepare_data, prepare_training
    from core.training.trainer import StepStats, Trainer, evaluate
