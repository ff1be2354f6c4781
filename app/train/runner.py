"""Running the trainer: ``python -m core train ... --events jsonl`` (the CLI is the one trainer) as
a child process of the window, or detached in a session of its own.

:class:`TrainingProcess` runs it under ``QProcess``: every progress event arrives as one JSON
line on stdout, human-readable output on stderr, and ``finished`` / ``errorOccurred`` tell how
it ended (:func:`app.train.outcome.run_outcome` says what that means). Pause and Stop send
SIGTERM: the CLI stops at the end of the step and saves a resumable checkpoint; Resume runs it
with ``--resume`` (bit-exact, as the CLI guarantees).

:func:`start_detached` starts a chain of runs in a shell of its own session, each with stdout
appended to ``OUT/events.jsonl`` and stderr to ``OUT/train.log``; it keeps training when the
window closes (:mod:`app.train.follower` reads it when the window comes back).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal, Slot

from app.train.event_stream import EventStream
from app.train.outcome import ProcessExit, run_outcome
from app.train.run_folder import EVENTS_FILE, STDERR_FILE
from app.train.settings import REPO_ROOT, RunSettings
from core.training.run_status import RunStatus

log = logging.getLogger(__name__)


class TrainingProcess(QObject):
    """One trainer, a child of the window.

    ``ended(status, message)``: DONE, PAUSED, STOPPED or FAILED, and for FAILED the one-line
    reason (the trainer's own ``error`` event or ``error:`` line, or what happened to it).
    """

    event_received = Signal(object)  # core.training.ProgressEvent
    log_received = Signal(str)  # one stderr line
    ended = Signal(object, str)  # RunStatus, message

    def __init__(self, settings: RunSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.process.setWorkingDirectory(str(REPO_ROOT))
        self.process.readyReadStandardOutput.connect(self._on_stdout)
        self.process.readyReadStandardError.connect(self._on_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.stream = EventStream()
        self._intent: RunStatus | None = None  # PAUSED/STOPPED after pause()/stop()
        self._ended = False

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int | None:
        pid = self.process.processId()
        return int(pid) if pid else None

    def start(self, resume: bool = False) -> None:
        program, args = self.settings.command(resume)
        self.settings.prepare_folder()
        env = self.process.processEnvironment()
        if env.isEmpty():
            env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # every event line as soon as it is written
        self.process.setProcessEnvironment(env)
        self.stream = EventStream()
        self._intent, self._ended = None, False
        log.info("starting %s %s", program, " ".join(args))
        self.process.start(program, args)

    def pause(self) -> None:
        """SIGTERM: the trainer saves a resumable checkpoint and exits."""
        self._signal(RunStatus.PAUSED)

    def stop(self) -> None:
        self._signal(RunStatus.STOPPED)

    def _signal(self, intent: RunStatus) -> None:
        if self.running:
            self._intent = intent
            self.process.terminate()  # SIGTERM

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the process ended (used when the window closes)."""
        return not self.running or self.process.waitForFinished(msecs)

    # -- output --------------------------------------------------------------------------------
    @Slot()
    def _on_stdout(self, final: bool = False) -> None:
        events, lines = self.stream.feed_events(bytes(self.process.readAllStandardOutput()), final)
        for line in lines:
            self.log_received.emit(line)
        for event in events:
            self.event_received.emit(event)

    @Slot()
    def _on_stderr(self, final: bool = False) -> None:
        for line in self.stream.feed_log(bytes(self.process.readAllStandardError()), final):
            self.log_received.emit(line)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_stdout(final=True)
        self._on_stderr(final=True)
        killed = status == QProcess.ExitStatus.CrashExit
        self._end(
            *run_outcome(self.stream, self._intent, ProcessExit(code, killed), self.settings.out)
        )

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(
                RunStatus.FAILED, f"could not start the trainer: {self.process.errorString()}"
            )
        # Crashed is followed by finished(CrashExit), which reports it.

    def _end(self, status: RunStatus, message: str) -> None:
        if not self._ended:
            self._ended = True
            self.ended.emit(status, message)


def start_detached(runs: list[tuple[RunSettings, bool]]) -> int:
    """Start ``runs`` (settings, resume) one after the other in a background shell of its own
    session; each writes its events to ``OUT/events.jsonl`` and its log to ``OUT/train.log``.
    Returns the chain's process group id (what :func:`group_alive` and Pause/Stop use): the
    chain keeps training when the window closes."""
    lines = []
    for settings, resume in runs:
        settings.prepare_folder()
        program, args = settings.command(resume)
        lines.append(
            " ".join(shlex.quote(a) for a in (program, *args))
            + f" >> {shlex.quote(str(settings.out / EVENTS_FILE))}"
            + f" 2>> {shlex.quote(str(settings.out / STDERR_FILE))}"
        )
    # The shell lets go of the window's terminal; each trainer writes to its run folder.
    script = "\n".join(["exec </dev/null >/dev/null 2>&1", "export PYTHONUNBUFFERED=1", *lines])
    ok, pid = QProcess.startDetached("/bin/sh", ["-c", script], str(REPO_ROOT))
    if not ok:
        raise OSError("could not start the trainer in the background (/bin/sh)")
    # Qt detaches with a double fork: the session (and process group) is the one its
    # intermediate process made, which lives on in the shell and its trainers.
    try:
        return os.getpgid(int(pid))
    except ProcessLookupError:  # the chain already ended
        return int(pid)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours has finished
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True  # not our child (detached): it exists


def group_alive(pgid: int | None) -> bool:
    """Whether any process of a background run's group (its shell or its trainer) lives: the
    trainer may still be saving its checkpoint after the shell ended."""
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Signal a background run's whole process group (the shell of a chain and its trainer:
    the trainer saves its checkpoint, the shell starts nothing after it)."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, signum)
