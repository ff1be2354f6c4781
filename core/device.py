"""Device selection: CUDA > MPS > CPU, or the device the user forces."""

from __future__ import annotations

import os
import shutil
import traceback
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from core.errors import DeviceError, InputError, TrainingError


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


def cuda_device(device: torch.device) -> torch.device:
    """``device`` with its index filled in (``cuda`` -> ``cuda:<current>``), for the per-device
    queries (capability, memory) that must ask about the GPU actually used."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def native_bf16(device: torch.device) -> bool:
    """True where ``device`` computes in bf16 natively: CUDA compute capability 8.0+ (Ampere,
    Hopper, ...) or ROCm. ``torch.cuda.is_bf16_supported()`` also counts emulation (V100, T4
    run bf16 through fp32 kernels, slower than fp16) and asks about the *current* device, not
    the chosen one."""
    if device.type != "cuda":
        return False
    if torch.version.hip:
        return True
    major, _ = torch.cuda.get_device_capability(cuda_device(device))
    return major >= 8


def mps_bf16() -> bool:
    """bf16 kernels on Apple GPUs need macOS 14 (MPSGraph bfloat16)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available() and mps.is_macos_or_newer(14, 0))


def memory_reserved(device: torch.device) -> int | None:
    """Bytes the caching allocator holds on an accelerator (what ``nvidia-smi`` counts, less
    the CUDA context); None on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.memory_reserved(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    return None


def release_cached_memory(device: torch.device) -> None:
    """Give the allocator's cached blocks back (after an out-of-memory error, a failed move).

    No ``gc.collect()`` here: this runs on the window's engine thread, where a collection could
    destroy GUI objects from the wrong thread (the window collects on its GUI thread only,
    ``app/gui_gc.py``). The callers drop the exception's frames first, so the tensors a failed
    step held are freed by reference counting before the cache is emptied."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA raises ``torch.OutOfMemoryError``; MPS a plain RuntimeError "MPS backend out of
    memory"."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err)
    )


T = TypeVar("T")


def oom_guarded(
    fn: Callable[[], T],
    device: torch.device,
    on_oom: Callable[[], str],
    cleanup: Callable[[], None] | None = None,
) -> T:
    """``fn()``; when it runs out of memory, drop the exception *before* cleaning up (its
    traceback's frames hold the activations alive), run ``cleanup`` (e.g. drop gradients),
    free the allocator's cache and raise :class:`TrainingError` with ``on_oom()``'s one line.
    Other errors pass through."""
    try:
        return fn()
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        traceback.clear_frames(err.__traceback__)
    # Outside the handler: the exception, its traceback and the frames are gone.
    if cleanup is not None:
        cleanup()
    release_cached_memory(device)
    raise TrainingError(on_oom())


def oom_advice(device: torch.device, what: str, batch_size: int | None, seq_len: int | None) -> str:
    """The one line shown after an out-of-memory error."""
    sizes = ""
    if batch_size is not None and seq_len is not None:
        sizes = f" with batch size {batch_size} and sequence length {seq_len}"
    return (
        f"out of memory on {describe_device(device)} during {what}{sizes}: try a smaller "
        f"--batch-size or --seq-len, and --grad-accum N to keep the same effective batch"
    )


# -- which torch, and why not CUDA ----------------------------------------------------------
def torch_build() -> str:
    """'torch 2.13.0+cu126 (CUDA 12.6)', 'torch 2.13.0+cpu (CPU build)' or '... (ROCm 6.2)'."""
    if torch.version.cuda:
        kind = f"CUDA {torch.version.cuda}"
    elif getattr(torch.version, "hip", None):
        kind = f"ROCm {torch.version.hip}"
    else:
        kind = "CPU build"
    return f"torch {torch.__version__} ({kind})"


def nvidia_gpu_present() -> bool:
    """An NVIDIA driver is installed (``nvidia-smi`` on PATH or ``/proc/driver/nvidia``)."""
    return shutil.which("nvidia-smi") is not None or os.path.isdir("/proc/driver/nvidia")


def cuda_unavailable_reason() -> str | None:
    """Why a GPU this machine has is not used, in one line; None when CUDA works or there is
    no NVIDIA GPU to use."""
    if torch.cuda.is_available() or not nvidia_gpu_present():
        return None
    if not torch.version.cuda:
        return (
            "an NVIDIA GPU is present but this is a CPU build of torch: run `make run TORCH=cu126` "
            "(or the cuXXX variant of your driver's CUDA version, see `nvidia-smi`)"
        )
    return (
        f"an NVIDIA GPU is present but torch (built for CUDA {torch.version.cuda}) cannot use "
        "it: the driver is probably older than that CUDA version (see `nvidia-smi`); install a "
        "matching build, e.g. `make run TORCH=cu126` (README, GPU)"
    )


def startup_summary(device: torch.device) -> str:
    """One line for start-up: the torch build, the device in use and, if a GPU goes unused,
    why."""
    line = f"{torch_build()}, device {describe_device(device)}"
    reason = cuda_unavailable_reason()
    return f"{line}; {reason}" if reason else line


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def move_module(module: nn.Module, device: torch.device, what: str = "the model") -> None:
    """``module.to(device)``, all or nothing: if it fails part-way (out of memory on the GPU, or
    any other error), every tensor goes back where it was, the allocator's cache is freed, and
    :class:`DeviceError` says so in one line."""
    first = next(module.parameters(), None)
    home = first.device if first is not None else torch.device("cpu")
    try:
        module.to(device)
        return
    except Exception as err:  # any failure leaves a half-moved module: undo it below
        oom = is_out_of_memory(err)
        detail = _first_line(err)
        traceback.clear_frames(err.__traceback__)
    # Outside the handler, so the exception's frames no longer hold the moved tensors.
    module.to(home)
    release_cached_memory(device)
    if oom:
        need = sum(p.numel() * p.element_size() for p in module.parameters())
        raise DeviceError(
            f"not enough memory on {describe_device(device)} for {what} "
            f"({need / 2**20:,.0f} MiB of weights); it stays on {home}"
        )
    raise DeviceError(f"could not move {what} to {device} ({detail}); it stays on {home}")
