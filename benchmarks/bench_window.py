"""Window timings on CPU: launch to window shown, and Enter to every Probe view updated.

Table 1, ``python main.py`` in a fresh process (median of several launches), each launch beside
a ``python -c "import torch"`` run just before it:
  shown    the main window is on screen (torch is still loading in the worker thread);
  plots    pyqtgraph imported and the heatmap and head grid built;
  probed   the first sentence probed (torch imported, demo model loaded, views updated);
  painted  the heatmap, head grid and masked words painted with it (the target: <= 1.3 x
           torch's own import).
Table 2, in one process, a sentence typed and Enter pressed N times per model:
  engine   the worker: probe + layer/attention statistics + PCA (``core.analysis.summary``);
  views    the GUI thread: from the worker's result to every Probe view updated;
  Enter->views  key press to every view updated (what the target counts);
  +paint   the same plus a synchronous repaint of the whole window.
Table 3, the event loop while one long probe (demo BERT at its maximum length) runs in the engine
thread: a 10 ms QTimer's ticks between Enter and the engine finishing (what
``tests/app/test_responsiveness.py`` checks without timings): the longest gap between ticks
stays far below the probe's own time if the GUI thread never blocked.
Table 4, the Compare tab (demo bert-mini vs albert-mini): Enter -> both sides of every
side-by-side view updated (engine: both probes + alignment + statistics; views: the GUI thread);
a cost-panel setting changed -> predicted memory (engine thread), bars, table and sentence
redrawn; a calculator field changed -> breakdown, memory and FLOPs (engine thread) redrawn
(BERT-base, BERT-large, ALBERT-xxlarge).
Targets: Enter -> both sides <= 80 ms; predicted memory and calculator <= 30 ms per keystroke.
Table 5, long inputs: a random-initialised bert-base at its 512-token maximum; Enter -> every
view updated, split into the engine and the GUI thread's share, and a full synchronous repaint
of the window (once with the heatmap's default colours, once per row with word-level
attention on).
Targets: shown < 1.5 s; Enter->views < 60 ms on the demo models, < 300 ms on a base-size
model at 32 tokens; at 512 tokens the GUI-side share <= 400 ms and a full repaint <= 100 ms. Demo models are resources/models/* (random-initialised stand-ins while
they are absent); the base-size models are random-initialised with their full vocabulary.

    python -m benchmarks.bench_window [--quick] [--launches N] [--repeat N] [--compare-only]
        [--long-only] [--startup-only]
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
    out: dict[str, list[float]] = {
        "shown": [],
        "plots": [],
        "probed": [],
        "painted": [],
        "torch": [],
    }
    for _ in range(launches):
        # side by side: `python -c "import torch"` just before each launch, on the same machine
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
        out["torch"].append(time.perf_counter() - start)
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
            seen: set[str] = {"torch"}
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


def print_startup(startup: dict[str, list[float]]) -> None:
    n = len(startup["torch"])
    print(
        f"\nLaunch of `python main.py` (median of {n} cold launches, each beside a "
        '`python -c "import torch"`; targets: shown < 1.5 s, painted <= 1.3 x torch)\n'
    )
    print("| milestone | median s | min s | max s | x torch's import |")
    print("|---|---:|---:|---:|---:|")
    torch_median = statistics.median(startup["torch"])
    for what, values in startup.items():
        if values:
            median = statistics.median(values)
            print(
                f"| {what} | {median:.2f} | {min(values):.2f} | {max(values):.2f} "
                f"| {median / torch_median:.2f} |"
            )


def long_input_times(window, app, repeat: int) -> dict[str, float]:
    """Table 4: bert-base (random init, full vocabulary) at 512 tokens."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.probe.calls import describe_loaded
    from core.random_models import build_random_model

    state = window.state
    loaded = build_random_model("bert-base", full_vocab=True, name="bert-base (random init)")
    key = state.add_model(loaded, describe_loaded(loaded, random_init=True), select=False)
    marks: list[float] = []
    state.probed.connect(lambda _b: marks.append(time.perf_counter()))

    def wait_probed(count: int) -> None:
        loop = QEventLoop()
        state.probed.connect(loop.quit)
        QTimer.singleShot(600_000, loop.quit)
        while len(marks) < count:
            loop.exec()
        state.probed.disconnect(loop.quit)

    def settle(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    # words the random model's vocabulary splits into pieces, so "words" has work to do
    words = (
        "the king came to the lighthouse and saw the unbelievably thunderstruck city ; " * 60
    ).split()
    text = " ".join(words[:600])  # cut to 512 tokens by the tokenizer
    state.select(key)
    wait_probed(len(marks) + 1)
    settle(500)
    samples: dict[str, list[float]] = {
        "engine": [], "views": [], "enter": [], "paint": [], "paint_words": [], "switch": []
    }  # fmt: skip
    heatmap = window.probe.heatmap
    tokens = 0
    for i in range(repeat + 1):
        window.probe.sentence.setText(text + (" ." * (i % 2)))
        settle(100)
        count = len(marks)
        start = time.perf_counter()
        QTest.keyClick(window.probe.sentence, Qt.Key.Key_Return)
        wait_probed(count + 1)
        views_done = marks[-1]
        job = state.probe_job
        tokens = len(state.analysis.result.tokens)
        t0 = time.perf_counter()
        window.repaint()
        painted = time.perf_counter()
        heatmap.set_scale("row")
        t_switch = time.perf_counter()
        heatmap.words_box.setChecked(True)  # word-level in the heatmap, grid and focus
        while not heatmap.word_level:  # computed on the engine thread, then drawn
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        switched = time.perf_counter()
        settle(50)
        t1 = time.perf_counter()
        window.repaint()
        painted_words = time.perf_counter()
        heatmap.words_box.setChecked(False)
        heatmap.set_scale("fixed")
        if i < 1:
            continue  # warm-up
        samples["engine"].append(job.seconds * 1e3)
        samples["views"].append((views_done - job.finished_at) * 1e3)
        samples["enter"].append((views_done - start) * 1e3)
        samples["paint"].append((painted - t0) * 1e3)
        samples["paint_words"].append((painted_words - t1) * 1e3)
        samples["switch"].append((switched - t_switch) * 1e3)
        print(f"  bert-base 512: run {i} done", file=sys.stderr)
    out = {k: statistics.median(v) for k, v in samples.items()}
    out["tokens"] = tokens
    return out


def print_long(long: dict[str, float], repeat: int) -> None:
    print(
        f"\nLong input: bert-base (random init) at {long['tokens']:.0f} tokens (median of "
        f"{repeat}; targets: views <= 400 ms, repaint <= 100 ms)\n"
    )
    print(
        "| engine ms | views ms (GUI) | Enter->views ms | repaint ms | words switch ms "
        "| repaint, words + per-row ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {long['engine']:.0f} | {long['views']:.1f} | {long['enter']:.0f} | "
        f"{long['paint']:.1f} | {long['switch']:.0f} | {long['paint_words']:.1f} |"
    )


def window_times(
    repeat: int, quick: bool, long_repeat: int = 0, long_only: bool = False
) -> tuple[list[tuple[str, int, dict[str, float]]], dict[str, float], dict[str, float] | None]:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    from app.main_window import MainWindow
    from app.probe.calls import describe_loaded

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
    if long_only:
        long = long_input_times(window, app, long_repeat)
        window.close()
        return [], {}, long

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
    long = long_input_times(window, app, long_repeat) if long_repeat else None
    window.close()
    return rows, loop, long


def compare_times(repeat: int) -> dict[str, object]:
    """Table 4: the Compare tab's Enter -> views, cost-setting and calculator-field updates."""
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    from app.main_window import MainWindow
    from core.config import preset

    tmp = tempfile.mkdtemp()
    window = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1600, 1000)
    window.show()
    view, session = window.compare, window.compare.session
    marks: list[float] = []

    def settle(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    def wait_probed(count: int) -> None:
        loop = QEventLoop()
        session.probed.connect(loop.quit)
        QTimer.singleShot(300_000, loop.quit)
        while len(marks) < count:
            loop.exec()
        session.probed.disconnect(loop.quit)

    window.state.start()
    view.sentence.setText(SENTENCES[0])
    window.tabs.setCurrentWidget(view)  # builds the pages and compares the sentence
    session.probed.connect(lambda _b: marks.append(time.perf_counter()))  # after the views
    wait_probed(1)
    settle(1500)
    samples: dict[str, list[float]] = {"engine": [], "views": [], "enter": []}
    for i in range(repeat + 2):
        view.sentence.setText(SENTENCES[i % len(SENTENCES)])
        settle(100)
        count, start = len(marks), time.perf_counter()
        QTest.keyClick(view.sentence, Qt.Key.Key_Return)
        wait_probed(count + 1)
        job = session.last_probe_job
        if i < 2:
            continue
        samples["engine"].append(job.seconds * 1e3)
        samples["views"].append((marks[-1] - job.finished_at) * 1e3)
        samples["enter"].append((marks[-1] - start) * 1e3)

    def timed(change, values, signal) -> float:
        """Median ms from a field's new value to its figures redrawn (the engine computes
        them; ``signal`` fires after the view has drawn them)."""
        times = []
        loop = QEventLoop()
        signal.connect(loop.quit)
        for value in values:
            start = time.perf_counter()
            change(value)
            QTimer.singleShot(60_000, loop.quit)
            loop.exec()
            times.append((time.perf_counter() - start) * 1e3)
            settle(20)
        signal.disconnect(loop.quit)
        return statistics.median(times[1:])

    cost = view.cost
    cost_ms = timed(cost.batch.setValue, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] * 2, session.costed)
    calc = view.calculator
    calculator: dict[str, float] = {}
    for name in ("bert-base", "bert-large", "albert-xxlarge"):
        calc.set_config(preset(name))
        settle(300)
        hidden = preset(name).hidden_size
        heads = preset(name).num_attention_heads
        calculator[name] = timed(
            calc.spins["hidden"].setValue,
            [hidden + heads * k for k in range(1, 12)] * 2,
            calc.calculated,
        )
    tokens = (len(session.bundle.a.result.tokens), len(session.bundle.b.result.tokens))
    window.close()
    return {
        "tokens": tokens,
        **{k: statistics.median(v) for k, v in samples.items()},
        "cost_ms": cost_ms,
        "calculator": calculator,
    }


def print_compare(repeat: int) -> None:
    c = compare_times(repeat)
    print(
        f"\nCompare tab, bert-mini vs albert-mini (median of {repeat}; targets: Enter -> both "
        "sides <= 80 ms, predicted memory and calculator <= 30 ms per keystroke)\n"
    )
    print("| figure | median ms |")
    print("|---|---:|")
    print(f"| engine: both probes + alignment + statistics ({c['tokens'][0]} / {c['tokens'][1]} tokens) | {c['engine']:.1f} |")  # fmt: skip
    print(f"| views: both sides of every side-by-side view | {c['views']:.1f} |")
    print(f"| Enter -> both sides updated | {c['enter']:.1f} |")
    print(f"| cost panel: batch changed -> predicted memory, bars, table, sentence | {c['cost_ms']:.1f} |")  # fmt: skip
    for name, ms in c["calculator"].items():
        print(f"| calculator: H changed -> breakdown, memory, FLOPs ({name}) | {ms:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="demo models only, fewer repeats")
    parser.add_argument("--launches", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--compare-only", action="store_true", help="only the Compare tab table")
    parser.add_argument(
        "--long-only", action="store_true", help="only the 512-token table (Table 4)"
    )
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only Table 1 (10 cold launches unless --launches), beside `import torch`",
    )
    args = parser.parse_args()
    launches = args.launches or (3 if args.quick else 5)
    repeat = args.repeat or (5 if args.quick else 20)

    import torch

    from benchmarks.common import machine

    print(
        f"# bench_window {datetime.date.today()} ({machine()}, QPA {os.environ.get('QT_QPA_PLATFORM', 'offscreen')})"
    )
    long_repeat = 0 if args.quick else 3
    if args.compare_only:
        print_compare(repeat)
        return
    if args.long_only:
        _, _, long = window_times(0, True, args.repeat or 3, long_only=True)
        print_long(long, args.repeat or 3)
        return
    print_startup(launch_times(args.launches or (10 if args.startup_only else launches)))
    if args.startup_only:
        return

    rows, loop, long = window_times(repeat, args.quick, long_repeat)
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
    if long is not None:
        print_long(long, long_repeat)
    from app.probe.calls import engine_threads

    threads = engine_threads(torch.get_num_threads())
    print(f"\nengine torch threads: {threads} (the window leaves one core to the GUI thread)")
    print_compare(repeat)


if __name__ == "__main__":
    main()
