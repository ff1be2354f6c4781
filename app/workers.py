"""The engine thread: every call into ``core`` that touches a model runs here, never on the GUI
thread (napari's pattern: plain functions in the model layer, a Qt worker drives them).

One :class:`EngineWorker` lives in one ``QThread`` and runs :class:`Job` s in submission order,
so two jobs never use a model at once and a move to another device cannot race a probe. A job
carries a *generation*: when the user types a newer sentence before an older probe started, the
older job is skipped (``is_stale``), and results that arrive late are dropped by the state.
The first job imports torch and ``core``; the GUI thread never imports them before the
engine reports ``started``, which is what lets the window show in well under a second.
"""

from __future__ import annotations

import itertools
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)
_job_ids = itertools.count(1)


@dataclass
class Job:
    """One unit of engine work and what the GUI needs to route its result."""

    kind: str  # "engine", "load", "probe", "mask", "move"
    fn: Callable[[], Any]
    key: str | None = None  # the model the job is about
    generation: int = 0  # probe generation it belongs to (probe/mask jobs)
    is_stale: Callable[[], bool] | None = None  # checked just before running
    context: dict[str, Any] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_job_ids))
    seconds: float = 0.0  # time the function took, set by the worker
    finished_at: float = 0.0  # time.perf_counter() when it finished, set by the worker


def error_message(err: BaseException) -> str:
    """The one-line text the user sees: the engine's own message for BertScopeError, else the
    exception type and message (the traceback goes to the log)."""
    from core.errors import BertScopeError

    if isinstance(err, BertScopeError):
        return str(err)
    if isinstance(err, MemoryError):
        return "out of memory"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class EngineWorker(QObject):
    """Runs jobs in its own thread and reports through signals (queued to the GUI thread)."""

    finished = Signal(object, object)  # job, result
    failed = Signal(object, str)  # job, one-line message
    skipped = Signal(object)  # job superseded before it ran

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if job.is_stale is not None and job.is_stale():
            self.skipped.emit(job)
            return
        start = time.perf_counter()
        try:
            result = job.fn()
        except Exception as err:
            job.seconds = time.perf_counter() - start
            log.debug("job %s (%s) failed:\n%s", job.id, job.kind, traceback.format_exc())
            self.failed.emit(job, error_message(err))
            return
        job.finished_at = time.perf_counter()
        job.seconds = job.finished_at - start
        self.finished.emit(job, result)


class Engine(QObject):
    """The GUI-side handle of the worker thread: submit jobs, know when it is busy."""

    submitted = Signal(object)  # job -> worker (queued across threads)
    finished = Signal(object, object)
    failed = Signal(object, str)
    skipped = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("bertscope-engine")
        self._worker = EngineWorker()
        self._worker.moveToThread(self._thread)
        self.submitted.connect(self._worker.run_job)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.skipped.connect(self._on_skipped)
        self._pending = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._pending > 0

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, job: Job) -> Job:
        if self._closed:
            return job  # the window is closing: run nothing new
        if not self._thread.isRunning():
            self._thread.start()  # started on first use, so an unused Engine leaves no thread
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        self.submitted.emit(job)
        return job

    def _done(self) -> None:
        self._pending = max(0, self._pending - 1)
        if self._pending == 0:
            self.busy_changed.emit(False)

    @Slot(object, object)
    def _on_finished(self, job: Job, result: object) -> None:
        self._done()
        self.finished.emit(job, result)

    @Slot(object, str)
    def _on_failed(self, job: Job, message: str) -> None:
        self._done()
        self.failed.emit(job, message)

    @Slot(object)
    def _on_skipped(self, job: Job) -> None:
        self._done()
        self.skipped.emit(job)

    def shutdown(self) -> None:
        """Stop the thread after the job in progress; jobs still queued are dropped.

        Waits for that job to end: a forward pass cannot be interrupted halfway, and destroying
        a running QThread aborts the process. Jobs are single probes or loads (seconds at most).
        """
        self._closed = True
        if not self._thread.isRunning():
            return
        self._thread.requestInterruption()
        self._thread.quit()
        self._thread.wait()
