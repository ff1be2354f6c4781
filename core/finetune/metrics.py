"""Classification and regression metrics, computed from numpy arrays alone (no torch), the
same on dev during training and on test at the end: accuracy, macro-F1, per-class
precision/recall/F1, the confusion matrix, Matthews correlation for two classes, and
Pearson/Spearman correlation for regression."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.errors import InputError


@dataclass(frozen=True)
class ClassificationMetrics:
    """``confusion[i, j]``: examples of true class i predicted as j."""

    labels: tuple[str, ...]
    confusion: np.ndarray  # (C, C) int64
    accuracy: float
    macro_f1: float
    precision: np.ndarray  # (C,)
    recall: np.ndarray  # (C,)
    f1: np.ndarray  # (C,)
    mcc: float | None  # two classes only

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("confusion", "precision", "recall", "f1"):
            data[key] = data[key].tolist()
        data["labels"] = list(self.labels)
        return data


@dataclass(frozen=True)
class RegressionMetrics:
    pearson: float
    spearman: float
    mse: float

    def to_json(self) -> dict:
        return asdict(self)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (a class never predicted or never present), as sklearn's
    ``zero_division=0``."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise InputError(f"{y_true.size} labels but {y_pred.size} predictions")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def from_confusion(confusion: np.ndarray, labels: tuple[str, ...]) -> ClassificationMetrics:
    """Every classification metric from the confusion matrix (rows true, columns predicted)."""
    m = np.asarray(confusion, dtype=np.int64)
    if m.shape != (len(labels), len(labels)):
        raise InputError(f"confusion matrix {m.shape} does not fit {len(labels)} labels")
    total = m.sum()
    if total == 0:
        raise InputError("no examples to score")
    tp = np.diag(m).astype(np.float64)
    precision = _ratio(tp, m.sum(0).astype(np.float64))
    recall = _ratio(tp, m.sum(1).astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    mcc = None
    if len(labels) == 2:
        (tn, fp), (fn, tp1) = m.astype(np.float64)
        den = np.sqrt((tp1 + fp) * (tp1 + fn) * (tn + fp) * (tn + fn))
        mcc = float((tp1 * tn - fp * fn) / den) if den > 0 else 0.0
    return ClassificationMetrics(
        labels=tuple(labels),
        confusion=m,
        accuracy=float(tp.sum() / total),
        macro_f1=float(f1.mean()),
        precision=precision,
        recall=recall,
        f1=f1,
        mcc=mcc,
    )


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]
) -> ClassificationMetrics:
    return from_confusion(confusion_matrix(y_true, y_pred, len(labels)), labels)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), as Spearman's rho needs."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    return (sums / counts)[inverse]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.size < 2:
        raise InputError("regression metrics need at least two matching scores")
    return RegressionMetrics(
        pearson=_pearson(y_true, y_pred),
        spearman=_pearson(_ranks(y_true), _ranks(y_pred)),
        mse=float(((y_true - y_pred) ** 2).mean()),
    )
