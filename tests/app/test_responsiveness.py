"""The event loop keeps turning while a long probe runs in the worker thread.

A 512-token sentence on a wider model keeps the engine busy for a second or more on a CPU. A
10 ms timer records when the event loop gets to run, and another timer types into the pair box
character by character, as a user would. If the probe blocked the GUI thread, the largest gap
between ticks would be about the probe's own duration; the test requires it to stay far below.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer

from tests.app.helpers import WAIT_MS, start_and_wait
from tests.tiny_models import engine_checkpoint, tiny_config

MAX_GAP_S = 0.2  # generous for a loaded 2-core CI machine; a blocked loop shows the probe's seconds


@pytest.fixture(scope="module")
def wide_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    config = tiny_config(
        "bert",
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=8,
        intermediate_size=512,
        max_position_embeddings=512,
    )
    engine_checkpoint(root / "bert-mini", config, seed=4)
    return root


@pytest.mark.slow
def test_typing_while_a_long_probe_runs(qtbot, make_window, wide_root):
    window = make_window(root=wide_root)
    start_and_wait(qtbot, window, "the king came .")
    qtbot.wait(1000)  # let the first result paint and the background loads finish
    long_text = " ".join(["the king came to the city of god and saw the light ."] * 50)

    ticks: list[float] = []
    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
    typed = "he saw the city ."
    pending = list(typed)
    typist = QTimer()
    typist.setInterval(30)
    typist.timeout.connect(lambda: pending and qtbot.keyClick(window.probe.pair, pending.pop(0)))

    window.probe.sentence.setText(long_text)
    window.probe.pair.clear()
    ticker.start()
    start = time.perf_counter()
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS * 4) as blocker:
        qtbot.keyClick(window.probe.sentence, Qt.Key.Key_Return)
        typist.start()
    done = window.state.last_probe_job.finished_at  # the worker finished (views update after)
    qtbot.wait(300)
    ticker.stop()
    typist.stop()

    bundle = blocker.args[0]
    assert len(bundle.result.tokens) == 512  # truncated to the model's maximum
    engine_seconds = window.state.last_probe_seconds
    assert engine_seconds > 2 * MAX_GAP_S, "the probe was too quick to tell anything"
    during = np.array([start, *[t for t in ticks if start <= t <= done], done])
    max_gap = float(np.diff(during).max())
    assert max_gap < MAX_GAP_S, (
        f"event loop stalled {max_gap * 1000:.0f} ms during a {engine_seconds:.2f} s probe"
    )
    assert len(during) > engine_seconds / 0.05  # it kept ticking, not just twice
    # everything typed during the probe arrived, in order
    qtbot.waitUntil(lambda: not pending, timeout=WAIT_MS)
    assert window.probe.pair.text() == typed
