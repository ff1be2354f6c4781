"""Single-threaded BLAS for the analysis' small linear algebra.

The analyses multiply and decompose matrices of a few dozen rows (a sentence's tokens). For
those, OpenBLAS's worker threads cost far more than they save, and on a busy machine their
spin-waiting makes a 32 x 32 eigendecomposition hundreds of times slower (measured: 1.5 ms
single-threaded vs 150-400 ms with two threads on a loaded two-core host). ``threadpoolctl``
limits numpy's BLAS to one thread for the duration of a call; without it the calls run as they
are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, TypeVar

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional at run time; declared in pyproject.toml
    ThreadpoolController = None

F = TypeVar("F", bound=Callable[..., Any])
_controller = None


def blas_single_thread():
    """A context manager that runs numpy's BLAS/LAPACK on one thread."""
    global _controller
    if ThreadpoolController is None:
        return nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()  # inspects the loaded libraries once
    return _controller.limit(limits=1, user_api="blas")


def single_threaded(fn: F) -> F:
    """Decorator form of :func:`blas_single_thread`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_single_thread():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
