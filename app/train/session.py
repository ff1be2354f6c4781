"""A session: the runs one Start began, one after the other or at the same time.

Each run's process (a :class:`TrainingProcess`, or a :class:`RunFollower` for a run that trains
in the background) reports through the session's signals; the history records every change of
status. Pause, Resume, Stop and handing the runs to the background act on the whole session.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.train.follower import RunFollower
from app.train.history import RunHistory, RunRecord
from app.train.runner import TrainingProcess, start_detached
from app.train.settings import trainer_threads
from core.training import ProgressEvent
from core.training.run_status import RunStatus

# Statuses of a session's runs that Resume (or the background chain) continues or starts.
WAITING = (RunStatus.PAUSED, RunStatus.NEW)


class TrainSession(QObject):
    """Runs started together: one run, or BERT then ALBERT on the same corpus, token budget and
    seed (one after the other by default; ``parallel`` trains them at the same time).

    Each run's process (a :class:`TrainingProcess`, or a :class:`RunFollower` for a run that
    trains in the background) reports through the session's signals; the history records
    every change of status.
    """

    run_started = Signal(object)  # RunRecord
    event_received = Signal(object, object)  # RunRecord, ProgressEvent
    log_received = Signal(object, str)  # RunRecord, stderr line
    run_ended = Signal(object, object, str)  # RunRecord, RunStatus, one-line message
    state_changed = Signal()

    def __init__(
        self,
        history: RunHistory,
        records: list[RunRecord],
        parallel: bool = False,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.history = history
        self.records = records
        self.parallel = parallel
        self.runners: dict[str, TrainingProcess | RunFollower] = {}  # by run name
        self.queue: list[RunRecord] = []
        self.paused = False
        self.stopping = False
        self.detaching = False

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        self.queue = list(self.records)
        self.paused = self.stopping = False
        self._next()

    def _next(self) -> None:
        while self.queue and (self.parallel or not self.active):
            record = self.queue.pop(0)
            self._launch(record, resume=record.resumable)
        self.state_changed.emit()

    def _launch(self, record: RunRecord, resume: bool) -> None:
        settings = record.run_settings()
        if self.parallel and len(self.records) > 1 and not settings.threads:
            settings = settings.replace(threads=trainer_threads(len(self.records)))
            record.settings = settings.to_dict()
        runner = TrainingProcess(settings, self)
        self._attach(record, runner)
        record.status, record.message = RunStatus.RUNNING, ""
        runner.start(resume=resume)
        record.pid = runner.pid
        self.history.save()
        self.run_started.emit(record)

    def follow(self, record: RunRecord, offset: int = 0) -> RunFollower:
        """Re-attach to a run training in the background (pid still alive)."""
        runner = RunFollower(record.run_settings(), int(record.pid or 0), self)
        self._attach(record, runner)
        self.run_started.emit(record)
        runner.start(offset)
        self.state_changed.emit()
        return runner

    def _attach(self, record: RunRecord, runner: TrainingProcess | RunFollower) -> None:
        self.runners[record.name] = runner
        runner.event_received.connect(lambda ev, r=record: self._on_event(r, ev))
        runner.log_received.connect(lambda line, r=record: self.log_received.emit(r, line))
        runner.ended.connect(lambda status, msg, r=record: self._on_ended(r, status, msg))

    @property
    def active(self) -> list[RunRecord]:
        return [r for r in self.records if r.name in self.runners and self.runners[r.name].running]

    @property
    def waiting(self) -> list[RunRecord]:
        """Runs that were paused (resumable) or not started yet."""
        return [r for r in self.records if r.status in WAITING]

    @property
    def running(self) -> bool:
        return bool(self.active)

    def pause(self) -> None:
        """SIGTERM to every active run: each saves a checkpoint; Resume continues them."""
        if not self.active:
            return
        self.paused = True
        for record in self.active:
            self.runners[record.name].pause()
        self.state_changed.emit()

    def resume(self) -> None:
        self.paused = False
        paused = [r for r in self.records if r.status in (*WAITING, RunStatus.BACKGROUND)]
        self.queue = paused + [r for r in self.queue if r not in paused]
        self._next()

    def stop(self) -> None:
        """SIGTERM to every active run (each saves a checkpoint); queued runs never start."""
        self.stopping = True
        self.paused = False
        for record in self.queue:
            record.status = RunStatus.STOPPED
        self.queue = []
        for record in self.records:
            if record.status == RunStatus.PAUSED:
                record.status = RunStatus.STOPPED
        for record in self.active:
            self.runners[record.name].stop()
        self.history.save()
        self.state_changed.emit()

    def wait(self, msecs: int = 120000) -> bool:
        """Block until every process ended (the window is closing); delivers their ends."""
        ok = True
        for record in list(self.records):
            runner = self.runners.get(record.name)
            if runner is not None and runner.running:
                ok = runner.wait(msecs) and ok
        return ok

    def release(self) -> None:
        """Stop reading the runs followed in the background (the window closes; they train
        on)."""
        for runner in self.runners.values():
            if isinstance(runner, RunFollower):
                runner.release()

    def detach(self) -> list[RunRecord]:
        """Hand the session's unfinished runs to one background process chain: active runs save
        a checkpoint (SIGTERM) and continue from it bit-exactly in the background; runs not
        started yet follow them. Returns the records now training in the background."""
        self.detaching = True
        self.queue = []
        active = self.active
        for record in active:
            self.runners[record.name].pause()
        for record in active:
            self.runners[record.name].wait()
        chain = [r for r in self.records if r.status in (*WAITING, RunStatus.RUNNING)]
        if not chain:
            return []
        pid = start_detached(
            [(r.run_settings(), r.resumable or r.status == RunStatus.PAUSED) for r in chain]
        )
        for record in chain:
            record.status, record.pid = RunStatus.BACKGROUND, pid
        self.history.save()
        self.state_changed.emit()
        return chain

    # -- reports -------------------------------------------------------------------------------
    def _on_event(self, record: RunRecord, event: ProgressEvent) -> None:
        if event.kind == "step":
            record.steps_done = event.step
        if event.metrics is not None:
            record.metrics = event.metrics.to_dict()
        self.event_received.emit(record, event)

    def _on_ended(self, record: RunRecord, outcome: RunStatus, message: str) -> None:
        runner = self.runners.get(record.name)
        if record.status == RunStatus.BACKGROUND and isinstance(runner, TrainingProcess):
            return  # paused on the way to the background: the chain continues it
        if self.stopping and outcome == RunStatus.PAUSED:
            outcome = RunStatus.STOPPED
        record.status = outcome
        record.message = message
        record.pid = None
        self.history.save()
        if (
            self.paused
            and not self.queue
            and not any(
                r.status == RunStatus.PAUSED
                or (r is not record and r.name in self.runners and self.runners[r.name].running)
                for r in self.records
            )
        ):
            self.paused = False  # nothing left to resume (e.g. paused during set-up)
        self.run_ended.emit(record, outcome, message)
        if not (self.paused or self.stopping or self.detaching):
            self._next()
        self.state_changed.emit()
