"""Window timings on CPU: launch to window shown, and Enter to every Probe view updated.

Table 1, ``python main.py`` in a fresh process (median of several launches):
  shown    the main window is on screen (torch is still loading in the worker thread);
  plots    pyqtgraph imported and the Probe views built;
  probed   the first sentence probed and drawn (torch imported, demo model loaded).
Table 2, in one process, a sentence typed and Enter pressed N times per model:
  engine   the worker: probe + layer/attention statistics + PCA (``core.analysis.summary``);
  views    the GUI thread: from the worker's result to every Probe view updated;
  Enter->views  key press to every view updated (what the target counts);
  +paint   the same plus a synchronous repaint of the whole window.
Table 3, the event loop while one long probe (demo BERT at its maximum length) runs in the engine
thread: a 10 ms QTimer's ticks between Enter and the engine finishing (what
``tests/app/test_responsiveness.py`` checks without timings): the longest gap between ticks
stays far below the probe's own time if the GUI thread never blocked.
Targets: shown < 1.5 s; Enter->views < 60 ms on the demo models, < 300 ms on a base-size
model at 32 tokens. Demo models are resources/models/* (random-initialised stand-ins while
they are absent); the base-size models are random-initialised with their full vocabulary.

    python -m benchmarks.bench_window [--quick] [--launches N] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script too, not only with -m
    sys.path.insert(0, str(ROOT))
SENTENCES = (
    "the [MASK] of the lord came upon him .",
    "and she said unto him , [MASK] not , for i am with thee .",
    "it is a truth universally acknowledged that a single man must be in want of a [MASK] .",
)


def launch_times(launches: int) -> dict[str, list[float]]:
    """Seconds from process start to each startup milestone, per launch."""
    env = {**os.environ}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    out: dict[str, list[float]] = {"shown": [], "plots": [], "probed": []}
    for _ in range(launches):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "--report-startup", "--settings",
                 str(Path(tmp) / "s.ini")],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            lines: queue.Queue = queue.Queue()

            def read(p: subprocess.Popen = proc, q: queue.Queue = lines) -> None:
                for line in p.stdout:
                    q.put((time.perf_counter(), line.split()[0]))

            threading.Thread(target=read, daemon=True).start()
            seen: set[str] = set()
            deadline = time.monotonic() + 120
            while seen != set(out) and time.monotonic() < deadline:
                try:
                    when, what = lines.get(timeout=1)
                except queue.Empty:
                    continue
                if what in out and what not in seen:
                    seen.add(what)
                    out[what].append(when - start)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return out


def window_times(
    repeat: int, quick: bool
) -> tuple[list[tuple[str, int, dict[str, float]]], dict[str, float]]:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    from app.engine_calls import describe_loaded
    from app.main_window import MainWindow

    tmp = tempfile.mkdtemp()
    window = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1600, 1000)
    window.show()
    state = window.state
    marks: list[float] = []

    def settle(ms: int = 300) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    def wait_probed(count: int) -> None:
        """Block in a real event loop (as the app does) until ``count`` results have arrived;
        a polling loop would burn a core the worker needs."""
        if len(marks) >= count:
            return
        loop = QEventLoop()
        state.probed.connect(loop.quit)
        QTimer.singleShot(300_000, loop.quit)
        while len(marks) < count:
            loop.exec()
        state.probed.disconnect(loop.quit)

    window.start(None, SENTENCES[0], None)
    state.probed.connect(lambda _b: marks.append(time.perf_counter()))  # after every view's slot
    wait_probed(1)
    settle(1500)

    models = [key for key, entry in state.entries.items() if entry.demo]
    extra = [] if quick else ["bert-base", "albert-base"]
    rows = []
    for target in models + extra:
        if target in extra:
            from core.random_models import build_random_model

            loaded = build_random_model(target, full_vocab=True, name=f"{target} (random init)")
            row = describe_loaded(loaded, random_init=True)
            key = state.add_model(loaded, row, key=f"bench:{target}", select=False)
        else:
            key = target
        marks.clear()
        state.select(key)  # loads it if needed
        state.request_probe(SENTENCES[0])  # newest wins: exactly one result comes back
        wait_probed(1)
        if target in extra:  # a 32-token sentence for the base-size rows
            words = ("the king came to the city and saw the light of god " * 8).split()
            tokenizer = state.entries[key].loaded.tokenizer
            while len(tokenizer.encode(" ".join(words))) > 32:
                words.pop()
            texts = [" ".join(words)]
        else:
            texts = list(SENTENCES)
        settle(500)
        samples: dict[str, list[float]] = {"engine": [], "views": [], "enter": [], "paint": []}
        tokens = 0
        for i in range(repeat + 2):
            window.probe.sentence.setText(texts[i % len(texts)])
            settle(100)
            count = len(marks)
            start = time.perf_counter()
            QTest.keyClick(window.probe.sentence, Qt.Key.Key_Return)
            wait_probed(count + 1)
            views_done = marks[-1]
            window.repaint()
            painted = time.perf_counter()
            job = state.probe_job
            tokens = len(state.analysis.result.tokens)
            if i < 2:
                continue  # warm-up
            samples["engine"].append(job.seconds * 1e3)
            samples["views"].append((views_done - job.finished_at) * 1e3)
            samples["enter"].append((views_done - start) * 1e3)
            samples["paint"].append((painted - start) * 1e3)
        name = state.entries[key].name
        rows.append((name, tokens, {k: statistics.median(v) for k, v in samples.items()}))
        print(f"  {name}: done", file=sys.stderr)

    # Table 3: tick a 10 ms timer while a probe at the maximum length runs in the engine.
    state.select(models[0])
    state.request_probe(SENTENCES[0])
    marks.clear()
    wait_probed(1)
    settle(500)
    ticks: list[float] = []
    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window.probe.sentence.setText(" ".join([SENTENCES[1]] * 40))
    ticker.start()
    settle(100)
    count = len(marks)
    start = time.perf_counter()
    QTest.keyClick(window.probe.sentence, Qt.Key.Key_Return)
    wait_probed(count + 1)
    ticker.stop()
    job = state.probe_job
    during = [start, *[t for t in ticks if start <= t <= job.finished_at], job.finished_at]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    loop = {
        "model": state.entries[models[0]].name,
        "tokens": len(state.analysis.result.tokens),
        "engine_s": job.seconds,
        "ticks": len(during) - 2,
        "max_gap_ms": max(gaps) * 1e3,
        "median_gap_ms": statistics.median(gaps) * 1e3,
    }
    window.close()
    return rows, loop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="demo models only, fewer repeats")
    parser.add_argument("--launches", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    launches = args.launches or (3 if args.quick else 5)
    repeat = args.repeat or (5 if args.quick else 20)

    import torch

    from benchmarks.common import machine

    print(
        f"# bench_window {datetime.date.today()} ({machine()}, QPA {os.environ.get('QT_QPA_PLATFORM', 'offscreen')})"
    )
    startup = launch_times(launches)
    print(f"\nLaunch of `python main.py` (median of {launches}; target: shown < 1.5 s)\n")
    print("| milestone | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for what, values in startup.items():
        if values:
            print(
                f"| {what} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
            )

    rows, loop = window_times(repeat, args.quick)
    print(
        f"\nEnter -> Probe views (median of {repeat}; targets: demo < 60 ms, base-size at 32 tokens "
        "< 300 ms)\n"
    )
    print("| model | tokens | engine ms | views ms | Enter->views ms | +paint ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, tokens, m in rows:
        print(
            f"| {name} | {tokens} | {m['engine']:.1f} | {m['views']:.1f} | {m['enter']:.1f} | {m['paint']:.1f} |"
        )
    print(
        f"\nEvent loop during one long probe ({loop['model']}, {loop['tokens']} tokens, "
        f"engine {loop['engine_s']:.2f} s; a 10 ms timer)\n"
    )
    print("| ticks served | median gap ms | longest gap ms |")
    print("|---:|---:|---:|")
    print(f"| {loop['ticks']} | {loop['median_gap_ms']:.1f} | {loop['max_gap_ms']:.1f} |")
    from app.engine_calls import engine_threads

    threads = engine_threads(torch.get_num_threads())
    print(f"\nengine torch threads: {threads} (the window leaves one core to the GUI thread)")


if __name__ == "__main__":
    main()
