"""Which model a row is: the Models list shows whole names (no "bert-m…tep 50"), full names and
paths in every column's tooltip, a "random init" mark on calculator-built models as on the
stand-ins, and a folder named by the folder, not by its config's ``_name_or_path``."""

from __future__ import annotations

import json

from app.models.model_manager import ModelManager
from app.probe.calls import describe_loaded, model_display_name
from app.probe.state import CALCULATOR_KEY, AppState
from core.random_models import build_random_model
from tests.tiny_models import engine_checkpoint, tiny_config

RUN_NAME = "bert-mini-long-run-name @ step 50"


def manager(qtbot, demo_root) -> tuple[AppState, ModelManager]:
    state = AppState(demo_root)  # no engine started: listing needs none
    view = ModelManager(state)
    qtbot.addWidget(view)
    view.resize(220, 400)  # a narrow sidebar
    view.show()
    qtbot.waitExposed(view)
    return state, view


def test_a_long_name_is_shown_whole_with_its_path_in_the_tooltip(qtbot, demo_root, tmp_path):
    state, view = manager(qtbot, demo_root)
    folder = engine_checkpoint(tmp_path / "run" / "checkpoint-50", tiny_config("bert"))
    key = state.add_folder(folder, RUN_NAME)
    row = view.keys().index(key)
    item = view.tree.topLevelItem(row)
    assert item.text(0) == RUN_NAME
    needed = view.tree.fontMetrics().horizontalAdvance(RUN_NAME)
    qtbot.waitUntil(lambda: view.tree.columnWidth(0) >= needed)
    tips = {item.toolTip(col) for col in range(4)}
    assert tips == {f"{folder}\n{RUN_NAME}"}


def test_calculator_models_are_marked_random_init(qtbot, tmp_path):
    state, view = manager(qtbot, tmp_path / "no-demos")  # the demos are stand-ins
    loaded = build_random_model("bert-tiny", name="bert-H128-L2")
    key = state.add_model(
        loaded, describe_loaded(loaded, random_init=True), key=CALCULATOR_KEY + "bert-H128-L2"
    )
    entry = state.entries[key]
    assert entry.name == "bert-H128-L2"  # the configuration's name, as the Train form offers it
    assert entry.label == "bert-H128-L2 (random init)"
    item = view.tree.topLevelItem(view.keys().index(key))
    assert item.text(0) == "bert-H128-L2\n(random init)"  # as the stand-ins: two lines
    assert item.toolTip(0).splitlines()[:3] == [
        "in memory",
        "bert-H128-L2 (random init)",
        "random-initialised (no trained weights yet)",
    ]
    stand_in = state.entries["demo:bert-mini"]
    assert stand_in.random_init and stand_in.label == stand_in.name == "bert-mini (random init)"


def test_a_folder_is_named_by_itself_not_by_its_config(tmp_path):
    """A sentence-transformers package: the BERT sits in 0_Transformer/, whose config names the
    model it was fine-tuned from."""
    package = tmp_path / "all-MiniLM-L6-v2"
    inner = package / "0_Transformer"
    inner.mkdir(parents=True)
    config = {"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}
    for folder in (package, inner):
        (folder / "config.json").write_text(json.dumps(config))
    assert model_display_name(package) == "all-MiniLM-L6-v2"
    assert model_display_name(inner) == "all-MiniLM-L6-v2"
    final = tmp_path / "my-run" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text(json.dumps(config))
    assert model_display_name(final) == "my-run/final"
