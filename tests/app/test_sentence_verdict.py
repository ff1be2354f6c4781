"""The sentence head's verdict in the window: the Probe tab's line and Compare's two lines equal
a softmax of each model's own NSP/SOP logits; one sentence reads 'pair only'."""

from __future__ import annotations

import torch

from core.loaded_model import load_model
from tests.app.helpers import open_compare, probe_and_wait, start_and_wait

TEXT, PAIR = "the lord came to the city .", "he saw the king ."


def own_prob(folder) -> float:
    """P(class 0) of the model's sentence head for (TEXT, PAIR), from its forward pass."""
    loaded = load_model(folder, device="cpu")
    loaded.model.eval()
    with torch.no_grad():
        out = loaded.model(**loaded.encode(TEXT, PAIR).tensors("cpu"))
    logits = out.nsp_logits if out.nsp_logits is not None else out.sop_logits
    return float(torch.softmax(logits[0].double(), dim=-1)[0])


def test_probe_tab_shows_the_pairs_prediction(qtbot, window, demo_root):
    start_and_wait(qtbot, window, TEXT, "bert-mini")
    assert window.probe.verdict.text() == "P(is next): pair only (NSP head)"
    probe_and_wait(qtbot, window, TEXT, PAIR)
    p = own_prob(demo_root / "bert-mini")
    assert window.probe.verdict.text() == f"P(is next) = {p:.2f} (NSP head)"
    assert "bert-mini" in window.probe.verdict.toolTip()


def test_compare_shows_both_models_side_by_side(qtbot, demo_root):
    state, view, bundle = open_compare(qtbot, demo_root, TEXT, PAIR)
    try:
        ra, rb = bundle.a.result, bundle.b.result
        entries = state.entries
        families = [entries[key].family for key in (view.session.key_a, view.session.key_b)]
        assert families == ["bert", "albert"]  # the two demos, A first
        pa = own_prob(entries[view.session.key_a].path)
        pb = own_prob(entries[view.session.key_b].path)
        assert abs(ra.sentence.prob - pa) < 1e-6 and abs(rb.sentence.prob - pb) < 1e-6
        assert view.verdict.text() == (
            f"A: P(is next) = {pa:.2f} (NSP head)  \u00b7  B: P(in order) = {pb:.2f} (SOP head)"
        )
    finally:
        state.shutdown()
