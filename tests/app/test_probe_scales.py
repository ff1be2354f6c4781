"""Colour scales that show structure, word-level attention in every attention view, and long
inputs in square cells with a brushed span to zoom to."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PySide6.QtGui import QPalette

from app.probe.attention_heatmap import MAX_VISIBLE, MEAN, scale_for_display
from core.analysis import attention_stats, probe
from core.analysis.words import word_attention, word_level
from core.loaded_model import load_model
from tests.app.helpers import WAIT_MS, probe_and_wait, start_and_wait

PIECES = "the kingab came to the cityc ."


@pytest.fixture(scope="module")
def bert(demo_root):
    return load_model(demo_root / "bert-mini")


def test_each_colour_scale_sets_its_levels_and_names_itself(qtbot, window, bert):
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    heatmap.select(1, MEAN)
    raw = attention_stats(probe(bert, window.state.text)).mean_maps[1]
    expected = {
        "fixed": (raw, (0.0, 1.0), "colours 0\u20131"),
        "max": (raw, (0.0, float(raw.max())), f"colours 0\u2013{float(raw.max()):.3g} (max)"),
        "row": (raw / raw.max(axis=1, keepdims=True), (0.0, 1.0), "each row / its max"),
        "gamma": (np.sqrt(raw), (0.0, 1.0), "\u221aweight"),
    }
    for mode, (data, levels, name) in expected.items():
        heatmap.set_scale(mode)
        assert_allclose(heatmap.plot.image.image, data, rtol=1e-5, atol=1e-7)
        assert_allclose(heatmap.plot.image.getLevels(), levels, rtol=1e-6)
        assert name in heatmap.plot.titleLabel.text
        # the head grid follows the scale
        cell = window.probe.grid.cell(0, 2)
        grid_data, grid_levels, _ = scale_for_display(
            window.state.analysis.result.attentions[0, 2], mode
        )
        assert_allclose(cell.image.image, grid_data, rtol=1e-5, atol=1e-7)
        assert_allclose(cell.image.levels, grid_levels, rtol=1e-6)
    # the read-out gives the weight itself, whatever the colours
    assert heatmap.describe_cell(2, 3).endswith(f"{raw[2, 3]:.4f}  (layer 2, mean over heads)")
    heatmap.reset_button.click()
    assert heatmap.scale == "fixed"
    assert tuple(heatmap.plot.image.getLevels()) == (0.0, 1.0)
    assert heatmap.plot.colorbar is not None and not heatmap.plot.colorbar.interactive


def test_dark_theme_lifts_the_colour_map_off_the_background(qtbot, window):
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    window.apply_theme("dark")
    qtbot.waitUntil(lambda: heatmap.plot.floor > 0, timeout=5000)
    background = heatmap.canvas.palette().color(QPalette.ColorRole.Base)
    lowest = heatmap.plot.colorbar.colorMap().map(0.0, mode="qcolor")
    distance = sum(
        abs(a - b) for a, b in zip(lowest.getRgb()[:3], background.getRgb()[:3], strict=True)
    )
    assert (
        distance > 40
    )  # inferno's black (0, 0, 4) on (26, 26, 28) was 68 apart in total: 26+26+24
    window.apply_theme("light")
    qtbot.waitUntil(lambda: heatmap.plot.floor == 0, timeout=5000)


def test_word_level_attention_in_heatmap_grid_and_token_focus(qtbot, window, bert):
    analysis = start_and_wait(qtbot, window, PIECES)
    result = analysis.result
    words = word_level(result)
    heatmap, grid, focus = window.probe.heatmap, window.probe.grid, window.probe.focus
    heatmap.select(1, 3)
    with qtbot.waitSignal(window.state.word_level_ready, timeout=WAIT_MS):
        heatmap.words_box.setChecked(True)  # computed on the engine thread
    expected = word_attention(probe(bert, PIECES).attentions, words)  # (L, heads, W, W)
    assert_allclose(heatmap.plot.image.image, expected[1, 3], atol=1e-6)
    assert heatmap.plot.row_axis.labels == words.labels
    assert "kingab" in heatmap.plot.row_axis.labels
    assert "words" in heatmap.plot.titleLabel.text
    assert heatmap.describe_cell(2, 3).startswith("from word #2 'kingab' \u2192 to word #3 'came'")
    assert_allclose(grid.cell(0, 1).image.image, expected[0, 1], atol=1e-6)
    window.probe.strip.select(3)  # '##a', a piece of 'kingab'
    assert_allclose(
        focus.weights, word_attention(analysis.attention.mean_maps, words)[:, 2], atol=1e-6
    )
    assert "'kingab'" in focus.title.text()
    heatmap.words_box.setChecked(False)
    assert heatmap.plot.image.image.shape == (len(result.tokens),) * 2
    assert focus.weights.shape == (result.num_layers, len(result.tokens))


def test_long_input_keeps_square_cells_and_zooms_to_a_brushed_span(qtbot, window):
    text = " ".join(["the king came to the city ."] * 9)  # 63 words: 64 tokens with [CLS]/[SEP]
    analysis = start_and_wait(qtbot, window, text)
    t = len(analysis.result.tokens)
    assert t > MAX_VISIBLE
    heatmap = window.probe.heatmap
    vb = heatmap.plot.getViewBox()
    assert vb.state["aspectLocked"] == 1.0
    qtbot.waitUntil(lambda: vb.width() > 50, timeout=5000)
    (x0, x1), (y0, y1) = vb.viewRange()
    # opens at the first token, at most MAX_VISIBLE rows or columns of square cells
    assert (x0, y0) == (pytest.approx(-0.5, abs=0.05), pytest.approx(-0.5, abs=0.05))
    assert min(x1 - x0, y1 - y0) <= MAX_VISIBLE + 0.05
    sx = vb.width() / (x1 - x0)
    sy = vb.height() / (y1 - y0)
    assert sx == pytest.approx(sy, rel=0.02)  # square cells
    window.probe.strip.select_span(10, 19)
    (x0, x1), (y0, y1) = vb.viewRange()
    assert (x0, y0) == (pytest.approx(9.5, abs=0.05), pytest.approx(9.5, abs=0.05))
    assert min(x1 - x0, y1 - y0) == pytest.approx(10, abs=0.05)
    assert vb.width() / (x1 - x0) == pytest.approx(vb.height() / (y1 - y0), rel=0.02)
    heatmap.reset_view()
    (x0, x1), (y0, y1) = vb.viewRange()
    assert max(x1 - x0, y1 - y0) >= t - 0.5
    assert window.probe.strip_area.height() <= 2 * window.probe.strip.row_height() + 10


def test_a_short_input_shows_every_row_and_column_filling_the_panel(qtbot, make_window):
    window = make_window()
    window.resize(1280, 720)
    analysis = start_and_wait(qtbot, window)
    t = len(analysis.result.tokens)
    vb = window.probe.heatmap.plot.getViewBox()
    qtbot.waitUntil(lambda: window.settled, timeout=WAIT_MS)  # the panels were arranged

    def whole_matrix_filling_the_view() -> None:  # once the panels have taken their sizes
        (x0, x1), (y0, y1) = vb.viewRange()
        # exactly the matrix: no blank band beside it (its cells need not be square)
        assert (x0, x1) == (pytest.approx(-0.5, abs=0.02), pytest.approx(t - 0.5, abs=0.02))
        assert (y0, y1) == (pytest.approx(-0.5, abs=0.02), pytest.approx(t - 0.5, abs=0.02))

    qtbot.waitUntil(whole_matrix_filling_the_view, timeout=WAIT_MS)


def test_with_words_on_the_next_sentence_arrives_word_level(qtbot, window):
    """The probe and its word-level attention reach the views together: no frame of pieces."""
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    with qtbot.waitSignal(window.state.word_level_ready, timeout=WAIT_MS):
        heatmap.words_box.setChecked(True)
    seen = []
    window.state.probed.connect(lambda _a: seen.append(list(heatmap.plot.row_axis.labels)))
    analysis = probe_and_wait(qtbot, window, PIECES)
    words = word_level(analysis.result)
    assert heatmap.word_level and seen == [words.labels]
    assert window.state.word_views.words.labels == words.labels


def random_attention(tokens: int, seed: int = 0) -> np.ndarray:
    """Rows that sum to 1 with one strong target each, as a long input's heads look."""
    rng = np.random.default_rng(seed)
    m = rng.random((tokens, tokens)) * 0.02
    m[np.arange(tokens), rng.integers(0, tokens, tokens)] += 1.0
    return m / m.sum(axis=1, keepdims=True)


def test_auto_colours_keep_0_to_1_for_11_tokens_and_scale_rows_for_225():
    short, long = random_attention(11), random_attention(225)
    data, levels, name = scale_for_display(short, "auto")
    assert_allclose(data, short, rtol=1e-6)
    assert levels == (0.0, 1.0) and name == "colours 0\u20131"
    data, levels, name = scale_for_display(long, "auto")
    assert_allclose(data.max(axis=1), 1.0, rtol=1e-6)  # every row reaches the top colour
    assert levels == (0.0, 1.0) and name == "colours: each row / its max (auto)"


def test_a_long_input_opens_in_auto_colours_and_0_to_1_is_one_click_away(qtbot, window):
    text = " ".join(["the king came to the city ."] * 9)  # 64 tokens with [CLS]/[SEP]
    analysis = start_and_wait(qtbot, window, text)
    heatmap, grid, focus = window.probe.heatmap, window.probe.grid, window.probe.focus
    assert heatmap.scale == "auto" and heatmap.scale_box.currentText() == "auto"
    assert "each row / its max (auto)" in heatmap.plot.titleLabel.text
    raw = analysis.result.attentions[0, 0]
    assert_allclose(heatmap.plot.image.image, raw / raw.max(axis=1, keepdims=True), rtol=1e-5)
    cell = grid.cell(0, 1)
    raw = analysis.result.attentions[0, 1]
    assert_allclose(cell.image.image, raw / raw.max(axis=1, keepdims=True), rtol=1e-5)
    assert "each row / its max (auto)" in grid.hint.text()
    assert "bars: each row / its max" in focus.title.text()
    heatmap.reset_button.click()
    assert tuple(heatmap.plot.image.getLevels()) == (0.0, 1.0)
    assert "colours 0\u20131" in heatmap.plot.titleLabel.text
    assert tuple(grid.cell(0, 1).image.levels) == (0.0, 1.0)
    assert "bars 0\u20131" in focus.title.text()
