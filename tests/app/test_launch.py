"""``python main.py`` end to end: the real process starts, stays up, and exits cleanly."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90  # seconds; a cold start imports torch on a shared CI machine


def launch(args: list[str], **env_extra: str) -> tuple[subprocess.Popen, queue.Queue]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **env_extra}
    if "BERTSCOPE_QUIT_AFTER_MS" not in env_extra:
        env.pop("BERTSCOPE_QUIT_AFTER_MS", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), *args, "--report-startup"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line.strip()) for line in proc.stdout], daemon=True
    ).start()
    return proc, lines


def wait_for_line(lines: queue.Queue, prefix: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no {prefix!r} line within {TIMEOUT} s")


@pytest.mark.slow
def test_main_py_stays_up_and_exits_cleanly_on_sigterm(tmp_path, demo_root):
    ini = tmp_path / "settings.ini"
    proc, lines = launch(
        [str(demo_root / "bert-mini"), "--settings", str(ini), "--text", "the lord came ."]
    )
    try:
        # the window shows first, the plots are built behind it, then the first probe arrives
        milestones = [wait_for_line(lines, "").split()[0] for _ in range(3)]
        assert milestones == ["shown", "plots", "probed"]
        time.sleep(2.0)  # deliberately: time passes and nothing happens (the window stays up)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    saved = QSettings(str(ini), QSettings.Format.IniFormat)
    assert saved.contains("window/geometry")  # closeEvent ran: a clean close, not a kill
    assert saved.value("probe/sentence") == "the lord came ."  # the probed sentence was kept


@pytest.mark.slow
def test_main_py_quits_by_itself_when_asked(tmp_path, demo_root):
    ini = tmp_path / "settings.ini"
    proc, lines = launch(
        [str(demo_root / "albert-mini"), "--settings", str(ini)], BERTSCOPE_QUIT_AFTER_MS="2500"
    )
    try:
        proc.wait(timeout=TIMEOUT)  # stdout is read by launch's thread into ``lines``
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    # it ran its event loop (the deferred plot build is queued before the quit timer) and then
    # closed the window itself: the same close as the user's, settings saved
    reported = [wait_for_line(lines, "").split()[0] for _ in range(2)]
    assert reported == ["shown", "plots"]
    assert "Traceback" not in err
    assert QSettings(str(ini), QSettings.Format.IniFormat).contains("window/geometry")


@pytest.mark.parametrize("broken", ["config.json", "model.safetensors"])
def test_a_screenshot_of_a_broken_model_exits_non_zero_with_the_reason(tmp_path, demo_root, broken):
    folder = tmp_path / "broken-bert"
    shutil.copytree(demo_root / "bert-mini", folder)
    (folder / broken).write_bytes(b"{not what it should be")
    shot = tmp_path / "shot.png"
    proc, _lines = launch(
        [str(folder), "--settings", str(tmp_path / "s.ini"), "--screenshot", str(shot)]
    )
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and broken in errors[0], err
    assert "Traceback" not in err
    assert not shot.exists()


def test_the_window_parts_import_neither_torch_nor_pyqtgraph():
    """The window is on screen before torch (the engine thread imports it) and pyqtgraph (built
    behind the visible window) have loaded: none of its parts imports either (``core``'s types,
    which import no torch, they may)."""
    parts = (
        "core", "app.launch", "app.scripted_run", "app.status_bar", "app.export_actions",
        "app.recent_models", "app.demo_preload", "app.probe.state", "app.probe.probe_view",
        "app.compare.session", "app.compare.compare_view", "app.train.state",
        "app.train.train_view", "app.models.model_manager", "app.models.model_card",
        "app.widgets.plot_export",
    )  # fmt: skip
    code = f"import sys; [__import__(m) for m in {parts!r}]; " + (
        "print([m for m in ('torch', 'pyqtgraph') if m in sys.modules])"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert out.stdout.strip() == "[]", out.stderr
