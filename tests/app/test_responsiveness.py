"""The event loop keeps turning while a probe runs in the engine thread.

The probe is made deliberately slow, not big: the engine call is wrapped so it waits on a
``threading.Event`` until the test has seen the GUI thread do its work. While it is held, a
10 ms timer must keep ticking, keys typed into the pair box must arrive, and the window must
show that it is busy; only then is the probe released and its result drawn. Had the probe run
on the GUI thread, none of that could happen before the release and the waits would time out.
How long things take is measured in ``benchmarks/bench_window.py``, not here.
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt, QTimer

from app.probe import calls as engine_calls
from tests.app.helpers import WAIT_MS, start_and_wait

TICKS_WHILE_HELD = 25  # timer ticks the GUI thread must serve while the probe is held


@pytest.mark.slow
def test_event_loop_serves_timers_and_typing_while_a_probe_is_held(qtbot, window, monkeypatch):
    start_and_wait(qtbot, window, "the king came .")
    started, release = threading.Event(), threading.Event()
    real = engine_calls.probe_and_analyze
    engine_threads: list[object] = []

    def held_probe(*args, **kwargs):
        engine_threads.append(threading.current_thread())
        started.set()
        if not release.wait(WAIT_MS / 1000):
            raise TimeoutError("the test never released the probe")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_calls, "probe_and_analyze", held_probe)

    ticks: list[bool] = []  # one entry per tick, with whether the engine was busy then
    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(lambda: ticks.append(window.state.busy))
    typed = "he saw the city ."
    pending = list(typed)
    typist = QTimer()
    typist.setInterval(15)
    typist.timeout.connect(lambda: pending and qtbot.keyClick(window.probe.pair, pending.pop(0)))

    long_text = " ".join(["the king came to the city of god and saw the light ."] * 10)
    window.probe.sentence.setText(long_text)
    window.probe.pair.clear()
    qtbot.keyClick(window.probe.sentence, Qt.Key.Key_Return)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)  # the engine thread holds the probe now
    ticker.start()
    typist.start()
    qtbot.waitUntil(lambda: len(ticks) >= TICKS_WHILE_HELD and not pending, timeout=WAIT_MS)
    # all of this happened while the probe was still held in the engine thread
    assert not release.is_set()
    assert all(ticks), "a tick found the engine idle while the probe was held"
    assert window.probe.pair.text() == typed  # every key arrived, in order
    assert window.status.busy.isVisible()  # the status bar shows the engine at work
    assert window.probe.status.text() == "probing\u2026"
    assert window.state.analysis.result.text == "the king came ."  # the old result stays
    assert engine_threads and engine_threads[0] is not threading.main_thread()

    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS) as blocker:
        release.set()
    ticker.stop()
    typist.stop()
    result = blocker.args[0].result
    assert result.text == long_text
    assert result.pair is None  # the pair was typed after Enter: not part of this probe
    assert result.truncated
    assert len(result.tokens) == 64  # the tiny model's max_position_embeddings
    qtbot.waitUntil(lambda: not window.state.busy, timeout=WAIT_MS)
    assert not window.status.busy.isVisible()
    assert len(engine_threads) == 1  # one probe ran, once
