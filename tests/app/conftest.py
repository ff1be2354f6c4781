"""Fixtures for the window tests: tiny checkpoints (built here, never the shipped demos), a
private settings file per test, and a main window that is closed (worker stopped) afterwards."""

from __future__ import annotations

import gc
import json
import os
import tempfile
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings  # importing is fine: no QApplication exists yet

from tests.tiny_models import engine_checkpoint, tiny_config


def _offscreen_screen() -> str:
    """The offscreen platform with a desktop-sized screen (its default is 800x600, which
    clamps restored window geometry), unless a real display platform was asked for."""
    config = Path(tempfile.gettempdir()) / "bertscope-test-screen.json"
    screen = {
        "name": "test",
        "x": 0,
        "y": 0,
        "width": 1920,
        "height": 1200,
        "logicalDpi": 96,
        "logicalBaseDpi": 96,
        "dpr": 1,
    }
    config.write_text(json.dumps({"screens": [screen]}))
    return f"offscreen:configfile={config}"


if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = _offscreen_screen()


@pytest.fixture(scope="package", autouse=True)
def gui_thread_garbage_collector(qapp):
    """As in the window (``app/launch.py``): no automatic collection, which could start inside
    one of Qt's locked regions and deadlock; a GUI-thread timer collects instead. The core tests
    that run after these get automatic collection back."""
    from app.gui_gc import GuiGarbageCollector

    collector = GuiGarbageCollector()
    yield collector
    collector.stop()
    gc.collect()


@pytest.fixture(autouse=True)
def collect_closed_windows():
    """Free each test's closed windows here, at a safe point, not inside a later test's Qt call
    (autouse, so torn down after qtbot has closed its widgets)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """A stand-in for resources/models: tiny BERT and ALBERT under the demo names.

    The ALBERT runs its 2 layers twice (inner_group_num=2), so it has 4 effective layers.
    """
    root = tmp_path_factory.mktemp("demos")
    engine_checkpoint(root / "bert-mini", tiny_config("bert"), seed=1)
    engine_checkpoint(root / "albert-mini", tiny_config("albert", inner_group_num=2), seed=2)
    return root


@pytest.fixture(scope="session")
def extra_bert(tmp_path_factory) -> Path:
    """A model folder outside the demo root (what a user opens by hand)."""
    return engine_checkpoint(
        tmp_path_factory.mktemp("mine") / "my-bert",
        tiny_config("bert", num_hidden_layers=3),
        seed=3,
    )


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "bertscope.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, demo_root, settings):
    """Build main windows on the private settings; all are closed at teardown."""
    from app.main_window import MainWindow

    windows = []

    def make(settings_=None, root=None):
        settings_ = settings_ or settings
        window = MainWindow(settings_, demo_root=root or demo_root)
        qtbot.addWidget(window)
        if not settings_.contains("window/geometry"):
            window.resize(1400, 900)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def window(make_window):
    return make_window()
