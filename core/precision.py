"""Numeric precision of a run: the one table of names, ``auto``'s choice, and the autocast
context every forward pass (training, evaluation, cost measurements) runs under.

Mixed precision as in torch's AMP recipe: weights and optimizer states stay fp32, matmuls run
in bf16 or fp16 under ``torch.autocast``; fp16 training also needs a gradient scaler (the
trainer's). ``auto`` is bf16 on CUDA GPUs that support it, fp16 on other CUDA GPUs, fp32 on
CPU and MPS.
"""

from __future__ import annotations

import contextlib

import torch

from core.errors import InputError

# Precision name -> autocast dtype (None: plain fp32, no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
# What a user may ask for: a precision, or "auto" (resolved per device).
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA that supports it, fp16 on other CUDA, fp32 elsewhere."""
    if precision not in PRECISION_CHOICES:
        raise InputError(f"unknown precision {precision!r}; choose {', '.join(PRECISION_CHOICES)}")
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError("this GPU does not support bf16; use --precision fp16")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision on ``device``; a no-op for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
