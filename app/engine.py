"""The engine thread: every call into ``core`` that touches a model runs here, never on the GUI
thread (napari's ``thread_worker`` and superqt's ``superqt.utils.thread_worker``: plain
functions or generators from the model layer, driven by a Qt worker).

:meth:`Engine.submit` takes a function, its arguments and the callbacks for its outcome and
returns a :class:`Job`. One worker in one ``QThread`` runs jobs in submission order, so two jobs
never use a model at once and a move to another device cannot race a probe. The rules:

* ``fn(*args, **kwargs)`` runs on the engine thread. A plain return value reaches
  ``on_done(result)``. If it returns a generator, each yielded value reaches
  ``on_progress(value)`` and the generator's return value reaches ``on_done(result)``.
* An exception reaches ``on_error(message)`` with the one-line :func:`error_message`.
* ``is_stale()`` is asked before the job runs (a stale job is skipped without any callback) and
  again before each callback (a stale job's progress, result and error are dropped).
* "Newest wins" is :meth:`Engine.submit_latest`: a job submitted on a named channel makes every
  earlier job of that channel stale, and :meth:`Engine.invalidate` does so without a new job
  (the model changed, so nothing queued for the old one may land).
* :meth:`Job.cancel`: a queued job never runs; a running generator is closed (``gen.close()``)
  at its next ``yield``. A cancelled job reports only ``on_cancelled()``.
* Every callback runs on the GUI thread (queued signals), never on the worker.
* A ``quiet`` job (the status bar's memory reading) never makes the engine :attr:`busy`, so a
  poll every few seconds does not flash the busy indicators.

The job carries its own callbacks, so nothing routes results by kind. The first job imports
torch and ``core``; the GUI thread never imports them, which lets the window show in well under
a second.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)
_job_ids = itertools.count(1)


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


class Job:
    """The GUI-thread handle of one submitted call: what to run and whom to tell."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        is_stale: Callable[[], bool] | None = None,
        quiet: bool = False,
    ):
        self.fn, self.args, self.kwargs = fn, args, kwargs or {}
        self.quiet = quiet
        self.on_done, self.on_error = on_done, on_error
        self.on_progress, self.on_cancelled = on_progress, on_cancelled
        self.is_stale = is_stale
        self.id = next(_job_ids)
        self.name = getattr(fn, "__qualname__", type(fn).__name__)
        self.done = False  # an outcome was handled (or the job was skipped as stale)
        self.seconds = 0.0  # engine time of the call, set by the worker
        self.finished_at = 0.0  # time.perf_counter() when the call ended, set by the worker
        self._cancel = threading.Event()  # read by the worker between yields

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Never run this job if it is queued; close its generator at the next ``yield`` if it
        is running. Only ``on_cancelled`` is called afterwards (a plain function that is already
        running finishes, but its result is not delivered)."""
        if not self.done:
            self._cancel.set()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name}>"


class _Worker(QObject):
    """Lives in the engine thread; runs each job and reports its outcome by signal."""

    yielded = Signal(object, object)  # job, value
    returned = Signal(object, object)  # job, result
    errored = Signal(object, str)  # job, one-line message
    cancelled = Signal(object)  # job
    skipped = Signal(object)  # job (stale before it ran)

    @Slot(object)
    def run(self, job: Job) -> None:
        if job.cancelled:
            self.cancelled.emit(job)
            return
        if job.is_stale is not None and job.is_stale():
            self.skipped.emit(job)
            return
        start = time.perf_counter()
        try:
            result = job.fn(*job.args, **job.kwargs)
            if inspect.isgenerator(result):
                result = self._drive(job, result)
                if result is _CANCELLED:
                    self.cancelled.emit(job)
                    return
        except Exception as err:
            job.finished_at = time.perf_counter()
            job.seconds = job.finished_at - start
            log.debug("job %s failed:\n%s", job, traceback.format_exc())
            self.errored.emit(job, error_message(err))
            return
        job.finished_at = time.perf_counter()
        job.seconds = job.finished_at - start
        self.returned.emit(job, result)

    def _drive(self, job: Job, gen: Any) -> Any:
        """Run a generator to its end, reporting each yield; stop at a yield once cancelled."""
        while True:
            if job.cancelled:
                gen.close()
                return _CANCELLED
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            self.yielded.emit(job, value)


_CANCELLED = object()


def _stale(job: Job) -> bool:
    return job.is_stale is not None and job.is_stale()


class Engine(QObject):
    """The GUI-side handle of the engine thread: submit jobs, know when it is busy."""

    _submitted = Signal(object)  # job -> worker (queued across threads)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("bertscope-engine")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._submitted.connect(self._worker.run)
        self._worker.yielded.connect(self._on_yielded)
        self._worker.returned.connect(self._on_returned)
        self._worker.errored.connect(self._on_errored)
        self._worker.cancelled.connect(self._on_cancelled)
        self._worker.skipped.connect(self._on_skipped)
        self._jobs: list[Job] = []  # submitted and not yet ended, in order
        self._latest: dict[str, int] = {}  # channel -> number of its newest request
        self._closed = False

    @property
    def busy(self) -> bool:
        return any(not job.quiet for job in self._jobs)

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        is_stale: Callable[[], bool] | None = None,
        quiet: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Queue ``fn(*args, **kwargs)`` for the engine thread; see the module docstring."""
        job = Job(
            fn,
            args,
            kwargs,
            on_done=on_done,
            on_error=on_error,
            on_progress=on_progress,
            on_cancelled=on_cancelled,
            is_stale=is_stale,
            quiet=quiet,
        )
        if self._closed:
            job._cancel.set()  # the window is closing: run nothing new
            job.done = True
            return job
        if not self._thread.isRunning():
            self._thread.start()  # started on first use, so an unused Engine leaves no thread
        was_busy = self.busy
        self._jobs.append(job)
        if not was_busy and self.busy:
            self.busy_changed.emit(True)
        self._submitted.emit(job)
        return job

    def submit_latest(
        self,
        channel: str,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        quiet: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Like :meth:`submit`, but newest wins on ``channel``: a later request (or
        :meth:`invalidate`) on the same channel skips this job if it is still queued and drops
        its outcome if it is running; nothing of a stale job reaches its callbacks."""
        number = self.invalidate(channel)
        latest = self._latest

        def is_stale() -> bool:
            return latest[channel] != number  # read from the worker thread: an int compare

        return self.submit(
            fn,
            *args,
            on_done=on_done,
            on_error=on_error,
            on_progress=on_progress,
            on_cancelled=on_cancelled,
            is_stale=is_stale,
            quiet=quiet,
            **kwargs,
        )

    def invalidate(self, channel: str) -> int:
        """Make every job on ``channel`` stale; returns the channel's new request number."""
        self._latest[channel] = self._latest.get(channel, 0) + 1
        return self._latest[channel]

    def _end(self, job: Job) -> None:
        job.done = True
        if job in self._jobs:
            was_busy = self.busy
            self._jobs.remove(job)
            if was_busy and not self.busy:
                self.busy_changed.emit(False)

    @Slot(object, object)
    def _on_yielded(self, job: Job, value: object) -> None:
        if job.on_progress is not None and not job.cancelled and not job.done and not _stale(job):
            job.on_progress(value)

    @Slot(object, object)
    def _on_returned(self, job: Job, result: object) -> None:
        if self._ended_cancelled(job):
            return
        if _stale(job):
            log.debug("dropped the stale result of %s", job)
            return
        if job.on_done is not None:
            job.on_done(result)

    @Slot(object, str)
    def _on_errored(self, job: Job, message: str) -> None:
        if self._ended_cancelled(job):
            return
        if _stale(job):
            log.debug("dropped the stale error of %s: %s", job, message)
        elif job.on_error is not None:
            job.on_error(message)
        else:
            log.warning("%s failed: %s", job, message)

    @Slot(object)
    def _on_cancelled(self, job: Job) -> None:
        self._end(job)
        if job.on_cancelled is not None:
            job.on_cancelled()

    def _ended_cancelled(self, job: Job) -> bool:
        """End ``job``; if it was cancelled meanwhile, report only that (and return True)."""
        if not job.cancelled:
            self._end(job)
            return False
        self._on_cancelled(job)
        return True

    @Slot(object)
    def _on_skipped(self, job: Job) -> None:
        self._end(job)
        log.debug("skipped stale %s", job)

    def shutdown(self) -> None:
        """Stop the thread after the job in progress; jobs still queued never run.

        Every pending job is cancelled, so a running generator stops at its next ``yield``; a
        plain function (a forward pass) cannot be interrupted halfway and destroying a running
        QThread aborts the process, so this waits for it (single probes or loads: seconds).
        """
        self._closed = True
        for job in self._jobs:
            job._cancel.set()
        if not self._thread.isRunning():
            return
        self._thread.requestInterruption()
        self._thread.quit()
        self._thread.wait()
