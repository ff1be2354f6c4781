"""Device selection: CUDA > MPS > CPU, or the device the user forces."""

from __future__ import annotations

import os

import torch

from core.errors import InputError


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" picks the best available device; anything else must exist here."""
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError(f"device {name!r} requested but MPS is not available here")
    elif device.type != "cpu":
        raise InputError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def describe_device(device: torch.device) -> str:
    """Human-readable name: 'CPU', 'CUDA: NVIDIA H100 80GB HBM3', 'MPS (Apple GPU)'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "MPS (Apple GPU)"
    return "CPU"


def memory_in_use(device: torch.device) -> int | None:
    """Bytes of tensor memory allocated on an accelerator; None on CPU (no allocator figure)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.current_allocated_memory())
    return None


def resident_set_bytes() -> int | None:
    """Resident set size of this process (Linux ``/proc``), the memory figure of CPU runs;
    None where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
