"""Pure maths for corpus-level comparisons: linear CKA (Kornblith et al. 2019), the
Jensen-Shannon distance between attention distributions (Clark et al. 2019's head clustering)
and classical multidimensional scaling (Torgerson), an exact eigen-decomposition."""

from __future__ import annotations

import numpy as np

from core.errors import InputError


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations (n, p) and (n, q) of the same n examples:
    ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred Xc, Yc."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise InputError(
            f"CKA needs (n, p) and (n, q) with the same n >= 2, got {x.shape}, {y.shape}"
        )
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) between distributions on the last axis:
    the square root of the JS divergence, as ``scipy.spatial.distance.jensenshannon``."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        safe = np.where(a > 0, a / np.where(m > 0, m, 1.0), 1.0)
        return (a * np.log2(safe)).sum(axis=-1)

    return np.sqrt(np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, None))


def classical_mds(distances: np.ndarray, dims: int = 2) -> np.ndarray:
    """(n, dims) coordinates whose Euclidean distances best fit ``distances`` (n, n):
    double-centre the squared distances and keep the top eigenvectors (Torgerson 1952)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise InputError(f"distances must be a square matrix, got {d.shape}")
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    values, vectors = np.linalg.eigh(b)
    order = np.argsort(values)[::-1][:dims]
    return vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
