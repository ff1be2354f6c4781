"""What the Train tab knows: the run history, the training sessions and their processes, the
curves' numbers, the runs waiting their turn, and the engine jobs (corpus check, devices).

:class:`TrainState` is the Train tab's :class:`app.probe.state.AppState`: the view forwards what
the user asks (Start, Pause, Resume, Stop, closing) to its methods and renders its signals; it
never starts a process or an engine job itself. The corpus check is "newest wins"
(``Engine.submit_latest`` on one channel): a check of files since replaced never reports. Start
checks the corpus at most once: a check already done for the same files, unchanged on disk
since, counts, and one in flight is waited for.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Signal

from app.probe.state import AppState
from app.train import calls
from app.train.history import RunHistory, RunRecord
from app.train.run_folder import EVENTS_FILE
from app.train.runner import group_alive
from app.train.series import RunSeries
from app.train.session import TrainSession
from app.train.settings import RunSettings
from core.training import ProgressEvent
from core.training.run_status import RunStatus

log = logging.getLogger(__name__)

CORPUS_CHANNEL = "train-corpus"  # the engine channel of the corpus check (newest wins)
CORPUS_CHANGED = "the corpus changed before the run started; press Start again"

Fingerprint = tuple[tuple[str, int, int] | str, ...]


def corpus_fingerprint(files: list[str]) -> Fingerprint:
    """The files as a check saw them (path, size, modification time; the path alone for one
    that cannot be read): a check of the same fingerprint still holds."""
    found: list[tuple[str, int, int] | str] = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            found.append(name)
        else:
            found.append((name, st.st_size, st.st_mtime_ns))
    return tuple(found)


class TrainState(QObject):
    corpus_checking = Signal()  # a corpus check was asked for
    corpus_checked = Signal(object)  # calls.CorpusFigures of the newest check
    corpus_failed = Signal(str)  # the newest check's one-line error
    devices_found = Signal(object)  # calls.Devices
    start_failed = Signal(str)  # Start did not start: the one-line reason
    launched = Signal(list)  # RunRecords a Start added to the history, before they start
    run_started = Signal(object)  # RunRecord
    event_received = Signal(object, object)  # RunRecord, core.training.ProgressEvent
    log_received = Signal(object, str)  # RunRecord, one line of its log
    run_ended = Signal(object, object, str)  # RunRecord, RunStatus, one-line message
    checkpoint_listed = Signal(str, str, str)  # model key, name, folder
    reattached = Signal(list)  # RunRecords found training in the background, now followed
    changed = Signal()  # running, paused or starting changed: what the buttons allow

    def __init__(
        self,
        app_state: AppState,
        history_path: Path,
        runs_root: Path,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.app_state = app_state
        # A damaged history is rebuilt from the run folders, the runs root's among them.
        self.history = RunHistory(history_path, search=[runs_root])
        self.history.refresh()
        self.sessions: list[TrainSession] = []  # this window's, and re-attached ones
        self.session: TrainSession | None = None  # the newest: what Pause/Resume/Stop act on
        self.series: dict[str, RunSeries] = {}  # by run name
        self.figures: calls.CorpusFigures | None = None  # the newest check's, if it passed
        self.listed: set[str] = set()  # model keys of the checkpoints listed
        # (fingerprint, figures or None, error or None) of the newest check that reported
        self._result: tuple[Fingerprint, calls.CorpusFigures | None, str | None] | None = None
        self._checking: Fingerprint | None = None
        self._pending: tuple[list[RunSettings], bool, Fingerprint] | None = None

    # -- engine jobs ---------------------------------------------------------------------------
    def ask_devices(self) -> None:
        """Which devices the trainer could use (asked of core on the engine thread)."""
        self.app_state.engine.submit(calls.available_devices, on_done=self.devices_found.emit)

    def check_corpus(self, files: list[str]) -> None:
        """Core's corpus check (and counts) of ``files`` on the engine thread; newest wins."""
        fingerprint = corpus_fingerprint(files)
        self.figures, self._result, self._checking = None, None, fingerprint
        self.corpus_checking.emit()
        self.app_state.engine.submit_latest(
            CORPUS_CHANNEL,
            calls.check_corpus,
            files,
            on_done=lambda figures: self._on_checked(fingerprint, figures, None),
            on_error=lambda message: self._on_checked(fingerprint, None, message),
        )

    def _on_checked(
        self, fingerprint: Fingerprint, figures: calls.CorpusFigures | None, error: str | None
    ) -> None:
        self._checking = None
        self._result = (fingerprint, figures, error)
        self.figures = figures
        if error is None:
            self.corpus_checked.emit(figures)
        else:
            self.corpus_failed.emit(error)
        if self._pending is not None:
            self._start_pending()

    def _start_pending(self) -> None:
        """Start what Start asked for, now that its corpus check reported."""
        runs, parallel, wanted = self._pending
        fingerprint, _, error = self._result
        self._pending = None
        if fingerprint != wanted:  # the form's files changed while Start waited
            self.start_failed.emit(CORPUS_CHANGED)
        elif error is not None:
            self.start_failed.emit(error)
        else:
            self._launch(runs, parallel)
        self.changed.emit()

    # -- control -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return any(s.running for s in self.sessions)

    @property
    def paused(self) -> bool:
        """The newest session was paused and has nothing running: Resume continues it."""
        return self.session is not None and self.session.paused and not self.session.running

    @property
    def starting(self) -> bool:
        """Start was pressed and waits for its corpus check."""
        return self._pending is not None

    @property
    def can_start(self) -> bool:
        return not (self.running or self.paused or self.starting)

    def live(self, name: str) -> bool:
        """Whether a process trains run ``name`` now."""
        return any(name in s.runners and s.runners[name].running for s in self.sessions)

    def active_names(self) -> list[str]:
        return [r.name for s in self.sessions for r in s.active]

    def start(self, runs: list[RunSettings], parallel: bool = False) -> None:
        """Start ``runs`` (one session) once their corpus passed core's check."""
        if not self.can_start or not runs:
            return
        fingerprint = corpus_fingerprint(list(runs[0].corpus))
        self._pending = (runs, parallel, fingerprint)
        self.changed.emit()
        if self._result is not None and self._result[0] == fingerprint:
            self._start_pending()  # the form's check of these very files holds
        elif self._checking != fingerprint:
            self.check_corpus(list(runs[0].corpus))

    def _launch(self, runs: list[RunSettings], parallel: bool) -> None:
        records = [RunRecord(name=run.out.name, settings=run.to_dict()) for run in runs]
        for record in records:
            self.history.add(record)
        self.launched.emit(records)
        self._start_session(records, parallel).start()

    def _start_session(self, records: list[RunRecord], parallel: bool = False) -> TrainSession:
        session = TrainSession(self.history, records, parallel, self)
        session.run_started.connect(self._on_run_started)
        session.event_received.connect(self._on_event)
        session.log_received.connect(self.log_received)
        session.run_ended.connect(self.run_ended)
        session.state_changed.connect(self.changed)
        self.session = session
        self.sessions.append(session)
        return session

    def pause(self) -> None:
        """The trainers save a checkpoint at the end of their step and stop."""
        if self.session is not None and self.session.running:
            self.session.pause()

    def can_resume(self, record: RunRecord | None) -> bool:
        """Whether Resume can continue ``record`` (a run picked in the list)."""
        return (
            record is not None
            and record.resumable
            and not self.live(record.name)
            and not self.running
        )

    def resume(self, record: RunRecord | None = None) -> None:
        """Continue the paused session, else ``record`` from its newest checkpoint."""
        if self.paused:
            self.session.resume()
        elif self.can_resume(record):
            self.series[record.name] = RunSeries.from_log(record.out)
            self._start_session([record]).start()

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()

    # -- closing the window --------------------------------------------------------------------
    def close(self, keep_training: bool) -> None:
        """The window closes: runs in progress go on in the background (``keep_training``) or
        stop with a checkpoint, their ends recorded; nothing is read from them after."""
        self.app_state.engine.invalidate(CORPUS_CHANNEL)  # a late check has no one to tell
        self._pending = None
        if self.running and keep_training:
            for session in self.sessions:
                session.detach()
        elif self.running:
            for session in self.sessions:
                session.stop()
            for session in self.sessions:
                session.wait()
            QCoreApplication.processEvents()  # deliver the ends (the history records them)
        for session in self.sessions:
            session.release()
        self.history.save()

    # -- runs training in the background -------------------------------------------------------
    def reattach(self) -> None:
        """Follow the runs a previous window left training in the background."""
        by_group: dict[int, list[RunRecord]] = {}
        for record in self.history.records:
            if record.status == RunStatus.BACKGROUND and group_alive(record.pid):
                by_group.setdefault(int(record.pid), []).append(record)
        followed = []
        for records in by_group.values():
            session = self._start_session(records)
            for record in records:
                events = record.out / EVENTS_FILE
                offset = events.stat().st_size if events.is_file() else 0
                self.series[record.name] = RunSeries.from_log(record.out)
                session.follow(record, offset)
                followed.append(record)
        if followed:
            self.reattached.emit(followed)

    # -- reports -------------------------------------------------------------------------------
    def _on_run_started(self, record: RunRecord) -> None:
        self.series.setdefault(record.name, RunSeries())
        for step, folder in record.checkpoints():
            self.list_checkpoint(record, folder, step)
        self.run_started.emit(record)

    def _on_event(self, record: RunRecord, event: ProgressEvent) -> None:
        self.series.setdefault(record.name, RunSeries()).add(event)
        if event.checkpoint and event.kind in ("checkpoint", "done"):
            step = event.step if event.kind == "checkpoint" else None
            self.list_checkpoint(record, Path(event.checkpoint), step)
        self.event_received.emit(record, event)

    def list_checkpoint(self, record: RunRecord, folder: Path, step: int | None) -> None:
        """A checkpoint (``step``) or the final export (None) becomes a model in the Models
        list, once; one whose folder is already gone is not listed."""
        if not folder.is_dir():
            return
        name = f"{record.name} @ step {step}" if step is not None else f"{record.name} final"
        key = self.app_state.add_folder(folder, name)
        if key not in self.listed:
            self.listed.add(key)
            self.checkpoint_listed.emit(key, name, str(folder))

    def load_series(self, record: RunRecord) -> RunSeries:
        """A run's curves: the live ones while it trains, else read from its log again."""
        if not self.live(record.name):
            self.series[record.name] = RunSeries.from_log(record.out)
        return self.series[record.name]

    def record(self, name: str) -> RunRecord | None:
        return next((r for r in self.history.records if r.name == name), None)
