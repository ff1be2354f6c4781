"""What a training run reports: :class:`ProgressEvent` (one per step, evaluation, checkpoint,
end or set-up phase), :class:`EvalMetrics` and the final :class:`TrainResult`. Plain data with
no torch, so the window can read a run's events (its JSON lines) without loading torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["EvalMetrics", "ProgressEvent", "TrainResult"]


@dataclass(frozen=True)
class EvalMetrics:
    """Held-out scores. ``perplexity`` is exp(MLM loss) over the masked positions."""

    mlm_loss: float
    mlm_accuracy: float
    perplexity: float
    sentence_task: str | None  # "nsp", "sop" or None (model without that head)
    sentence_loss: float | None
    sentence_accuracy: float | None
    n_sequences: int
    n_masked: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProgressEvent:
    """One report from the loop. ``kind``: "step" (after every optimizer step), "eval",
    "checkpoint", "done" or "cancelled"; before the first step, set-up reports "prepare"
    (``message`` and ``fraction``), and the CLI reports a failure as "error" (``message``)."""

    kind: str
    step: int
    total_steps: int
    epoch: float  # passes over the training data (fractional, estimated)
    losses: dict[str, float]  # "mlm", "nsp" or "sop", "total" (of the last step)
    lr: float
    tokens_per_s: float  # non-padding tokens, all processes, recent steps
    elapsed_s: float
    eta_s: float
    memory_bytes: int | None  # accelerator memory in use, or the process RSS on CPU
    grad_norm: float | None = None
    metrics: EvalMetrics | None = None
    checkpoint: str | None = None
    tokens_seen: int = 0  # non-padding tokens consumed so far, all processes (kept on resume)
    message: str | None = None  # "prepare" and "error": one line for a person
    fraction: float | None = None  # "prepare": share of the phase done, None if unknown

    @classmethod
    def note(
        cls, kind: str, message: str, fraction: float | None = None, total_steps: int = 0
    ) -> ProgressEvent:
        """A "prepare" or "error" event: no step, losses or rates yet."""
        return cls(
            kind=kind,
            step=0,
            total_steps=total_steps,
            epoch=0.0,
            losses={},
            lr=0.0,
            tokens_per_s=0.0,
            elapsed_s=0.0,
            eta_s=0.0,
            memory_bytes=None,
            message=message,
            fraction=fraction,
        )

    def to_dict(self) -> dict:
        """Plain values for JSON; a non-finite float (the gradient norm of a step the fp16
        scaler skipped) becomes None, since ``NaN`` is not JSON."""
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict() if self.metrics else None
        return _finite_or_none(data)


def _finite_or_none(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value


@dataclass
class TrainResult:
    steps: int
    cancelled: bool
    elapsed_s: float
    tokens_seen: int
    final_losses: dict[str, float]
    metrics: EvalMetrics | None
    checkpoint: Path | None
    final_model: Path | None
