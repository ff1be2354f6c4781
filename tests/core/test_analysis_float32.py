"""Entropy and PCA in float32 keep four significant digits at 512 tokens (a base-size model's
maximum), against float64 references computed here the textbook way."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from core.analysis.attention import entropy
from core.analysis.hidden_states import _pca

T = 512


def test_entropy_in_float32_keeps_four_significant_digits():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, T, T)) * np.array([0.5, 3.0, 8.0])[None, :, None, None]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)  # diffuse, peaked and near one-hot heads
    p32 = p.astype(np.float32)
    p64 = p32.astype(np.float64)
    reference = -(p64 * np.log(np.where(p64 > 0, p64, 1.0))).sum(-1).mean(-1)
    got = entropy(p32)
    assert got.dtype == np.float32
    assert_allclose(got, reference, rtol=5e-5)


def _reference_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA by float64 SVD, signs fixed as core fixes them (largest |loading| positive)."""
    projections, ratios = [], []
    for layer in x.astype(np.float64):
        centred = layer - layer.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        v = vt[:2].T  # (H, 2)
        signs = np.sign(v[np.abs(v).argmax(axis=0), [0, 1]])
        projections.append((centred @ v) * signs)
        ratios.append(s[:2] ** 2 / (s**2).sum())
    return np.stack(projections), np.stack(ratios)


def test_pca_in_float32_keeps_four_significant_digits():
    rng = np.random.default_rng(1)
    # hidden states as transformers make them: a few strong directions over isotropic noise
    layers, hidden = 3, 96
    basis = rng.standard_normal((4, hidden))
    weights = rng.standard_normal((layers, T, 4)) * np.array([12.0, 6.0, 3.0, 1.5])
    x = (weights @ basis + rng.standard_normal((layers, T, hidden))).astype(np.float32)
    proj, ratio = _pca(x)
    ref_proj, ref_ratio = _reference_pca(x)
    assert proj.dtype == np.float32
    for layer in range(layers):
        scale = np.abs(ref_proj[layer]).max()
        assert_allclose(proj[layer], ref_proj[layer], rtol=0, atol=5e-4 * scale)
    assert_allclose(ratio, ref_ratio, rtol=5e-4)
