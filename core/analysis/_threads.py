"""Single-threaded BLAS for the analysis' small linear algebra.

The analyses multiply and decompose matrices of a few dozen rows (a sentence's tokens). For
those, OpenBLAS's worker threads cost far more than they save, and on a busy machine their
spin-waiting makes a 32 x 32 eigendecomposition hundreds of times slower (measured: 1.5 ms
single-threaded vs 150-400 ms with two threads on a loaded two-core host).

So the first analysis limits numpy's BLAS to one thread with ``threadpoolctl``, for the rest of
the process, and nothing ever changes it back: ``openblas_set_num_threads`` is not safe to call
while another thread is inside a BLAS call (the window's engine thread analyses while the main
thread may run numpy), and toggling the limit around every call did exactly that. Torch's own
matmuls use its MKL/OpenMP threads, which this does not touch. Without threadpoolctl the calls
run as they are.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional at run time; declared in pyproject.toml
    ThreadpoolController = None

F = TypeVar("F", bound=Callable[..., Any])
_lock = threading.Lock()
_limit = None  # the threadpoolctl limiter, kept for the life of the process


def blas_single_thread() -> None:
    """Run numpy's BLAS/LAPACK on one thread from now on (set once per process)."""
    global _limit
    if _limit is not None or ThreadpoolController is None:
        return
    with _lock:
        if _limit is None:
            _limit = ThreadpoolController().limit(limits=1, user_api="blas")


def single_threaded(fn: F) -> F:
    """Decorator: :func:`blas_single_thread` before the first call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        blas_single_thread()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
