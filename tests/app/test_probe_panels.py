"""Panels that read: masked-word bars relative to the top guess with the original word's rank,
whole-word filtering, meaningful model names, the parameter bars of the model card, and the
layer-transition and head-statistics labels (angle in degrees, definitions, units)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.probe.calls import model_display_name
from core.analysis import layer_stats, predict_masked, probe
from core.analysis.words import word_guesses
from core.loaded_model import load_model
from tests.app.helpers import TEXT, WAIT_MS, start_and_wait
from tests.tiny_models import engine_checkpoint, tiny_config

MASKED = "the [MASK] came to the city ."


@pytest.fixture(scope="module")
def bert(demo_root):
    return load_model(demo_root / "bert-mini")


def test_masked_word_bars_are_scaled_to_the_top_guess(qtbot, window, bert):
    start_and_wait(qtbot, window, MASKED)
    masked = window.probe.masked
    expected = probe(bert, MASKED, top_k=5).masked[0]
    ((title, rows),) = masked.predictions()
    assert title == f"[MASK] at #{expected.position}"
    assert [t for t, _ in rows] == expected.tokens
    assert masked.bar_scales() == [pytest.approx(float(expected.probs[0]))]
    top = masked.tree.topLevelItem(0)
    assert top.child(0).text(0) == expected.tokens[0].removeprefix("##")


def test_mask_and_predict_shows_the_original_words_rank(qtbot, window, bert):
    start_and_wait(qtbot, window)
    with qtbot.waitSignal(window.state.masked, timeout=WAIT_MS):
        window.state.request_mask(2)  # "lord"
    expected = predict_masked(bert, TEXT, 2, top_k=5)
    top = window.probe.masked.tree.topLevelItem(0)
    assert top.text(0) == "#2 'lord' masked"
    original = top.child(top.childCount() - 1)
    assert original.text(0) == (
        f"original 'lord': rank {expected.original_rank}, {expected.original_prob:.1%}"
    )
    assert float(original.data(1, 0x0100 + 1)) == pytest.approx(expected.original_prob)
    assert "rank" in original.toolTip(0)
    assert [t for t, _ in window.probe.masked.predictions()[0][1]] == expected.tokens


def test_whole_words_filter_hides_punctuation_and_pieces(qtbot, window, bert):
    start_and_wait(qtbot, window, MASKED)
    masked = window.probe.masked
    masked.words_only.setChecked(True)
    expected = word_guesses(probe(bert, MASKED, top_k=5).masked[0], 5, sentencepiece=False)
    rows = masked.predictions()[0][1]
    assert [t for t, _ in rows] == [t for t, _ in expected]
    assert all(not t.startswith("##") and t not in ".,;!?" for t, _ in rows)
    masked.words_only.setChecked(False)


def test_generic_checkpoint_folders_get_meaningful_names(tmp_path):
    st = tmp_path / "all_minilm_l6_v2" / "model"
    st.mkdir(parents=True)
    (st / "config.json").write_text("{}")
    assert model_display_name(st) == "all_minilm_l6_v2"
    run = tmp_path / "runs" / "my-bert" / "final"
    run.mkdir(parents=True)
    assert model_display_name(run) == "my-bert/final"
    assert model_display_name(tmp_path / "runs" / "my-bert" / "checkpoint-500") == (
        "my-bert/checkpoint-500"
    )
    snap = tmp_path / "models--org--tiny-bert" / "snapshots" / ("ab12" * 10)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"_name_or_path": "prajjwal1/bert-tiny"}))
    assert model_display_name(snap) == "bert-tiny"
    assert model_display_name(tmp_path / "my-bert") == "my-bert"


def test_a_generic_folder_is_listed_by_its_meaningful_name(qtbot, window, tmp_path):
    folder = engine_checkpoint(tmp_path / "all_minilm_l6_v2" / "model", tiny_config("bert"))
    start_and_wait(qtbot, window)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS):
        window.state.open_folder(folder)
    key = str(folder.resolve())
    row = window.manager.keys().index(key)
    item = window.manager.tree.topLevelItem(row)
    assert item.text(0) == "all_minilm_l6_v2"
    assert item.toolTip(0).startswith(str(folder))
    assert window.windowTitle() == "all_minilm_l6_v2"


def test_model_card_draws_the_parameter_breakdown(qtbot, window):
    start_and_wait(qtbot, window)
    params = window.state.current.summary.params
    bars = window.card.bars
    assert bars.rows == [
        (name, params.unique[name], params.effective[name])
        for name in params.unique
        if params.unique[name] or params.effective[name]
    ]
    # the table is as tall as its rows, the bars get the rest of the card
    assert window.card.params.height() <= 20 * (len(bars.rows) + 1) + 60


def test_layer_transitions_plot_the_angle_and_say_how_tokens_are_averaged(qtbot, window, bert):
    start_and_wait(qtbot, window)
    layers = window.probe.layers
    stats = layer_stats(probe(bert, TEXT))
    assert_allclose(layers.angle_all.getData()[1], stats.angle_mean_deg, rtol=1e-5)
    assert_allclose(layers.angle_words.getData()[1], stats.angle_mean_deg_words, rtol=1e-5)
    assert layers.angle_all.isVisible() and not layers.cos_all.isVisible()
    assert layers.turn_plot.getAxis("left").labelText == "degrees"
    assert layers.l2_plot.getAxis("left").labelText != ""
    assert "[CLS] and [SEP] included" in layers.curves_key.toolTip()
    assert "not the angle of the mean cosine" in layers.curves_key.toolTip()
    layers.turn_box.setCurrentIndex(1)
    assert layers.cos_all.isVisible() and not layers.angle_all.isVisible()
    assert layers.turn_plot.getAxis("left").labelText == "cosine"
    assert layers.norms.titleLabel.text == "hidden-state L2 norm"
    assert "L2 norm of each token's hidden-state vector" in layers.norms_canvas.toolTip()
    assert "unit" in layers.norms_canvas.toolTip()


def test_head_statistics_state_their_definitions(qtbot, window):
    start_and_wait(qtbot, window)
    stats = window.probe.statistics
    assert "nats" in stats.entropy_bar.getAxis("left").labelText
    assert "Clark et al. 2019" in stats.plots["to_cls"].toolTip()
    assert "attention mass on [CLS]" in stats.plots["to_cls"].toolTip()
    stats._on_hovered("entropy", (0, 1))
    value = float(window.state.analysis.attention.entropy[0, 1])
    assert stats.readout.text().startswith(f"entropy (nats): layer 1, head 2 = {value:.4f} nats")
    assert "log T" in stats.readout.text()


def test_pca_labels_never_overlap(qtbot, window):
    start_and_wait(qtbot, window, "the the the city city he he saw saw the light light .")
    layers = window.probe.layers
    layers.slider.setValue(0)  # embeddings: the same word twice sits close to itself
    qtbot.waitUntil(
        lambda: layers.animation.state() == layers.animation.State.Stopped, timeout=5000
    )
    shown = [item.sceneBoundingRect() for item in layers.labels if item.isVisible()]
    assert len(shown) >= 3
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not a.intersects(b)
    assert len(shown) < len(layers.labels)  # some were hidden: the test can fail


def test_norms_can_be_coloured_per_layer(qtbot, window):
    analysis = start_and_wait(qtbot, window)
    layers = window.probe.layers
    norms = analysis.layers.norms
    assert_allclose(layers.norms.image.image, norms, rtol=1e-6)
    layers.norms_per_layer.setChecked(True)
    low, high = norms.min(axis=1, keepdims=True), norms.max(axis=1, keepdims=True)
    span = np.maximum(high - low, 1e-6)  # a layer of equal norms stays one colour, not noise
    assert_allclose(layers.norms.image.image, (norms - low) / span, atol=1e-5)
    assert_allclose(layers.norms.image.getLevels(), (0.0, 1.0))
    assert "each layer to its own range" in layers.norms.titleLabel.text
    layers.norms_per_layer.setChecked(False)
