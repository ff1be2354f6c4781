"""Following a run that trains in the background (started by :func:`app.train.runner.
start_detached`, maybe by a window since closed): the same signals as a child process, read from
the files the run writes instead of its pipes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.train.event_stream import TERMINAL, EventStream
from app.train.outcome import ProcessExit, run_outcome
from app.train.run_folder import EVENTS_FILE, STDERR_FILE
from app.train.runner import group_alive, signal_group
from app.train.settings import RunSettings
from core.training.run_status import RunStatus


class RunFollower(QObject):
    """Tails ``OUT/events.jsonl`` and ``OUT/train.log`` and watches the run's process group;
    Pause/Stop send it SIGTERM. Signals as :class:`app.train.runner.TrainingProcess`'s."""

    event_received = Signal(object)  # core.training.ProgressEvent
    log_received = Signal(str)
    ended = Signal(object, str)  # RunStatus, message

    def __init__(
        self, settings: RunSettings, pgid: int, parent: QObject | None = None, period_ms: int = 300
    ):
        super().__init__(parent)
        self.settings = settings
        self.pgid = pgid
        self.events_path = settings.out / EVENTS_FILE
        self.log_path = settings.out / STDERR_FILE
        self.stream = EventStream()
        self._offset = 0
        self._log_offset = 0
        self._intent: RunStatus | None = None
        self._ended = False
        self.timer = QTimer(self)
        self.timer.setInterval(period_ms)
        self.timer.timeout.connect(self.poll)

    @property
    def pid(self) -> int | None:
        return self.pgid

    @property
    def running(self) -> bool:
        return not self._ended and group_alive(self.pgid)

    def start(self, from_offset: int = 0) -> None:
        """Follow from byte ``from_offset`` of the events (what came before is in the log)."""
        self._offset = from_offset
        self.poll()
        if not self._ended:
            self.timer.start()

    def pause(self) -> None:
        self._signal(RunStatus.PAUSED)

    def stop(self) -> None:
        self._signal(RunStatus.STOPPED)

    def release(self) -> None:
        """Stop reading (the window closes; the run trains on)."""
        self.timer.stop()

    def _signal(self, intent: RunStatus) -> None:
        if group_alive(self.pgid):
            self._intent = intent
            signal_group(self.pgid, signal.SIGTERM)

    def wait(self, msecs: int = 60000) -> bool:
        deadline = time.monotonic() + msecs / 1000
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
            self.poll()
        self.poll()
        return not self.running

    @staticmethod
    def _read(path: Path, offset: int) -> bytes:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    @Slot()
    def poll(self) -> None:
        if self._ended:
            return
        if not self.settings.out.is_dir():
            # Nothing more can be read; the trainer stops itself at its next write.
            self._end(RunStatus.FAILED, f"run folder {self.settings.out} was deleted")
            return
        alive = group_alive(self.pgid)  # before reading: nothing is written after death
        data = self._read(self.log_path, self._log_offset)
        self._log_offset += len(data)
        for line in self.stream.feed_log(data, final=not alive):
            self.log_received.emit(line)
        data = self._read(self.events_path, self._offset)
        self._offset += len(data)
        events, lines = self.stream.feed_events(data, final=not alive)
        for line in lines:
            self.log_received.emit(line)
        for event in events:
            self.event_received.emit(event)
        last = self.stream.last_event
        if not alive or (last is not None and last.kind in TERMINAL):
            self._end(*run_outcome(self.stream, self._intent, ProcessExit(), self.settings.out))

    def _end(self, status: RunStatus, message: str) -> None:
        self.timer.stop()
        self._ended = True
        self.ended.emit(status, message)
