"""Metrics against values worked out by hand on fixed confusion matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import InputError
from core.finetune.metrics import (
    classification_metrics,
    confusion_matrix,
    from_confusion,
    regression_metrics,
)


def test_three_class_metrics_equal_hand_computed_values():
    # rows true, columns predicted: a=(5,2,1) b=(1,6,0) c=(0,3,2); 20 examples, 13 right
    m = np.array([[5, 2, 1], [1, 6, 0], [0, 3, 2]])
    r = from_confusion(m, ("a", "b", "c"))
    assert r.accuracy == pytest.approx(13 / 20)
    np.testing.assert_allclose(r.precision, [5 / 6, 6 / 11, 2 / 3])
    np.testing.assert_allclose(r.recall, [5 / 8, 6 / 7, 2 / 5])
    f1 = [
        2 * p * q / (p + q)
        for p, q in zip([5 / 6, 6 / 11, 2 / 3], [5 / 8, 6 / 7, 2 / 5], strict=True)
    ]
    np.testing.assert_allclose(r.f1, f1)
    assert r.macro_f1 == pytest.approx(sum(f1) / 3)
    assert r.mcc is None
    assert r.to_json()["confusion"] == m.tolist()


def test_two_class_mcc_and_the_matrix_from_labels():
    y_true = np.array([0] * 6 + [1] * 4)  # tn=4 fp=2 fn=1 tp=3
    y_pred = np.array([0, 0, 0, 0, 1, 1, 0, 1, 1, 1])
    m = confusion_matrix(y_true, y_pred, 2)
    assert m.tolist() == [[4, 2], [1, 3]]
    r = classification_metrics(y_true, y_pred, ("no", "yes"))
    assert r.mcc == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5))
    assert r.accuracy == pytest.approx(0.7)


def test_a_class_never_predicted_scores_zero_not_nan():
    r = from_confusion(np.array([[3, 0], [2, 0]]), ("x", "y"))
    assert r.precision.tolist() == [0.6, 0.0] and r.f1[1] == 0.0 and r.mcc == 0.0


def test_regression_pearson_and_spearman_with_ties():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = np.array([2.0, 1.0, 4.0, 4.0, 6.0])
    r = regression_metrics(t, p)
    # Spearman: ranks of p are 2,1,3.5,3.5,5 against 1..5
    rp = np.array([2, 1, 3.5, 3.5, 5]) - 3
    rt = np.arange(1, 6) - 3
    assert r.spearman == pytest.approx((rp * rt).sum() / math.sqrt((rp**2).sum() * (rt**2).sum()))
    assert r.pearson == pytest.approx(np.corrcoef(t, p)[0, 1])
    assert r.mse == pytest.approx(np.mean((t - p) ** 2))


def test_no_examples_is_refused():
    with pytest.raises(InputError, match="no examples"):
        from_confusion(np.zeros((2, 2)), ("a", "b"))
