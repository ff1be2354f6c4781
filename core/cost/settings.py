"""The settings every cost figure is asked for (batch, sequence length, precision, optimizer),
checked in one place and without torch: the memory and FLOP models, the measurements and the
window's cost panel all refuse the same values with the same line."""

from __future__ import annotations

from core.choices import OPTIMIZERS, PRECISION_NAMES
from core.config import ModelConfig
from core.errors import InputError

MLM_FRACTION = 0.15  # BERT's masking rate: the MLM head decodes this share of positions


def check_settings(
    batch: int,
    seq: int,
    precision: str,
    optimizer: str = "adamw",
    config: ModelConfig | None = None,
) -> None:
    """Raise :class:`InputError` for the first bad setting, before any work is done."""
    for name, value in (("batch", batch), ("seq", seq)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if precision not in PRECISION_NAMES:
        raise InputError(
            f"unknown precision {precision!r}; choose one of {', '.join(PRECISION_NAMES)}"
        )
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if config is not None and seq > config.max_position_embeddings:
        raise InputError(
            f"seq {seq} is longer than the model's {config.max_position_embeddings} positions"
        )


def masked_count(batch: int, seq: int) -> int:
    """Positions the MLM head decodes in a training step: round(15% of B x T), at least 1."""
    return max(1, round(MLM_FRACTION * batch * seq))
