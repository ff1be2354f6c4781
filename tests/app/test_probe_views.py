"""The Probe views show exactly what ``core`` computes, for BERT and ALBERT."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PySide6.QtCore import QPointF, Qt

from core.analysis import (
    attention_stats,
    layer_stats,
    pca_all_layers,
    predict_masked,
    probe,
    token_focus,
)
from core.config import Heads
from core.loaded_model import load_model
from tests.app.helpers import (
    TEXT,
    WAIT_MS,
    probe_and_wait,
    select_model,
    start_and_wait,
    wait_idle,
)

MASKED = "the [MASK] came to the city ."


@pytest.fixture(scope="module")
def core_models(demo_root):
    return {name: load_model(demo_root / name) for name in ("bert-mini", "albert-mini")}


def test_heatmap_shows_core_attention_and_follows_layer_and_head(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    expected = probe(core_models["bert-mini"], TEXT)
    assert heatmap.analysis.result.token_strings == expected.token_strings
    assert_allclose(heatmap.plot.image.image, expected.attentions[0, 0], atol=1e-6)

    # switch layer and head through the real combo boxes
    heatmap.layer_box.setCurrentIndex(1)
    assert_allclose(heatmap.plot.image.image, expected.attentions[1, 0], atol=1e-6)
    heatmap.head_box.setCurrentIndex(3)
    assert_allclose(heatmap.plot.image.image, expected.attentions[1, 3], atol=1e-6)
    assert heatmap.plot.titleLabel.text == "layer 2 \u00b7 head 4 \u00b7 colours 0\u20131"

    stats = attention_stats(expected)
    heatmap.head_box.setCurrentIndex(heatmap.head_box.findText("mean over heads"))
    assert_allclose(heatmap.plot.image.image, stats.mean_maps[1], atol=1e-6)
    heatmap.head_box.setCurrentIndex(heatmap.head_box.findText("rollout"))
    assert_allclose(heatmap.plot.image.image, stats.rollout[1], atol=1e-6)

    # keyboard: Alt+Up goes back one layer
    heatmap.head_box.setCurrentIndex(2)
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert heatmap.layer == 0
    assert_allclose(heatmap.plot.image.image, expected.attentions[0, 2], atol=1e-6)

    # fixed colour levels and token labels on both axes
    assert tuple(heatmap.plot.image.getLevels()) == (0.0, 1.0)
    assert heatmap.plot.row_axis.labels == expected.token_strings
    assert heatmap.plot.col_axis.labels == expected.token_strings


def test_hovering_a_cell_reads_out_tokens_and_exact_weight(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    heatmap = window.probe.heatmap
    expected = probe(core_models["bert-mini"], TEXT)
    qtbot.waitUntil(lambda: heatmap.plot.getViewBox().width() > 50, timeout=WAIT_MS)
    row, col = 2, 5
    view = heatmap.canvas
    weight = expected.attentions[0, 0, row, col]
    tokens = expected.token_strings

    def hover_reads_out_the_cell() -> None:
        # mapped again on every try: the axes may still be settling their widths
        scene_pos = heatmap.plot.getViewBox().mapViewToScene(QPointF(col, row))
        qtbot.mouseMove(view.viewport(), view.mapFromScene(scene_pos))
        assert heatmap.readout.text().startswith(
            f"from #{row} {tokens[row]!r} \u2192 to #{col} {tokens[col]!r}: {weight:.4f}"
        )

    qtbot.waitUntil(hover_reads_out_the_cell, timeout=WAIT_MS)


def test_head_grid_has_a_cell_per_effective_layer_and_head(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    grid = window.probe.grid
    bert = core_models["bert-mini"].config
    assert len(grid.cells) == bert.effective_layers * bert.num_attention_heads == 8
    expected = probe(core_models["bert-mini"], TEXT)
    assert_allclose(grid.cell(1, 2).image.image, expected.attentions[1, 2], atol=1e-6)

    # clicking a cell opens that head in the big heatmap
    cell = grid.cell(1, 3)
    view_pos = cell.view.mapViewToScene(QPointF(1, 1))
    qtbot.mouseClick(
        grid.canvas.viewport(), Qt.MouseButton.LeftButton, pos=grid.canvas.mapFromScene(view_pos)
    )
    heatmap = window.probe.heatmap
    assert (heatmap.layer, heatmap.head) == (1, 3)
    assert_allclose(heatmap.plot.image.image, expected.attentions[1, 3], atol=1e-6)
    assert grid.highlighted == (1, 3)

    # ALBERT: 2 layers used twice each -> 4 effective layers
    albert = core_models["albert-mini"]
    bundle = select_model(qtbot, window, "demo:albert-mini")
    assert bundle.result.model_type == "albert"
    assert albert.config.effective_layers == 4
    assert len(grid.cells) == 4 * albert.config.num_attention_heads
    expected = probe(albert, TEXT)
    assert_allclose(grid.cell(3, 1).image.image, expected.attentions[3, 1], atol=1e-6)
    assert heatmap.layer_box.count() == 4
    heatmap.layer_box.setCurrentIndex(3)
    heatmap.head_box.setCurrentIndex(1)
    assert_allclose(heatmap.plot.image.image, expected.attentions[3, 1], atol=1e-6)


def test_typing_and_enter_probes_the_typed_sentence(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    text = "he saw the light ."
    bundle = probe_and_wait(qtbot, window, text)
    assert bundle.result.text == text
    expected = probe(core_models["bert-mini"], text)
    assert window.probe.strip.tokens == expected.tokens
    assert_allclose(window.probe.heatmap.plot.image.image, expected.attentions[0, 0], atol=1e-6)
    engine_ms = window.state.probe_job.seconds * 1000  # the job whose result is on screen
    assert window.probe.status.text() == f"{len(expected.tokens)} tokens \u00b7 {engine_ms:.0f} ms"


def test_masked_words_match_core_for_bert_and_albert(qtbot, window, core_models):
    start_and_wait(qtbot, window, MASKED)
    for key, name in (("demo:bert-mini", "bert-mini"), ("demo:albert-mini", "albert-mini")):
        bundle = (
            select_model(qtbot, window, key) if name == "albert-mini" else window.state.analysis
        )
        assert bundle.result.model_name == name
        expected = probe(core_models[name], MASKED, top_k=5)
        shown = window.probe.masked.predictions()
        assert len(shown) == len(expected.masked) == 1
        title, rows = shown[0]
        assert title == f"[MASK] at #{expected.masked[0].position}"
        assert [t for t, _ in rows] == expected.masked[0].tokens
        assert_allclose([p for _, p in rows], expected.masked[0].probs, atol=1e-6)


def test_mask_and_predict_from_the_token_menu(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    strip = window.probe.strip
    position = 2  # "lord"
    assert strip.tokens[position].text == "lord"
    menu = strip.menu_for(position)
    action = next(a for a in menu.actions() if a.text().startswith("Mask and predict"))
    assert action.isEnabled()
    with qtbot.waitSignal(window.state.masked, timeout=WAIT_MS) as blocker:
        action.trigger()
    expected = predict_masked(core_models["bert-mini"], TEXT, position, top_k=5)
    assert blocker.args[0].prediction.tokens == expected.tokens
    title, rows = window.probe.masked.predictions()[0]
    assert title == "#2 'lord' masked"
    assert [t for t, _ in rows] == expected.tokens
    assert_allclose([p for _, p in rows], expected.probs, atol=1e-6)
    # special tokens cannot be masked
    cls_menu = strip.menu_for(0)
    assert not next(a for a in cls_menu.actions() if a.text().startswith("Mask")).isEnabled()


def test_token_focus_statistics_and_layer_outputs_match_core(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    expected = probe(core_models["bert-mini"], TEXT)
    strip, focus = window.probe.strip, window.probe.focus
    # click "came" in the token strip
    with qtbot.waitSignal(focus.focused, timeout=WAIT_MS):
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.rects[3].center().toPoint())
    assert focus.index == 3
    stats = attention_stats(expected)
    assert_allclose(focus.weights, stats.mean_maps[:, 3, :], atol=1e-6)
    focus.head_box.setCurrentIndex(focus.head_box.findData(1))
    assert_allclose(focus.weights, token_focus(expected, 3)[:, 1, :], atol=1e-6)

    shown = window.probe.statistics.values
    for name in stats.PER_HEAD:
        assert_allclose(shown[name], getattr(stats, name), atol=1e-6)
        assert_allclose(
            window.probe.statistics.plots[name].image.image, getattr(stats, name), atol=1e-6
        )
    assert not window.probe.statistics.plots["a_to_b"].isVisible()

    layers = window.probe.layers
    lstats = layer_stats(expected)
    assert_allclose(layers.norms.image.image, lstats.norms, rtol=1e-5)
    x, y = layers.l2_all.getData()
    assert_allclose(x, np.arange(1, expected.num_layers + 1))
    assert_allclose(y, lstats.l2_mean, rtol=1e-5)
    assert_allclose(layers.cos_all.getData()[1], lstats.cosine_mean, rtol=1e-5)
    pca = pca_all_layers(expected)
    assert layers.slider.value() == expected.num_layers
    assert_allclose(layers.positions, pca[-1], atol=1e-4)


def test_pca_slider_glides_between_layer_projections(qtbot, window, core_models):
    from app.probe.layer_outputs import ANIMATION_MS

    start_and_wait(qtbot, window)
    layers = window.probe.layers
    pca = pca_all_layers(probe(core_models["bert-mini"], TEXT))
    start = layers.positions.copy()
    assert_allclose(start, pca[-1], atol=1e-4)
    layers.slider.setValue(0)
    animation = layers.animation
    assert animation.state() == animation.State.Running
    # step the animation by hand (frame timing on a loaded machine is not deterministic)
    animation.pause()
    animation.setCurrentTime(ANIMATION_MS // 2)
    middle = layers.positions.copy()
    t = animation.currentValue()
    assert 0.0 < t < 1.0
    assert_allclose(middle, start + (pca[0] - start) * t, atol=1e-4)  # on the way, not a jump
    assert not np.allclose(middle, start, atol=1e-3) and not np.allclose(middle, pca[0], atol=1e-3)
    animation.setCurrentTime(ANIMATION_MS)
    assert_allclose(layers.positions, pca[0], atol=1e-4)
    assert layers.layer_label.text() == "embeddings"


def test_sentence_pair_marks_segments_and_filters_cross_attention(qtbot, window, core_models):
    start_and_wait(qtbot, window)
    bundle = probe_and_wait(qtbot, window, "the king came .", "he saw the city .")
    result = bundle.result
    expected = probe(core_models["bert-mini"], "the king came .", "he saw the city .")
    assert [t.segment for t in result.tokens] == [t.segment for t in expected.tokens]
    assert {t.segment for t in window.probe.strip.tokens} == {0, 1}
    statistics = window.probe.statistics
    assert statistics.plots["a_to_b"].isVisible()
    from core.analysis import pair_blocks

    blocks = pair_blocks(expected)
    assert_allclose(statistics.values["a_to_b"], blocks["a_to_b"], atol=1e-6)
    assert_allclose(statistics.values["b_to_a"], blocks["b_to_a"], atol=1e-6)

    focus = window.probe.focus
    assert focus.filter_box.isEnabled()
    focus.show_token(2)  # "king", text A
    focus.filter_box.setCurrentIndex(1)  # A -> B
    in_b = np.array([t.sequence == 1 for t in expected.tokens])
    mean = attention_stats(expected).mean_maps[:, 2, :]
    assert_allclose(focus.weights[:, in_b], mean[:, in_b], atol=1e-6)
    assert np.all(focus.weights[:, ~in_b] == 0)
    focus.filter_box.setCurrentIndex(2)  # B -> A, but "king" is in A: nothing to show
    assert np.all(focus.weights == 0)
    assert "pick a token of text B" in focus.title.text()


def test_a_newer_sentence_supersedes_an_older_probe(qtbot, window):
    start_and_wait(qtbot, window)
    seen = []
    window.state.probed.connect(lambda b: seen.append(b.result.text))
    state = window.state
    with qtbot.waitSignal(
        state.probed, timeout=WAIT_MS, check_params_cb=lambda b: b.result.text == "c ."
    ):
        for text in ("a .", "b .", "c ."):
            state.request_probe(text)
    wait_idle(qtbot, window)  # every job has ended: a stale result would have arrived by now
    assert seen == ["c ."]
    assert window.probe.heatmap.analysis.result.text == "c ."


def test_a_model_without_mlm_head_says_so_and_disables_mask_and_predict(qtbot, window, tmp_path):
    from tests.tiny_models import engine_checkpoint, tiny_config

    folder = engine_checkpoint(
        tmp_path / "encoder-only", tiny_config("bert"), heads=Heads(pooler=True)
    )
    start_and_wait(qtbot, window)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        window.state.open_folder(folder)
    result = blocker.args[0].result
    assert not result.has_mlm
    assert window.probe.masked.predictions() == []
    assert window.probe.masked.note.text() == result.note
    menu = window.probe.strip.menu_for(2)
    action = next(a for a in menu.actions() if a.text().startswith("Mask and predict"))
    assert not action.isEnabled()
    assert "heads: pooler<br>" in window.card.title.text()
