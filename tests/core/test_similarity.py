"""CKA, JS distance and classical MDS against direct computations."""

import numpy as np

from core.analysis.similarity import classical_mds, js_distance, linear_cka


def test_cka_identity_rotation_scaling_and_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8))
    y = rng.normal(size=(50, 6)) + x[:, :6]
    assert abs(linear_cka(x, x) - 1.0) < 1e-12
    rot, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert abs(linear_cka(x @ rot * 3.5, y) - linear_cka(x, y)) < 1e-12
    h = np.eye(50) - 1.0 / 50  # HSIC form with linear kernels
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    direct = np.trace(k @ l_) / np.sqrt(np.trace(k @ k) * np.trace(l_ @ l_))
    assert abs(linear_cka(x, y) - direct) < 1e-12


def test_js_distance_self_zero_symmetric_and_value():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(7), size=5)
    q = rng.dirichlet(np.ones(7), size=5)
    np.testing.assert_allclose(js_distance(p, p), 0.0, atol=1e-12)
    np.testing.assert_allclose(js_distance(p, q), js_distance(q, p), atol=1e-15)
    m = 0.5 * (p[0] + q[0])
    jsd = 0.5 * (p[0] * np.log2(p[0] / m)).sum() + 0.5 * (q[0] * np.log2(q[0] / m)).sum()
    assert abs(js_distance(p, q)[0] - np.sqrt(jsd)) < 1e-12


def test_mds_recovers_planar_distances():
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(10, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    emb = classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=-1), d, atol=1e-9)
