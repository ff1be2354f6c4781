"""Model discovery: every folder with a config.json, and random-initialised stand-ins for the
demo models that are not there yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.probe.state import discover_demos
from tests.app.helpers import TEXT, start_and_wait, wait_idle


def test_demo_list_is_every_model_folder_plus_stand_ins(tmp_path, demo_root):
    assert [(e.key, e.name, e.random_init) for e in discover_demos(tmp_path / "absent")] == [
        ("demo:bert-mini", "bert-mini (random init)", True),
        ("demo:albert-mini", "albert-mini (random init)", True),
    ]
    shutil.copytree(demo_root / "albert-mini", tmp_path / "albert-mini")
    shutil.copytree(demo_root / "bert-mini", tmp_path / "zz-custom")
    (tmp_path / "not-a-model").mkdir()
    entries = discover_demos(tmp_path)
    assert [(e.name, e.family, e.random_init) for e in entries] == [
        ("albert-mini", "albert", False),
        ("zz-custom", "bert", False),
        ("bert-mini (random init)", "bert", True),
    ]
    assert entries[0].path == tmp_path / "albert-mini"


@pytest.mark.slow
def test_random_stand_in_loads_and_probes_when_no_demo_exists(qtbot, make_window, tmp_path):
    window = make_window(root=tmp_path / "no-demos-here")
    bundle = start_and_wait(qtbot, window, TEXT, model="albert-mini")
    assert bundle.result.model_name == "albert-mini (random init)"
    assert bundle.result.model_type == "albert"
    assert bundle.result.num_layers == 4  # the albert-mini preset
    assert "random-initialised" in window.card.title.text()
    assert window.manager.rows()[1][0] == "albert-mini\n(random init)"


@pytest.mark.slow
def test_a_result_that_arrives_after_a_newer_request_is_dropped(qtbot, window, monkeypatch):
    """Newest wins after the work too: the older probe runs to the end in the engine thread, but
    only the newer sentence reaches the views."""
    import threading

    from app.probe import calls as engine_calls

    start_and_wait(qtbot, window)
    started, release = threading.Event(), threading.Event()
    real = engine_calls.probe_and_analyze
    ran: list[str] = []

    def probe_held_once(loaded, text, *args, **kwargs):
        if not ran:
            started.set()
            release.wait(30)
        ran.append(text)
        return real(loaded, text, *args, **kwargs)

    monkeypatch.setattr(engine_calls, "probe_and_analyze", probe_held_once)
    state, seen = window.state, []
    state.probed.connect(lambda analysis: seen.append(analysis.result.text))
    state.request_probe("the old sentence .")
    qtbot.waitUntil(started.is_set, timeout=30000)
    newer = state.request_probe("the new sentence .")
    with qtbot.waitSignal(state.probed, timeout=30000):
        release.set()
    wait_idle(qtbot, window)
    assert ran == ["the old sentence .", "the new sentence ."]  # both ran, in order
    assert seen == ["the new sentence ."]  # the old one's result was dropped
    assert state.analysis_generation == newer == state.generation
    assert window.probe.heatmap.analysis.result.text == "the new sentence ."


def test_the_window_lists_the_trained_demo_models_that_ship_in_resources():
    """The demo models are committed: the window must find them (not random stand-ins) from
    wherever its modules live in the package tree."""
    root = Path(__file__).resolve().parents[2] / "resources" / "models"
    entries = discover_demos()
    assert [(e.name, e.path, e.random_init) for e in entries[:2]] == [
        ("bert-mini", root / "bert-mini", False),
        ("albert-mini", root / "albert-mini", False),
    ]
