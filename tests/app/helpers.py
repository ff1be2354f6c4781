"""Shared helpers for the window tests."""

from __future__ import annotations

TEXT = "the lord came to the city ."
WAIT_MS = 30000  # generous: CI machines are slow and shared


def start_and_wait(
    qtbot, window, text: str = TEXT, model: str | None = None, pair: str | None = None
):
    """Start the engine, load ``model`` (default: the first demo), probe ``text``; return the bundle."""
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        window.start(model, text, pair)
    return blocker.args[0]


def probe_and_wait(qtbot, window, text: str, pair: str | None = None):
    """Type ``text`` (and ``pair``) into the boxes and press Enter; return the bundle."""
    from PySide6.QtCore import Qt

    probe = window.probe
    probe.sentence.clear()
    qtbot.keyClicks(probe.sentence, text)
    probe.pair.clear()
    if pair:
        qtbot.keyClicks(probe.pair, pair)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(probe.sentence, Qt.Key.Key_Return)
    return blocker.args[0]


def select_model(qtbot, window, key: str):
    """Click a model in the sidebar and wait for the re-probe with it."""
    from PySide6.QtCore import Qt

    tree = window.manager.tree
    item = tree.topLevelItem(window.manager.keys().index(key))
    tree.scrollToItem(item)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(
            tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center()
        )
    return blocker.args[0]


def wait_idle(qtbot, window) -> None:
    """Wait until the engine has no job queued or running."""
    qtbot.waitUntil(lambda: not window.state.busy, timeout=WAIT_MS)


def open_compare(qtbot, root, text: str, pair: str = ""):
    """A Compare tab over the models in ``root``, shown and probed: (state, view, bundle).
    The caller shuts the state down."""
    from app.compare.compare_view import CompareView
    from app.probe.state import AppState

    state = AppState(root)
    state.start()  # the pages are built once the engine has imported core
    view = CompareView(state)
    qtbot.addWidget(view)
    view.resize(1400, 900)
    view.sentence.setText(text)
    view.pair.setText(pair)
    with qtbot.waitSignal(view.session.probed, timeout=WAIT_MS) as blocker:
        view.show()  # builds the pages and compares the sentence in the box
    qtbot.waitUntil(lambda: view.heatmaps.bundle is not None, timeout=WAIT_MS)
    return state, view, blocker.args[0]
