"""Token axes thin their labels so they never overlap; the token strip lays out chips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF

from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas
from app.widgets.token_axis import LABEL_GAP, ordinal


@pytest.fixture
def matrix(qtbot):
    canvas = PlotCanvas()
    plot = MatrixPlot()
    canvas.addItem(plot)
    qtbot.addWidget(canvas)
    canvas.resize(600, 500)
    canvas.show()
    qtbot.waitExposed(canvas)
    return canvas, plot


def drawn_after_paint(qtbot, canvas, axis):
    axis.drawn = []
    axis.picture = None
    axis.update()
    canvas.grab()  # paints synchronously
    return list(axis.drawn)


@pytest.mark.parametrize("n", [12, 128, 512])
def test_labels_never_overlap_at_any_length(qtbot, matrix, n):
    canvas, plot = matrix
    labels = [f"tok{i}" for i in range(n)]
    plot.set_labels(labels)
    plot.set_matrix(np.full((n, n), 1.0 / n, dtype=np.float32))
    line = QFontMetricsF(plot.row_axis.tick_font()).height()
    for axis in (plot.row_axis, plot.col_axis):
        drawn = drawn_after_paint(qtbot, canvas, axis)
        assert drawn, "no labels drawn"
        spacing = np.diff(drawn) * axis.pixels_per_cell()
        assert np.all(spacing >= line * LABEL_GAP - 1e-6)  # one text line of room per label
        assert drawn == axis.visible_indices()
        if n == 12:
            assert drawn == list(range(12))  # short sentences: every token labelled
        else:
            assert len(drawn) < n
    assert plot.image.image.shape == (n, n)


def test_zooming_in_brings_every_label_back(qtbot, matrix):
    canvas, plot = matrix
    n = 512
    plot.set_labels([f"t{i}" for i in range(n)])
    plot.set_matrix(np.zeros((n, n), dtype=np.float32))
    assert len(drawn_after_paint(qtbot, canvas, plot.row_axis)) < 100
    plot.getViewBox().setRange(xRange=(99.5, 109.5), yRange=(99.5, 109.5), padding=0)
    drawn = drawn_after_paint(qtbot, canvas, plot.row_axis)
    assert drawn == list(range(100, 110))


def test_hover_cell_lookup_uses_cell_centres(qtbot, matrix):
    from PySide6.QtCore import QPointF

    _, plot = matrix
    plot.set_matrix(np.arange(12, dtype=np.float32).reshape(3, 4))
    # item coordinates: cell (row, col) spans [col, col+1) x [row, row+1)
    assert plot.image.cell_at(QPointF(0.1, 0.1)) == (0, 0)
    assert plot.image.cell_at(QPointF(3.9, 2.9)) == (2, 3)
    assert plot.image.cell_at(QPointF(4.1, 0.5)) is None
    # and the view shows cell (row, col) centred on the integer ticks (col, row)
    centre = plot.image.mapToView(QPointF(2.5, 1.5))
    assert (centre.x(), centre.y()) == pytest.approx((2.0, 1.0))


def test_token_strip_chips_do_not_overlap_and_pieces_sit_together(qtbot, window):
    from tests.app.helpers import start_and_wait

    start_and_wait(qtbot, window, "the king loved the city .")
    strip = window.probe.strip
    rects: list[QRectF] = strip.rects
    assert len(rects) == len(strip.tokens)
    for a, b in itertools.pairwise(rects):
        assert not a.intersects(b)
    pieces = [i for i, t in enumerate(strip.tokens) if t.continuation]
    assert pieces, "the tiny vocabulary splits loved into love ##d"
    for i in pieces:
        if rects[i].top() == rects[i - 1].top():
            assert rects[i].left() - rects[i - 1].right() < 2  # flush against its word


ELEVEN = "[CLS] the [MASK] of the lord came upon him . [SEP]".split()
NINETEEN = (
    "[CLS] the [MASK] came to the city . [SEP] she saw the [MASK] of his house . [SEP]".split()
)


@pytest.mark.parametrize(
    ("labels", "size"),
    [(ELEVEN, (444, 245)), (NINETEEN, (600, 420))],  # the heatmap's panel at 1280x720, 1600x1000
)
def test_every_token_is_labelled_where_the_font_fits(qtbot, labels, size):
    canvas = PlotCanvas()
    plot = MatrixPlot(square=True)  # dressed as the Probe heatmap
    plot.setTitle("layer 1 \u00b7 head 1 \u00b7 colours 0\u20131", size="10pt")
    plot.row_axis.setLabel("from")
    plot.col_axis.setLabel("to")
    canvas.addItem(plot)
    qtbot.addWidget(canvas)
    canvas.resize(*size)
    canvas.show()
    qtbot.waitExposed(canvas)
    for axis in (plot.row_axis, plot.col_axis):
        axis.set_max_label_px(52)
    n = len(labels)
    plot.set_labels(labels)
    plot.set_matrix(np.full((n, n), 1.0 / n, dtype=np.float32))
    for axis in (plot.row_axis, plot.col_axis):
        qtbot.waitUntil(lambda axis=axis: drawn_after_paint(qtbot, canvas, axis) == list(range(n)))
    assert plot.row_axis.labelText == "from"  # nothing dropped, nothing to say
    # cells smaller than the smallest font: labels are dropped and the title says so
    plot.set_labels([f"t{i}" for i in range(3 * n)])
    plot.set_matrix(np.full((3 * n, 3 * n), 1.0 / n, dtype=np.float32))
    qtbot.waitUntil(lambda: 1 < len(drawn_after_paint(qtbot, canvas, plot.row_axis)) < 3 * n)
    drawn = plot.row_axis.drawn
    step = drawn[1] - drawn[0]
    assert step > 1 and np.all(np.diff(drawn) == step)
    assert plot.row_axis.labelText == f"from (every {ordinal(step)} token labelled)"
