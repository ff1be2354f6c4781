"""The Compare tab's side-by-side page: what it shows equals what ``core`` computes (attention
cells, layer curves, head statistics, masked words), the selection is linked across models of
different depth, and character-aligned highlighting maps the right pieces between the shipped
demo models' WordPiece and Unigram tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.probe.attention_heatmap import MEAN, ROLLOUT
from app.probe.calls import DEMO_ROOT
from core.analysis import attention_stats, layer_stats, probe
from core.analysis.side_by_side import head_summary, matching_layer
from core.loaded_model import load_model
from tests.app.helpers import WAIT_MS, open_compare

TEXT = "the lord came to the [MASK] ."
DEMO_TEXT = "the shepherdess walked unto jerusalem , weeping bitterly ."


@pytest.fixture
def tiny(qtbot, demo_root):
    state, view, bundle = open_compare(qtbot, demo_root, TEXT)
    yield state, view, bundle
    state.shutdown()


def test_heatmaps_curves_and_heads_equal_core(tiny, demo_root):
    _state, view, bundle = tiny
    bert = load_model(demo_root / "bert-mini")
    albert = load_model(demo_root / "albert-mini")
    ra, rb = probe(bert, TEXT), probe(albert, TEXT)
    assert (ra.num_layers, rb.num_layers) == (2, 4)  # depths differ: links by relative depth
    view.heatmaps.select(1, 2)
    np.testing.assert_allclose(view.heatmaps.plots[0].data, ra.attentions[1, 2], atol=1e-6)
    np.testing.assert_allclose(view.heatmaps.plots[1].data, rb.attentions[3, 2], atol=1e-6)
    view.heatmaps.select(0, ROLLOUT)
    np.testing.assert_allclose(
        view.heatmaps.plots[1].data, attention_stats(rb).rollout[1], atol=1e-5
    )
    # one shared colour bar, fixed at 0-1 for both maps: no handle re-colours one side only
    a_plot, b_plot = view.heatmaps.plots
    assert a_plot.colorbar is None and not b_plot.colorbar.interactive
    assert b_plot.colorbar.levels() == (0.0, 1.0)
    assert tuple(a_plot.image.levels) == (0.0, 1.0)
    assert list(view.curves.plots) == ["l2_mean", "cosine_mean", "angle_mean_deg"]
    for field in ("l2_mean", "cosine_mean", "angle_mean_deg"):
        for side, result in ((0, ra), (1, rb)):
            x, y = view.curves.curve_data(field, side)
            np.testing.assert_allclose(y, getattr(layer_stats(result), field), rtol=1e-5)
            np.testing.assert_allclose(x, np.arange(1, result.num_layers + 1) / result.num_layers)
    summary = head_summary(attention_stats(rb))
    for field in ("entropy", "to_cls", "to_sep", "to_prev", "to_next"):
        _x, y = view.heads.curve_data(field, 1)
        np.testing.assert_allclose(y, summary[field], rtol=1e-5)
    masks = view.masked.rows()
    assert len(masks) == 1
    top_a = bundle.masks[0].a
    assert masks[0][1][0][0] == top_a.tokens[0]
    assert masks[0][1][0][1] == pytest.approx(float(top_a.probs[0]))


def test_selection_is_linked_by_relative_depth(tiny, qtbot):
    _state, view, _bundle = tiny
    heatmaps = view.heatmaps
    seen = []
    heatmaps.selected.connect(lambda a, b, h: seen.append((a, b, h)))
    heatmaps.head_box.setCurrentIndex(0)
    heatmaps.layer_box.setCurrentIndex(1)
    heatmaps.layer_box.setCurrentIndex(0)
    heatmaps.head_box.setCurrentIndex(heatmaps.head_box.findData(MEAN))
    assert seen[-1] == (0, matching_layer(0, 2, 4), MEAN) == (0, 1, MEAN)
    assert "layer 1 of 2 \u2194 layer 2 of 4 (same relative depth)" in heatmaps.link.text()
    np.testing.assert_allclose(
        heatmaps.plots[1].data, view.session.bundle.b.attention.mean_maps[1], atol=1e-6
    )
    heatmaps.layer_box.setCurrentIndex(1)
    assert heatmaps.layer_b == 3
    assert "layer 2 of 2 \u2194 layer 4 of 4" in heatmaps.link.text()
    # a click on a row of A's heatmap focuses that token in both strips and both heatmaps
    with qtbot.waitSignal(view.strips.token_focused, timeout=1000):
        heatmaps.plots[0].image.clicked.emit(2, 0)
    partners = view.strips.partners(0, 2)
    assert partners  # tiny models share a tokenizer: the same word
    assert heatmaps.focus_rows == ([2], partners)
    assert view.strips.strips[1].highlighted == set(partners)


def test_alignment_highlights_pieces_of_the_demo_tokenizers(qtbot):
    if not (DEMO_ROOT / "bert-mini" / "config.json").is_file():
        pytest.skip("the trained demo models are not in resources/models")
    state, view, bundle = open_compare(qtbot, DEMO_ROOT, DEMO_TEXT)
    try:
        ta, tb = bundle.a.result.token_strings, bundle.b.result.token_strings
        strip_a, strip_b = view.strips.strips
        # WordPiece: "weeping"; Unigram: "▁weep" + "ing"
        i = ta.index("weeping")
        qtbot.mouseClick(strip_a, Qt.MouseButton.LeftButton, pos=strip_a.centre_of(i).toPoint())
        expected = {tb.index("\u2581weep"), tb.index("ing")}
        assert strip_b.highlighted == expected
        assert strip_a.focused == i
        assert view.heatmaps.focus_rows == ([i], sorted(expected))
        # and back: hovering "ess" (Unigram) lights "##ess" (WordPiece) only; heatmaps follow
        strip_b.hovered.emit(tb.index("ess"))
        assert strip_a.highlighted == {ta.index("##ess")}
        assert view.heatmaps.focus_rows == ([ta.index("##ess")], [tb.index("ess")])
        strip_b.hovered.emit(-1)  # the mouse leaves: back to the clicked token
        assert view.heatmaps.focus_rows == ([i], sorted(expected))
        # the same [MASK]-free sentence gives both models' curves at their own depths
        assert view.curves.curve_data("l2_mean", 1)[0][-1] == pytest.approx(1.0)
    finally:
        state.shutdown()


def test_newest_sentence_wins_and_models_can_be_swapped(tiny, qtbot):
    state, view, _bundle = tiny
    view.sentence.setText("the city .")
    view.compare_button.click()
    view.sentence.setText("the king went to the house .")
    with qtbot.waitSignal(view.session.probed, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(view.sentence, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not state.busy, timeout=WAIT_MS)
    assert blocker.args[0].a.result.text == "the king went to the house ."
    assert view.session.bundle.a.result.text == "the king went to the house ."
    with qtbot.waitSignal(view.session.probed, timeout=WAIT_MS) as blocker:
        view.swap_button.click()
    assert blocker.args[0].a.result.model_type == "albert"
    assert view.box_a.currentData() == "demo:albert-mini"


def test_compare_tab_sits_next_to_probe(qtbot, make_window):
    from app.launch import parse_args

    window = make_window()
    window.state.start()
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())][:2] == ["Probe", "Compare"]
    assert not window.compare.is_built  # nothing built or probed until the tab is opened
    with qtbot.waitSignal(window.compare.session.probed, timeout=WAIT_MS) as blocker:
        window.tabs.setCurrentWidget(window.compare)
    assert window.compare.is_built
    names = (blocker.args[0].a.result.model_name, blocker.args[0].b.result.model_name)
    assert names == ("bert-mini", "albert-mini")
    assert parse_args(["--tab", "calculator"]).tab == "calculator"
