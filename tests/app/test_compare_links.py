"""Compare's layer links say what the depths are: "same relative depth" only where l / L is
equal, else the nearest one with both fractions (layer 1 of 6 is not as deep as 1 of 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.compare.compare_view import CompareView
from app.probe.state import AppState
from core.analysis.side_by_side import depth_link
from tests.app.helpers import WAIT_MS
from tests.tiny_models import engine_checkpoint, tiny_config


def test_unequal_depths_are_the_nearest_with_both_fractions():
    assert depth_link(0, 6, 0, 4) == (
        "layer 1 of 6 \u2194 layer 1 of 4 (nearest relative depth: 1/6 \u2248 0.17, 1/4 = 0.25)"
    )
    assert depth_link(2, 4, 5, 8) == "layer 3 of 4 \u2194 layer 6 of 8 (same relative depth)"
    assert depth_link(1, 4, 1, 4) == "layer 2 of 4 \u2194 layer 2 of 4"


@pytest.fixture(scope="module")
def three_and_four(tmp_path_factory) -> Path:
    """Demo names over a 3-layer BERT and the 4-effective-layer ALBERT."""
    root = tmp_path_factory.mktemp("depths")
    engine_checkpoint(root / "bert-mini", tiny_config("bert", num_hidden_layers=3), seed=1)
    engine_checkpoint(root / "albert-mini", tiny_config("albert", inner_group_num=2), seed=2)
    return root


def test_the_bundle_links_a_3_and_a_4_layer_model_truthfully(qtbot, three_and_four):
    state = AppState(three_and_four)
    state.start()
    view = CompareView(state)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.session.probed, timeout=WAIT_MS) as blocker:
        view.show()  # compares the example sentence on the engine thread
    bundle = blocker.args[0]
    assert bundle.layer_b_of_a == [0, 2, 3]
    assert bundle.depth_links == [
        "layer 1 of 3 \u2194 layer 1 of 4 (nearest relative depth: 1/3 \u2248 0.33, 1/4 = 0.25)",
        "layer 2 of 3 \u2194 layer 3 of 4 (nearest relative depth: 2/3 \u2248 0.67, 3/4 = 0.75)",
        "layer 3 of 3 \u2194 layer 4 of 4 (same relative depth)",
    ]
    qtbot.waitUntil(lambda: view.heatmaps.bundle is not None, timeout=WAIT_MS)
    assert "(nearest relative depth: 1/3" in view.heatmaps.link.text()  # what the page says
    state.shutdown()
