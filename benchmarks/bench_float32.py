"""Entropy and PCA at 512 tokens: the float64 code as it was against core's float32 code now
(bert-base shapes, random inputs), median of 5. Accuracy is tested in
tests/core/test_analysis_float32.py; this prints the time.

    python -m benchmarks.bench_float32
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script too, not only with -m
    sys.path.insert(0, str(ROOT))


def entropy64(x: np.ndarray) -> np.ndarray:
    """The float64 entropy as core computed it before."""
    x = x.astype(np.float64)
    return (-(x * np.log(np.where(x > 0, x, 1.0))).sum(-1)).mean(-1)


def pca64(x: np.ndarray):
    """The float64 core of the PCA as before: Gram matrices and their eigendecomposition."""
    from core.analysis._threads import blas_single_thread

    blas_single_thread()
    x = x.astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    return np.linalg.eigh(x @ x.transpose(0, 2, 1))


def median_ms(fn: Callable, *args, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    from core.analysis.attention import entropy
    from core.analysis.hidden_states import _pca

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((12, 12, 512, 512)).astype(np.float32) * 3
    attentions = np.exp(logits - logits.max(-1, keepdims=True))
    attentions /= attentions.sum(-1, keepdims=True)
    hidden = rng.standard_normal((13, 512, 768)).astype(np.float32)
    print("| step | float64 ms | float32 ms |")
    print("|---|---:|---:|")
    e64, e32 = median_ms(entropy64, attentions), median_ms(entropy, attentions)
    print(f"| entropy (12, 12, 512, 512) | {e64:.0f} | {e32:.0f} |")
    p64, p32 = median_ms(pca64, hidden), median_ms(_pca, hidden)
    print(f"| PCA of 13 layers (512, 768) | {p64:.0f} | {p32:.0f} |")


if __name__ == "__main__":
    main()
