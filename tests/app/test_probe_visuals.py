"""The Probe tab's pictures at laptop size: colour-bar tick labels that fit their axis, every
row of the norm heatmap labelled, ALBERT's norms each layer to its own range by default, PCA
labels that never overlap, every head of a 12-head grid on screen, the clicked token's row
outlined, the masked token marked, no left-over tab bar at start-up, a newcomer's hint, long
pieces elided with the whole piece on hover, and a short input's matrix filling its panel."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QTabBar

from app.probe.head_grid import MIN_HEAD_CELL_PX
from app.probe.layer_outputs import OWN_RANGE_RATIO, range_ratio
from tests.app.helpers import WAIT_MS, probe_and_wait, select_model, start_and_wait
from tests.tiny_models import engine_checkpoint, tiny_config

PIECES = "the kingab came to the cityc ."  # pieces: "words" merges them
LONG = " ".join(["the lord came to the city and saw the light of day ."] * 3)  # 30+ tokens


def widest_tick(bar) -> float:
    axis = bar.axis
    low, high = bar.levels()
    metrics = QFontMetricsF(axis.style["tickFont"] or QFont())
    return max(
        metrics.horizontalAdvance(text)
        for spacing, values in axis.tickValues(low, high, axis.height())
        for text in axis.tickStrings(values, axis.scale, spacing)
    )


def test_colour_bar_axes_are_as_wide_as_their_tick_labels(qtbot, window):
    start_and_wait(qtbot, window)
    window.resize(1280, 720)
    probe = window.probe
    probe.docks["statistics"].raise_()
    qtbot.waitUntil(lambda: probe.statistics.isVisible(), timeout=5000)
    bars = {
        "heatmap": (probe.heatmap.plot.colorbar, probe.heatmap.canvas),
        "entropy": (probe.statistics.entropy_bar, probe.statistics.canvas),
        "mass": (probe.statistics.mass_bar, probe.statistics.canvas),
    }
    probe.docks["layers"].raise_()
    qtbot.waitUntil(lambda: probe.layers.isVisible(), timeout=5000)
    bars["norms"] = (probe.layers.norms.colorbar, probe.layers.norms_canvas)
    for name, (bar, _canvas) in bars.items():
        axis = bar.axis
        room = axis.width() - axis.style["tickTextOffset"][0] - max(0, axis.style["tickLength"])
        assert room >= widest_tick(bar), (name, axis.width(), widest_tick(bar))
    # the norms' levels are the data's own (about 5.66 here): labels with decimals
    low, high = probe.layers.norms.colorbar.levels()
    assert_allclose(
        (low, high),
        (
            probe.layers.analysis.layers.norms.min(),
            max(probe.layers.analysis.layers.norms.max(), low + 1e-3),
        ),
    )
    # the heatmap's bar ends inside its canvas: nothing is cut at the right edge
    bar, canvas = bars["heatmap"]
    right = bar.mapRectToScene(bar.boundingRect()).right()
    assert right <= canvas.viewport().width() + 0.5


def test_every_norm_row_is_labelled_at_laptop_size(qtbot, window):
    analysis = start_and_wait(qtbot, window)
    window.resize(1280, 720)
    layers = window.probe.layers
    window.probe.docks["layers"].raise_()
    qtbot.waitUntil(lambda: layers.isVisible(), timeout=5000)
    layers.norms_canvas.grab()  # paint the axes
    rows = analysis.layers.norms.shape[0]
    assert layers.norms.row_axis.labels[:2] == ["emb", "L1"]
    assert layers.norms.row_axis.drawn == list(range(rows))


def test_albert_norms_default_to_each_layer_its_own_range(qtbot, window):
    bert = start_and_wait(qtbot, window)
    layers = window.probe.layers
    assert range_ratio(bert.layers.norms) < OWN_RANGE_RATIO  # the tiny BERT's are all ~5.66
    assert not layers.norms_per_layer.isChecked()
    albert = select_model(qtbot, window, "demo:albert-mini")
    norms = albert.layers.norms
    floor = 1e-3 * np.abs(norms).max()
    ratio = max(np.ptp(norms), floor) / max(np.ptp(norms[1:]), floor)
    assert ratio > 3 and math.isclose(range_ratio(norms), ratio, rel_tol=1e-6)
    assert layers.norms_per_layer.isChecked()
    low, high = norms.min(axis=1, keepdims=True), norms.max(axis=1, keepdims=True)
    assert_allclose(
        layers.norms.image.image, (norms - low) / np.maximum(high - low, 1e-6), atol=1e-5
    )
    title = layers.norms.titleLabel.text
    assert "each layer to its own range" in title and f"{ratio:.0f}\u00d7" in title
    layers.norms_per_layer.click()  # the user's choice sticks from now on
    assert not layers.norms_per_layer.isChecked()
    select_model(qtbot, window, "demo:bert-mini")
    select_model(qtbot, window, "demo:albert-mini")
    assert not layers.norms_per_layer.isChecked()
    assert layers.norms.titleLabel.text == "hidden-state L2 norm"


def test_pca_labels_of_a_30_token_input_never_overlap(qtbot, window):
    analysis = start_and_wait(qtbot, window, LONG)
    assert len(analysis.result.tokens) >= 30
    layers = window.probe.layers
    window.probe.docks["layers"].raise_()
    qtbot.waitUntil(lambda: layers.isVisible(), timeout=5000)
    assert len(layers.labels) == len(analysis.result.tokens)  # every token may be named
    layers.pca_canvas.grab()
    shown = [item.sceneBoundingRect() for item in layers.labels if item.isVisible()]
    assert len(shown) >= 3
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not a.intersects(b)


@pytest.fixture(scope="module")
def twelve_heads(tmp_path_factory) -> Path:
    """A model root with one 6-layer, 12-head model (MiniLM's shape, tiny sizes)."""
    root = tmp_path_factory.mktemp("twelve")
    engine_checkpoint(
        root / "bert-mini",
        tiny_config("bert", hidden_size=48, num_attention_heads=12, num_hidden_layers=6),
        seed=4,
    )
    return root


def test_a_12_head_grid_shows_every_head_at_laptop_size(qtbot, settings, twelve_heads):
    from app.main_window import MainWindow

    window = MainWindow(settings, demo_root=twelve_heads)
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS):
        window.start(None, "the lord came to the city .", None)
    grid = window.probe.grid
    qtbot.waitUntil(lambda: window.settled and grid.shape == (6, 12), timeout=WAIT_MS)
    qtbot.wait(50)
    view = grid.canvas
    visible = QRectF(view.mapToScene(view.viewport().rect()).boundingRect())
    area = grid.scroll
    scrolls = area.horizontalScrollBar().isVisible() or area.verticalScrollBar().isVisible()
    shown = QRect(area.viewport().mapTo(grid, QPoint(0, 0)), area.viewport().size())
    for cell in grid.cells:
        rect = cell.view.sceneBoundingRect()
        assert rect.width() >= MIN_HEAD_CELL_PX - 0.5, rect
        assert visible.contains(rect), (cell.layer, cell.head, rect, visible)
        top_left = view.mapTo(grid, view.mapFromScene(rect.topLeft()))
        bottom_right = view.mapTo(grid, view.mapFromScene(rect.bottomRight()))
        inside = shown.contains(top_left) and shown.contains(bottom_right)
        assert inside or scrolls, (cell.layer, cell.head)
    window.close()


def test_the_clicked_token_row_is_outlined_in_the_heatmap(qtbot, window):
    analysis = start_and_wait(qtbot, window, PIECES)
    heatmap, strip = window.probe.heatmap, window.probe.strip
    assert heatmap.outlined_row() is None
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.rects[3].center().toPoint())
    assert heatmap.outlined_row() == 3
    rect = heatmap.focus_outline.rect()
    t = len(analysis.result.tokens)
    assert (rect.left(), rect.width(), rect.height()) == (-0.5, t, 1.0)
    heatmap.select(1, 2)  # another head keeps the row
    assert heatmap.outlined_row() == 3
    with qtbot.waitSignal(window.state.word_level_ready, timeout=WAIT_MS):
        heatmap.words_box.setChecked(True)
    words = window.state.word_views.words
    qtbot.waitUntil(lambda: heatmap.word_level, timeout=WAIT_MS)
    assert heatmap.outlined_row() == words.word_of(3)
    assert heatmap.focus_outline.rect().width() == len(words.labels)


def test_mask_and_predict_marks_the_masked_token_in_the_strip(qtbot, window):
    start_and_wait(qtbot, window)
    strip = window.probe.strip
    assert strip.masked_index is None
    before = strip.grab().toImage()
    with qtbot.waitSignal(window.state.masked, timeout=WAIT_MS):
        window.state.request_mask(2)  # "lord"
    assert strip.masked_index == 2
    assert "masked now" in strip.describe(2) and "masked now" not in strip.describe(3)
    after = strip.grab().toImage()
    rect = strip.rects[2].adjusted(-2, -2, 2, 2).toRect()
    changed = sum(
        before.pixel(x, y) != after.pixel(x, y)
        for x in range(rect.left(), rect.right())
        for y in range(rect.top(), rect.bottom())
    )
    assert changed > 20  # the dashed frame and the struck-out text
    other = strip.rects[4].toRect()
    assert all(
        before.pixel(x, y) == after.pixel(x, y)
        for x in range(other.left() + 2, other.right() - 2)
        for y in range(other.top() + 2, other.bottom() - 2)
    )
    probe_and_wait(qtbot, window, "the city came .")
    assert strip.masked_index is None


def visible_tab_bars(probe) -> list[set[str]]:
    bars = probe.area.findChildren(QTabBar)
    return [{b.tabText(i) for i in range(b.count())} for b in bars if b.isVisibleTo(probe.area)]


def test_start_up_never_shows_a_left_over_tab_bar(qtbot, settings, demo_root):
    """At 1280 px the bottom panels are regrouped into one tab group; the group's old bar
    ("Layer outputs | Head statistics") stayed on screen beside the new one."""
    from app.main_window import MainWindow
    from app.probe.probe_view import FIRST_VIEWS

    window = MainWindow(settings, demo_root=demo_root, defer_plots=True)
    qtbot.addWidget(window)
    window.resize(1280, 720)
    samples = []
    reset = window.reset_layout

    def watched_reset() -> None:
        reset()
        samples.append((visible_tab_bars(window.probe), window.probe.tab_groups()))

    window.reset_layout = watched_reset
    window.show()
    window.start(None, "the lord came .", None)
    window.probe.build_plots(FIRST_VIEWS)
    qtbot.waitUntil(lambda: window.state.analysis is not None, timeout=WAIT_MS)
    window.probe.build_plots()
    for _ in range(20):
        qtbot.wait(10)
        samples.append((visible_tab_bars(window.probe), window.probe.tab_groups()))
    assert len(samples) > 20  # the layout was reset at least once
    for bars, groups in samples:
        assert len(bars) == len(groups) == 1, (bars, groups)
        assert bars == groups  # one bar, with the group's own tabs
    assert samples[-1][1] == [{"Layer outputs", "Head statistics", "Token focus"}]
    window.close()


def test_a_newcomer_hint_shows_until_the_user_acts(qtbot, window):
    from app.probe.probe_view import NEWCOMER_HINT

    start_and_wait(qtbot, window)  # a scripted first probe is not the user acting
    window.resize(1280, 720)
    probe = window.probe
    hint = probe.hint
    qtbot.waitUntil(lambda: hint.isVisible(), timeout=5000)
    for what in ("press Enter", "Head grid", "Compare"):
        assert what in NEWCOMER_HINT
    # the whole line fits at 1280 px (elided, with the full text in the tooltip, below)
    qtbot.waitUntil(lambda: hint.text() == NEWCOMER_HINT, timeout=5000)
    assert hint.toolTip() == NEWCOMER_HINT
    assert window.statusBar().isAncestorOf(hint)  # it costs the panels no height
    probe_and_wait(qtbot, window, "the city came .")  # Enter in the sentence box
    assert not hint.isVisible()


def test_the_newcomer_hint_goes_when_a_head_is_clicked(qtbot, window):
    start_and_wait(qtbot, window)
    probe = window.probe
    assert probe.hint.isVisible()
    probe.grid._on_cell_clicked(1, 2)  # what a click on a cell runs
    assert not probe.hint.isVisible()
    assert (probe.heatmap.layer, probe.heatmap.head) == (1, 2)


def test_a_long_piece_is_elided_on_the_axis_with_the_whole_piece_on_hover(qtbot):
    from app.widgets.matrix_plot import MatrixPlot
    from app.widgets.plot_canvas import PlotCanvas

    canvas = PlotCanvas()
    plot = MatrixPlot(max_label_px=60)
    canvas.addItem(plot)
    qtbot.addWidget(canvas)
    canvas.resize(600, 500)
    canvas.show()
    qtbot.waitExposed(canvas)
    long_piece = "antidisestablishmentarianism"
    labels = ["[CLS]", "the", long_piece, *[f"w{i}" for i in range(8)], "[SEP]"]
    plot.set_labels(labels)
    plot.set_matrix(np.full((12, 12), 1 / 12, dtype=np.float32))
    for axis in (plot.row_axis, plot.col_axis):
        axis.picture = None
        axis.update()
        canvas.grab()
        assert axis.drawn == list(range(12))  # elided, not dropped
        text = axis.drawn_text[2]
        assert text.endswith("\u2026") and text != long_piece
        width = QFontMetricsF(axis.tick_font()).horizontalAdvance(text)
        assert width <= 60
        assert axis.drawn_text[1] == "the"
        at = axis._axis_coord(2.0)
        pos = QPointF(5.0, at) if axis.vertical else QPointF(at, 5.0)
        assert axis.tooltip_at(pos) == f"#2 {long_piece}"


def test_a_short_input_fills_the_heatmap_panel(qtbot, window):
    analysis = start_and_wait(qtbot, window, "the lord came to the city and saw it .")
    t = len(analysis.result.tokens)
    assert 8 <= t <= 24
    window.resize(1280, 720)
    plot = window.probe.heatmap.plot
    view = plot.getViewBox()

    def gaps() -> list[float]:
        image = plot.image.mapRectToScene(plot.image.boundingRect())
        box = view.sceneBoundingRect()
        return [
            abs(image.left() - box.left()),
            abs(image.right() - box.right()),
            abs(image.top() - box.top()),
            abs(image.bottom() - box.bottom()),
        ]

    qtbot.waitUntil(lambda: max(gaps()) < 1.0, timeout=5000)  # no white band on any side
    assert not plot.locked and view.width() > 100
    long = start_and_wait(qtbot, window, LONG)  # a long input keeps square cells, and scrolls
    assert len(long.result.tokens) > 24 and plot.locked
