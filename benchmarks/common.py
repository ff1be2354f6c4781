"""Shared helpers for the benchmark scripts: timing, machine description, transformers twins."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def median_ms(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def transformers_twin(loaded, attn_implementation: str):
    """The transformers model with the engine model's weights (via a saved checkpoint)."""
    import tempfile

    import transformers

    from core.api import save_model
    from core.checkpoint import hf_architecture

    with tempfile.TemporaryDirectory() as tmp:
        save_model(loaded, tmp)
        cls = getattr(transformers, hf_architecture(loaded.config, loaded.heads))
        return cls.from_pretrained(tmp, attn_implementation=attn_implementation).eval()
