"""The job API of :mod:`app.engine`: each rule of ``Engine.submit`` on its own, with real
threads (pytest-qt waits for the callbacks; a ``threading.Event`` holds a job where a test
needs it held)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from app.engine import Engine
from core.errors import CheckpointError

WAIT_MS = 10000


@pytest.fixture
def engine(qtbot):
    engine = Engine()
    yield engine
    engine.shutdown()


class Recorder:
    """Collects every callback with the thread it ran on."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []
        self.threads: set[object] = set()

    def _note(self, name: str, value: object = None) -> None:
        self.threads.add(QThread.currentThread())
        self.calls.append((name, value))

    def callbacks(self) -> dict:
        return {
            "on_done": lambda r: self._note("done", r),
            "on_error": lambda m: self._note("error", m),
            "on_progress": lambda v: self._note("progress", v),
            "on_cancelled": lambda: self._note("cancelled"),
        }


def _held(event: threading.Event, value: object) -> object:
    if not event.wait(WAIT_MS / 1000):
        raise TimeoutError("the test never released the job")
    return value


def test_plain_function_result_reaches_on_done_with_args_and_kwargs(qtbot, engine):
    rec = Recorder()
    job = engine.submit(pow, 3, 4, **rec.callbacks())
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert rec.calls == [("done", 81)]
    job = engine.submit(sorted, [3, 1, 2], reverse=True, **rec.callbacks())
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert rec.calls[-1] == ("done", [3, 2, 1])
    assert not job.cancelled
    assert not engine.busy


def test_generator_yields_reach_on_progress_and_its_return_on_done(qtbot, engine):
    def count(n: int):
        for i in range(n):
            yield i * 10
        return "finished"

    rec = Recorder()
    job = engine.submit(count, 4, **rec.callbacks())
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert rec.calls == [
        ("progress", 0),
        ("progress", 10),
        ("progress", 20),
        ("progress", 30),
        ("done", "finished"),
    ]


def test_errors_reach_on_error_as_one_line(qtbot, engine):
    def engine_error():
        raise CheckpointError("model.safetensors: missing key 'embeddings.word'")

    def other_error():
        raise ValueError("bad value\nsecond line of detail")

    def failing_generator():
        yield 1
        raise KeyError("layer")

    rec = Recorder()
    jobs = [engine.submit(f, **rec.callbacks()) for f in (engine_error, other_error)]
    jobs.append(engine.submit(failing_generator, **rec.callbacks()))
    qtbot.waitUntil(lambda: all(j.done for j in jobs), timeout=WAIT_MS)
    assert rec.calls == [
        ("error", "model.safetensors: missing key 'embeddings.word'"),
        ("error", "ValueError: bad value"),
        ("progress", 1),
        ("error", "KeyError: 'layer'"),
    ]


def test_stale_job_is_skipped_before_it_runs(qtbot, engine):
    release, ran = threading.Event(), []
    rec = Recorder()
    generation = [1]
    blocker = engine.submit(_held, release, "first", **rec.callbacks())
    stale = engine.submit(
        lambda: ran.append("stale") or "stale",
        is_stale=lambda: generation[0] != 1,
        **rec.callbacks(),
    )
    generation[0] = 2  # a newer request arrived while the job was queued
    release.set()
    qtbot.waitUntil(lambda: blocker.done and stale.done, timeout=WAIT_MS)
    assert ran == []  # never called
    assert rec.calls == [("done", "first")]  # and no callback for the skipped job
    assert not engine.busy


def test_stale_result_is_dropped_after_it_ran(qtbot, engine):
    started, release, ran = threading.Event(), threading.Event(), []
    generation = [1]

    def work():
        started.set()
        release.wait(WAIT_MS / 1000)
        ran.append(True)
        return "old"

    rec = Recorder()
    job = engine.submit(work, is_stale=lambda: generation[0] != 1, **rec.callbacks())
    assert started.wait(WAIT_MS / 1000)
    generation[0] = 2  # superseded while it ran
    release.set()
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert ran == [True]
    assert rec.calls == []


def test_cancelled_queued_job_never_runs(qtbot, engine):
    release, ran = threading.Event(), []
    rec = Recorder()
    first = engine.submit(_held, release, "first", **rec.callbacks())
    queued = engine.submit(lambda: ran.append(True), **rec.callbacks())
    queued.cancel()
    assert queued.cancelled
    release.set()
    qtbot.waitUntil(lambda: first.done and queued.done, timeout=WAIT_MS)
    assert ran == []
    assert rec.calls == [("done", "first"), ("cancelled", None)]
    assert not engine.busy


def test_cancel_closes_a_running_generator_at_its_next_yield(qtbot, engine):
    release = threading.Event()
    steps: list[str] = []

    def long_job():
        try:
            steps.append("step 1")
            yield 1
            release.wait(WAIT_MS / 1000)  # held here until the test has cancelled
            steps.append("step 2")
            yield 2
            steps.append("step 3")  # never reached: closed at the yield above
            yield 3
            return "complete"
        finally:
            steps.append("closed")

    rec = Recorder()
    job = engine.submit(long_job, **rec.callbacks())
    qtbot.waitUntil(lambda: ("progress", 1) in rec.calls, timeout=WAIT_MS)
    job.cancel()
    release.set()
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert steps == ["step 1", "step 2", "closed"]
    assert rec.calls == [("progress", 1), ("cancelled", None)]  # no progress 2, no done
    assert job.cancelled


def test_callbacks_run_on_the_gui_thread_and_the_job_on_the_engine_thread(qtbot, engine):
    gui = QThread.currentThread()
    worker_threads: list[object] = []

    def gen():
        worker_threads.append(QThread.currentThread())
        yield "tick"
        return "tock"

    def boom():
        worker_threads.append(QThread.currentThread())
        raise RuntimeError("no")

    rec = Recorder()
    jobs = [engine.submit(gen, **rec.callbacks()), engine.submit(boom, **rec.callbacks())]
    release = threading.Event()
    held = engine.submit(_held, release, None, **rec.callbacks())
    jobs.append(engine.submit(lambda: None, **rec.callbacks()))
    jobs[-1].cancel()
    release.set()
    qtbot.waitUntil(lambda: held.done and all(j.done for j in jobs), timeout=WAIT_MS)
    assert [name for name, _ in rec.calls] == ["progress", "done", "error", "done", "cancelled"]
    assert rec.threads == {gui}
    assert len(worker_threads) == 2
    assert all(t is not gui for t in worker_threads)
    assert worker_threads[0] is worker_threads[1]  # one engine thread, in submission order


def test_busy_changes_once_per_burst_and_shutdown_runs_nothing_new(qtbot, engine):
    states: list[bool] = []
    engine.busy_changed.connect(states.append)
    jobs = [engine.submit(abs, -i) for i in range(3)]
    assert engine.pending == 3
    qtbot.waitUntil(lambda: all(j.done for j in jobs), timeout=WAIT_MS)
    assert states == [True, False]
    engine.shutdown()
    late = engine.submit(abs, -1)
    assert late.cancelled
    assert not engine.busy


def test_cancelled_plain_function_finishes_but_reports_only_cancelled(qtbot, engine):
    started, release = threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait(WAIT_MS / 1000)
        return "unwanted"

    rec = Recorder()
    job = engine.submit(work, **rec.callbacks())
    assert started.wait(WAIT_MS / 1000)
    job.cancel()  # a forward pass cannot stop halfway: its result is simply not delivered
    release.set()
    qtbot.waitUntil(lambda: job.done, timeout=WAIT_MS)
    assert rec.calls == [("cancelled", None)]


def test_submit_latest_runs_only_the_newest_queued_request_of_a_channel(qtbot, engine):
    release, ran = threading.Event(), []
    rec = Recorder()
    blocker = engine.submit(_held, release, "blocker", **rec.callbacks())
    jobs = [engine.submit_latest("probe", ran.append, n, **rec.callbacks()) for n in (1, 2, 3)]
    other = engine.submit_latest("cost", ran.append, "cost", **rec.callbacks())
    release.set()
    qtbot.waitUntil(
        lambda: blocker.done and all(j.done for j in jobs) and other.done, timeout=WAIT_MS
    )
    assert ran == [3, "cost"]  # 1 and 2 were superseded while queued; another channel is untouched
    assert rec.calls == [("done", "blocker"), ("done", None), ("done", None)]


def test_invalidate_drops_a_running_requests_result_and_error(qtbot, engine):
    started, release = threading.Event(), threading.Event()
    rec = Recorder()

    def work(fail: bool):
        started.set()
        release.wait(WAIT_MS / 1000)
        if fail:
            raise CheckpointError("late failure")
        return "late"

    for fail in (False, True):
        started.clear()
        release.clear()
        job = engine.submit_latest("probe", work, fail, **rec.callbacks())
        assert started.wait(WAIT_MS / 1000)
        engine.invalidate("probe")  # the model changed while it ran
        release.set()
        qtbot.waitUntil(lambda job=job: job.done, timeout=WAIT_MS)
    assert rec.calls == []


def test_a_quiet_job_runs_without_making_the_engine_busy(qtbot, engine):
    """The status bar's memory reading every few seconds must not flash the busy bars."""
    states: list[bool] = []
    engine.busy_changed.connect(states.append)
    rec = Recorder()
    quiet = engine.submit(abs, -2, quiet=True, **rec.callbacks())
    assert not engine.busy and engine.pending == 1
    qtbot.waitUntil(lambda: quiet.done, timeout=WAIT_MS)
    assert rec.calls == [("done", 2)] and states == []
    loud = engine.submit(abs, -3)
    engine.submit_latest("memory", abs, -4, quiet=True)
    assert engine.busy
    qtbot.waitUntil(lambda: loud.done and not engine.pending, timeout=WAIT_MS)
    assert states == [True, False]
