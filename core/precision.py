"""Numeric precision of a run: the one table of names, ``auto``'s choice, and the autocast
context every forward pass (training, evaluation, cost measurements) runs under.

Mixed precision as in torch's AMP recipe: weights and optimizer states stay fp32, matmuls run
in bf16 or fp16 under ``torch.autocast``; fp16 training also needs a gradient scaler (the
trainer's). ``auto`` is bf16 on CUDA GPUs with native bf16 (compute capability 8.0+), fp16 on
older CUDA GPUs, fp32 on CPU and MPS (which also runs fp16, and bf16 from macOS 14).
"""

from __future__ import annotations

import contextlib

import torch

from core.choices import PRECISION_CHOICES, PRECISION_NAMES
from core.device import cuda_device, describe_device, mps_bf16, native_bf16
from core.errors import InputError

# Precision name (core.choices) -> autocast dtype (None: plain fp32, no autocast).
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS: dict[str, torch.dtype | None] = {name: _DTYPES.get(name) for name in PRECISION_NAMES}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on a CUDA GPU with native bf16 (compute capability 8.0+) *of the chosen
    device*, fp16 (with the trainer's gradient scaler) on older CUDA GPUs (V100, T4), fp32 on
    CPU and MPS. An explicit choice the device cannot run is refused in one line."""
    if precision not in PRECISION_CHOICES:
        raise InputError(f"unknown precision {precision!r}; choose {', '.join(PRECISION_CHOICES)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if native_bf16(device) else "fp16"
        return "fp32"
    if precision == "bf16" and device.type == "cuda" and not native_bf16(device):
        major, minor = torch.cuda.get_device_capability(cuda_device(device))
        raise InputError(
            f"{describe_device(device)} (compute capability {major}.{minor}) has no native "
            "bf16 (it needs 8.0+); use --precision fp16"
        )
    if precision == "bf16" and device.type == "mps" and not mps_bf16():
        raise InputError("bf16 on the Apple GPU (MPS) needs macOS 14 or newer; use fp16 or fp32")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved precision on ``device``; a no-op for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def set_tf32(device: torch.device, enabled: bool) -> None:
    """On CUDA, fp32 matmuls and convolutions on TF32 tensor cores (Ampere+: 10-bit mantissa
    products, fp32 accumulation, several times faster) or exact fp32 (``enabled=False``, for
    parity checks). Process-wide; nothing changes for other devices."""
    if device.type != "cuda":
        return
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled
