"""The Train tab's curves: accuracies in percent as the Runs table shows them, y axes that
span their data from 0 (not pyqtgraph's ±0.5 around a single point), perplexity on a log axis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.train.series import RunSeries
from app.train.train_curves import TrainCurves, y_range
from core.training import EvalMetrics, ProgressEvent


def _step(step: int, mlm: float) -> ProgressEvent:
    return ProgressEvent(
        kind="step", step=step, total_steps=10, epoch=0.0, losses={"mlm": mlm, "nsp": 0.69,
        "total": mlm + 0.69}, lr=5e-4, tokens_per_s=3000.0, elapsed_s=1.0, eta_s=1.0,
        memory_bytes=None, grad_norm=1.5, tokens_seen=2048 * step,
    )  # fmt: skip


def _eval(step: int, accuracy: float, perplexity: float) -> ProgressEvent:
    metrics = EvalMetrics(
        mlm_loss=math.log(perplexity), mlm_accuracy=accuracy, perplexity=perplexity,
        sentence_task="nsp", sentence_loss=0.69, sentence_accuracy=0.51, n_sequences=64,
        n_masked=300,
    )  # fmt: skip
    return ProgressEvent(
        kind="eval", step=step, total_steps=10, epoch=0.0, losses={}, lr=5e-4,
        tokens_per_s=0.0, elapsed_s=1.0, eta_s=1.0, memory_bytes=None, metrics=metrics,
        tokens_seen=2048 * step,
    )  # fmt: skip


def test_y_range_has_a_floor_and_a_log_axis_spans_the_values():
    assert y_range(np.array([2.1, 2.3]), percent=True) == pytest.approx((0.0, 2.3 * 1.08))
    assert y_range(np.array([0.2]), percent=True) == (0.0, 1.0)  # at least 1% tall
    assert y_range(np.array([99.0]), percent=True) == (0.0, 100.0)
    assert y_range(np.array([0.0])) == (0.0, 1.0)
    low, high = y_range(np.array([105.0, 324.0]), log=True)
    assert (low, high) == pytest.approx((math.log10(105 / 1.25), math.log10(324 * 1.25)))


def test_curves_plot_percent_from_zero_and_perplexity_on_a_log_axis(qtbot):
    curves = TrainCurves()
    qtbot.addWidget(curves)
    curves.resize(900, 500)
    series = RunSeries.from_events(
        [_step(1, 9.0), _step(2, 7.5), _eval(2, 0.021, 575.0), _step(3, 7.0), _eval(3, 0.024, 420.0)]
    )
    curves.show_run("bert-run", series, "bert")
    x, y = curves.curve("bert-run", "mlm_accuracy")
    assert_allclose(x, [4096, 6144])
    assert_allclose(y, [2.1, 2.4])  # percent, as the Runs table's "2.4%"
    acc = curves.plots["mlm_accuracy"]
    (x0, x1), (y0, y1) = acc.viewRange()
    assert y0 == pytest.approx(0.0) and y1 == pytest.approx(2.4 * 1.08)
    assert x0 == pytest.approx(0.0) and x1 == pytest.approx(6144 * 1.03)
    assert "%" in acc.titleLabel.text
    _, y = curves.curve("bert-run", "sentence_accuracy")
    assert_allclose(y, [51.0, 51.0])
    ppl = curves.plots["perplexity"]
    assert ppl.getAxis("left").logMode
    (_, _), (y0, y1) = ppl.viewRange()
    assert (y0, y1) == pytest.approx((math.log10(420 / 1.25), math.log10(575 * 1.25)))
    _, y = curves.curve("bert-run", "perplexity")
    assert_allclose(y, [575.0, 420.0])  # the values themselves; the axis is logarithmic
    (_, _), (y0, y1) = curves.plots["mlm"].viewRange()
    assert (y0, y1) == pytest.approx((0.0, 9.0 * 1.08))
