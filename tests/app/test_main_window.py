"""The main window: model list, loading errors, settings, drag and drop, export, menus."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.status_bar import resident_memory
from core import CheckpointError, load_model
from core.analysis import probe
from core.cost.params import count_parameters
from tests.app.helpers import TEXT, WAIT_MS, start_and_wait, wait_idle


@pytest.fixture
def captured_dialogs(monkeypatch):
    """Replace the modal message boxes with recorders (a modal dialog would block the test)."""
    seen: list[tuple[str, str, str]] = []
    for kind in ("critical", "warning", "information"):
        monkeypatch.setattr(
            QMessageBox, kind,
            staticmethod(lambda parent, title, text, *a, kind=kind, **k: seen.append((kind, title, text))),
        )  # fmt: skip
    monkeypatch.setattr(
        QMessageBox,
        "about",
        staticmethod(lambda parent, title, text: seen.append(("about", title, text))),
    )
    return seen


def test_demo_models_are_listed_from_the_start_and_loaded_with_their_details(
    qtbot, window, demo_root
):
    keys = window.manager.keys()
    assert keys == ["demo:bert-mini", "demo:albert-mini"]
    assert [row[3] for row in window.manager.rows()] == ["not loaded", "not loaded"]
    with qtbot.waitSignal(window.state.busy_changed, timeout=WAIT_MS, check_params_cb=bool):
        window.start(None, TEXT, None)  # the engine loads in the worker: a busy indicator runs
    assert window.status.busy.isVisibleTo(window) and window.manager.busy.isVisibleTo(
        window.manager
    )
    assert window.manager.rows()[0][3] == "loading\u2026"
    qtbot.waitUntil(lambda: window.state.analysis is not None, timeout=WAIT_MS)
    # the other demo loads quietly after the first probe
    qtbot.waitUntil(lambda: window.state.entries["demo:albert-mini"].is_loaded, timeout=WAIT_MS)
    rows = {row[0]: row for row in window.manager.rows()}
    bert = load_model(demo_root / "bert-mini")
    total = count_parameters(bert.model).total_unique
    assert rows["bert-mini"][1:] == ("BERT", f"{total / 1e3:.0f}k", "cpu")
    assert rows["albert-mini"][1] == "ALBERT"
    # model card: parameter breakdown from core.cost.params and the heads present
    card = window.card
    assert "bert-mini" in card.title.text() and f"{total:,} parameters" in card.title.text()
    table = {
        card.params.item(r, 0).text(): card.params.item(r, 1).text()
        for r in range(card.params.rowCount())
    }
    breakdown = count_parameters(bert.model)
    assert table["attention"] == f"{breakdown.unique['attention']:,}"
    assert table["total"] == f"{total:,}"
    assert "masked LM" in card.title.text()
    assert window.status.device_label.text() == "Device: CPU"
    # the status bar shows this process's resident memory (polled; one tick forced here)
    window.status.memory_timer.timeout.emit()
    shown, unit, kind = window.status.memory_label.text().removeprefix("Memory: ").split()
    rss, expected_kind = resident_memory()
    scale = {"KB": 2**10, "MB": 2**20, "GB": 2**30}[unit]
    assert kind == expected_kind
    assert float(shown) * scale == pytest.approx(rss, rel=0.05)


def test_a_corrupt_folder_shows_the_engine_message_and_changes_nothing(
    qtbot, window, tmp_path, demo_root, captured_dialogs
):
    start_and_wait(qtbot, window)
    wait_idle(qtbot, window)  # let the other demo finish loading in the background
    bad = tmp_path / "broken-bert"
    shutil.copytree(demo_root / "bert-mini", bad)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError) as err:
        load_model(bad)
    rows, current, bundle = window.manager.rows(), window.state.current_key, window.state.analysis
    with qtbot.waitSignal(window.state.load_failed, timeout=WAIT_MS):
        window.state.open_folder(bad)
    assert captured_dialogs == [("critical", "Cannot open model", str(err.value))]
    assert window.manager.rows() == rows
    assert window.state.current_key == current
    assert window.state.analysis is bundle
    assert window.recent.paths() == []

    # a folder without config.json: the engine's own message too
    captured_dialogs.clear()
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(window.state.load_failed, timeout=WAIT_MS):
        window.state.open_folder(empty)
    assert captured_dialogs == [("critical", "Cannot open model", f"{empty}: no config.json")]
    assert window.manager.rows() == rows


def test_open_folder_dialog_and_drag_and_drop_add_models(qtbot, window, extra_bert, monkeypatch):
    start_and_wait(qtbot, window)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(extra_bert))
    )
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        window.open_action.trigger()
    assert blocker.args[0].result.model_name == "my-bert"
    assert blocker.args[0].result.num_layers == 3
    assert window.manager.keys()[-1] == str(extra_bert.resolve())
    assert window.recent.paths() == [str(extra_bert.resolve())]
    assert window.windowTitle() == "my-bert"  # Qt appends " — BertScope", the display name

    # unload it: a user folder leaves the list, the next loaded model takes over
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS):
        window.unload_action.trigger()
    assert str(extra_bert.resolve()) not in set(window.manager.keys())

    # drop the folder (or a file inside it) on the window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(extra_bert / "config.json"))])
    event = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        window.dropEvent(event)
    assert blocker.args[0].result.model_name == "my-bert"


def test_settings_persist_across_a_restart(qtbot, make_window, settings, extra_bert):
    first = make_window()
    start_and_wait(qtbot, first)
    first.resize(1111, 777)
    first.apply_theme("dark")
    first.probe.docks["statistics"].setVisible(False)
    with qtbot.waitSignal(first.state.loaded, timeout=WAIT_MS):
        first.state.open_folder(extra_bert)
    probed_text = "he saw the light ."
    with qtbot.waitSignal(first.state.probed, timeout=WAIT_MS):
        first.state.request_probe(probed_text)
    first.close()

    second = make_window()
    assert second.size().toTuple() == (1111, 777)
    assert second.theme_name == "dark"
    assert second.theme_actions["dark"].isChecked()
    assert second.palette().color(QPalette.ColorRole.Window).lightness() < 128
    assert second.recent.paths() == [str(extra_bert.resolve())]
    assert second.recent_menu.actions()[0].text() == f"&1 {extra_bert.resolve()}"
    assert not second.probe.docks["statistics"].isVisibleTo(second)
    bundle = start_and_wait(qtbot, second, text=None)
    assert bundle.result.text == probed_text
    assert second.probe.sentence.text() == probed_text
    second.apply_theme("light")


def test_export_writes_json_csv_and_npz_through_core(
    qtbot, window, tmp_path, monkeypatch, demo_root
):
    from core.export import load_csv, load_json

    start_and_wait(qtbot, window)
    expected = probe(load_model(demo_root / "bert-mini"), TEXT)
    for suffix in (".json", ".csv", ".npz"):
        target = tmp_path / f"out{suffix}"
        monkeypatch.setattr(
            QFileDialog, "getSaveFileName", staticmethod(lambda *a, t=target, **k: (str(t), ""))
        )
        with qtbot.waitSignal(window.state.exported, timeout=WAIT_MS):
            window.export_action.trigger()
        assert target.is_file()
    analysis, meta = load_json(tmp_path / "out.json")
    assert meta["text"] == TEXT and meta["model"] == "bert-mini"
    assert_allclose(analysis.result.attentions, expected.attentions, atol=1e-6)
    rows = load_csv(tmp_path / "out.csv")
    tokens = [r["token"] for r in rows if r["table"] == "tokens"]
    assert tokens == expected.token_strings
    with np.load(tmp_path / "out.npz") as npz:
        assert_allclose(npz["attentions"], expected.attentions, atol=1e-6)
        assert list(npz["tokens"]) == expected.token_strings
    assert not list(tmp_path.glob("*.tmp"))


def test_about_names_versions_and_device_and_gpu_move_is_explained(qtbot, window, captured_dialogs):
    import PySide6
    from PySide6.QtCore import qVersion

    start_and_wait(qtbot, window)
    window.about_action.trigger()
    kind, title, text = captured_dialogs[-1]
    assert (kind, title) == ("about", "About BertScope")
    assert f"torch {torch.__version__}" in text
    assert f"Qt {qVersion()} (PySide6 {PySide6.__version__})" in text
    assert "Device in use: CPU" in text
    if not torch.cuda.is_available():
        assert not window.manager.move_button.isEnabled()
        assert "No GPU" in window.manager.move_button.toolTip()
        assert not window.move_action.isEnabled()


def test_shortcuts_exist_for_every_main_action(window):
    actions = [
        window.open_action,
        window.export_action,
        window.quit_action,
        window.probe_action,
        window.sentence_action,
        window.pair_action,
        window.unload_action,
        window.move_action,
        window.next_model_action,
        window.previous_model_action,
        window.reset_layout_action,
        window.about_action,
        *window.theme_actions.values(),
        *window.panel_actions,
    ]
    keys = [a.shortcut().toString() for a in actions]
    assert all(keys), [a.text() for a, k in zip(actions, keys, strict=True) if not k]
    assert len(set(keys)) == len(keys)


def test_keyboard_moves_between_models_and_focuses_the_sentence_box(qtbot, window):
    start_and_wait(qtbot, window)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args[0].result.model_type == "albert"
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.probe.sentence.hasFocus() or window.focusWidget() is window.probe.sentence


def test_theme_switch_repaints_the_plots(qtbot, window):
    start_and_wait(qtbot, window)
    canvas = window.probe.heatmap.canvas
    window.apply_theme("dark")  # the palette change reaches widgets through the event loop
    qtbot.waitUntil(lambda: canvas.backgroundBrush().color().lightness() < 100, timeout=WAIT_MS)
    axis_pen = window.probe.heatmap.plot.row_axis.textPen().color()
    assert axis_pen.lightness() > 150
    window.apply_theme("light")
    qtbot.waitUntil(lambda: canvas.backgroundBrush().color().lightness() > 200, timeout=WAIT_MS)


def test_probe_errors_go_to_the_status_bar_not_a_crash(qtbot, window, captured_dialogs):
    start_and_wait(qtbot, window)
    with qtbot.waitSignal(window.state.probe_failed, timeout=WAIT_MS):
        window.state.request_probe("   ")
    assert window.status.message.text() == "empty text: type a sentence to probe"
    assert captured_dialogs == []
    # the views keep the last good result
    assert window.probe.heatmap.analysis.result.text == TEXT


def test_no_model_probe_message_and_unloaded_view_clears(qtbot, window):
    start_and_wait(qtbot, window)
    wait_idle(qtbot, window)
    for key in list(window.state.entries):
        window.state.unload(key)
    assert window.state.current_key == ""
    assert window.probe.heatmap.plot.image.image is None
    with qtbot.waitSignal(window.state.probe_failed, timeout=WAIT_MS) as blocker:
        window.state.request_probe(TEXT)
    assert blocker.args[0].startswith("no model loaded")


def test_the_train_tabs_compare_opens_those_two_models_in_the_compare_tab(
    qtbot, window, extra_bert
):
    """Checkpoints listed by a run go to the Compare tab with one click (Train → Compare)."""
    start_and_wait(qtbot, window)
    key = window.state.add_folder(extra_bert, "bert-run @ step 3")
    other = next(k for k in window.state.entries if k != key)
    assert not window.train.compare_button.isHidden()
    window.train.compare_requested.emit(key, other)
    assert window.tabs.currentWidget() is window.compare
    assert (window.compare.session.key_a, window.compare.session.key_b) == (key, other)


def test_calculator_models_become_sizes_in_the_train_form(qtbot, window):
    """Add to models (Compare tab, Calculator) → the Train tab can train that configuration."""
    from app.probe.calls import describe_loaded
    from app.probe.state import CALCULATOR_KEY
    from core.random_models import build_random_model

    start_and_wait(qtbot, window)
    loaded = build_random_model("bert-tiny", name="my-bert")
    window.state.add_model(
        loaded,
        describe_loaded(loaded, random_init=True),
        key=CALCULATOR_KEY + "my-bert",
        select=False,
    )
    form = window.train.form
    assert form.size.findText("my-bert (bert)") >= 0
    form.size.setCurrentIndex(form.size.findText("my-bert (bert)"))
    assert form.chosen_config == loaded.config.to_dict()
