"""First launch: every panel at least its readable size, at desktop and laptop sizes; a saved
cramped layout is discarded; scripted runs never write the user's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSettings, Qt

from app.probe.probe_view import MIN_SIZES, cramped_controls
from tests.app.helpers import WAIT_MS

ROOT = Path(__file__).resolve().parents[2]


def settled(qtbot, window) -> None:
    """Wait until the window has been shown and arranged its panels, and the docks have taken
    the sizes it gave them (the layout applies them from the event loop)."""
    qtbot.waitUntil(
        lambda: window.settled and not window.probe.undersized_panels(), timeout=WAIT_MS
    )


def assert_readable(window) -> None:
    for name, widget in window.probe.panels().items():
        dock = window.probe.docks.get(name)
        if dock is not None and not dock.isVisible():
            continue  # a tab behind another one
        assert widget.width() >= MIN_SIZES[name].width(), (name, widget.size())
        assert widget.height() >= MIN_SIZES[name].height(), (name, widget.size())
    assert window.probe.undersized_panels() == []


def new_window(qtbot, settings, demo_root, width: int, height: int):
    from app.main_window import MainWindow

    window = MainWindow(settings, demo_root=demo_root)
    qtbot.addWidget(window)
    window.resize(width, height)
    window.show()
    settled(qtbot, window)
    assert window.size().toTuple() == (width, height)
    return window


def test_first_launch_gives_every_panel_its_minimum_size(qtbot, demo_root, settings):
    window = new_window(qtbot, settings, demo_root, 1600, 1000)  # no saved settings
    assert_readable(window)
    focus = window.probe.docks["focus"].widget()
    assert focus.height() >= 200  # not the 130-px bottom row of a layout sized before showing
    # wide enough: token focus beside layer outputs, the sidebar split in two
    assert window.probe.area.tabifiedDockWidgets(window.probe.docks["focus"]) == []
    assert window.tabifiedDockWidgets(window.models_dock) == []
    window.close()


def test_laptop_screen_stacks_the_bottom_panels_and_tabs_the_sidebar(qtbot, demo_root, settings):
    window = new_window(qtbot, settings, demo_root, 1280, 720)
    assert_readable(window)
    area = window.probe.area
    stacked = set(area.tabifiedDockWidgets(window.probe.docks["layers"]))
    assert {window.probe.docks["focus"], window.probe.docks["statistics"]} <= stacked
    assert window.tabifiedDockWidgets(window.models_dock) == [window.card_dock]
    assert not window.toolbar.isVisible()  # its actions are in the menus; the plots need the room
    # the layer outputs get the whole width of the area, so their three plots fit side by side
    assert window.probe.docks["layers"].widget().width() >= area.width() - 20
    window.close()


def test_a_saved_layout_that_cramps_a_panel_is_discarded(qtbot, make_window, settings):
    first = make_window()
    settled(qtbot, first)
    for widget in first.probe.panels().values():
        widget.setMinimumSize(0, 0)  # what an older version allowed
    layers = first.probe.docks["layers"]
    first.probe.area.resizeDocks([layers], [60], Qt.Orientation.Vertical)
    qtbot.waitUntil(
        lambda: layers.widget().height() < MIN_SIZES["layers"].height(), timeout=WAIT_MS
    )
    first.close()  # saves the cramped layout

    second = make_window()
    settled(qtbot, second)
    assert_readable(second)
    assert second.probe.docks["layers"].widget().height() >= MIN_SIZES["layers"].height()


def fits(window, area: QRect) -> bool:
    """The window and its frame inside ``area`` (offscreen windows have a 2-px frame, known
    only once shown, as under a window manager)."""
    return window.frameGeometry() != window.geometry() and area.contains(window.frameGeometry())


def test_first_launch_fits_the_screen_with_its_frame(qtbot, monkeypatch, demo_root, settings):
    from app.main_window import MainWindow

    laptop = QRect(0, 0, 1280, 720)
    monkeypatch.setattr(MainWindow, "available_area", lambda _self: laptop)
    window = MainWindow(settings, demo_root=demo_root)  # no saved geometry
    qtbot.addWidget(window)
    window.show()
    settled(qtbot, window)
    qtbot.waitUntil(lambda: fits(window, laptop), timeout=WAIT_MS)
    frame = window.frameGeometry()
    assert frame.size().toTuple() == (1280, 720), frame  # all of it: the status bar on screen
    assert_readable(window)
    window.close()


def test_a_saved_geometry_larger_than_the_screen_is_clamped(qtbot, make_window, settings):
    first = make_window()
    settled(qtbot, first)
    area = first.available_area()
    first.resize(area.width() + 600, area.height() + 400)
    first.move(area.right() - 100, area.bottom() - 50)  # mostly off screen, too
    first.close()  # saves that geometry

    second = make_window()
    settled(qtbot, second)
    qtbot.waitUntil(lambda: fits(second, area), timeout=WAIT_MS)
    frame = second.frameGeometry()
    assert frame.width() == area.width() and frame.height() > area.height() - 40, frame


def test_a_saved_layout_that_squeezes_a_panels_controls_is_discarded(qtbot, make_window, settings):
    first = make_window()
    settled(qtbot, first)
    probe = first.probe
    wide = probe.area.width()  # the head grid and masked words take all they can
    probe.area.resizeDocks(
        [probe.docks["grid"], probe.docks["masked"]], [wide, wide], Qt.Orientation.Horizontal
    )
    qtbot.waitUntil(lambda: bool(cramped_controls(probe.heatmap)), timeout=WAIT_MS)
    assert probe.heatmap.width() >= MIN_SIZES["heatmap"].width()  # big enough, but cramped
    first.close()

    second = make_window()
    settled(qtbot, second)
    assert cramped_controls(second.probe.heatmap) == []
    assert_readable(second)


@pytest.mark.slow
def test_scripted_runs_never_write_the_users_settings(tmp_path, demo_root):
    config_home = tmp_path / "config"
    user_file = config_home / "BertScope" / "BertScope.conf"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[General]\ntheme=dark\n")
    before = user_file.read_bytes()
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(config_home),
        "HOME": str(tmp_path),
        "BERTSCOPE_QUIT_AFTER_MS": "1500",
    }
    env.pop("BERTSCOPE_SETTINGS", None)
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), str(demo_root / "bert-mini")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert user_file.read_bytes() == before
    assert sorted(p.name for p in user_file.parent.iterdir()) == ["BertScope.conf"]

    # --settings FILE is the way to keep what such a run did
    ini = tmp_path / "kept.ini"
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), str(demo_root / "bert-mini"), "--settings", str(ini)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert QSettings(str(ini), QSettings.Format.IniFormat).contains("window/geometry")
    assert user_file.read_bytes() == before
