"""Reading a run's output: its JSON-lines events (stdout, ``events.jsonl``, ``train_log.jsonl``)
and its log (stderr, ``train.log``).

Every event line is one :class:`core.training.ProgressEvent` as the CLI's ``--events jsonl``
writes it (``ProgressEvent.to_dict``); :func:`progress_event` turns it back into one, so the window
reads fields (``event.step``, ``event.metrics.perplexity``), not string keys. An
:class:`EventStream` is what one run said so far, fed the bytes as they come, whoever reads
them (a child's pipes or a background run's files).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from pathlib import Path

from core.training import EvalMetrics, ProgressEvent

LOG_LINES = 200  # stderr lines kept for the view
TERMINAL = ("done", "cancelled", "error")  # event kinds after which the trainer says no more

_EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(ProgressEvent))
_METRIC_FIELDS = frozenset(f.name for f in dataclasses.fields(EvalMetrics))


def parse_event(line: str | bytes) -> dict | None:
    """One output line as the JSON object of an event, or None for anything that is not one."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "kind" in event else None


def read_events(path: str | os.PathLike) -> list[dict]:
    """Every event object of a JSON-lines file (``train_log.jsonl`` or ``events.jsonl``)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [e for e in (parse_event(line) for line in text.splitlines()) if e is not None]


def progress_event(data: dict) -> ProgressEvent | None:
    """The :class:`ProgressEvent` of an event object, or None when it is not one (a field the
    event needs is missing). Keys it does not know are ignored, so a newer trainer's events
    still read; a log written before ``tokens_seen`` existed puts its points at their step."""
    values = {k: v for k, v in data.items() if k in _EVENT_FIELDS}
    values.setdefault("tokens_seen", data.get("step", 0))
    metrics = values.get("metrics")
    if isinstance(metrics, dict):
        values["metrics"] = EvalMetrics(**{k: metrics.get(k) for k in _METRIC_FIELDS})
    elif metrics is not None:
        return None
    try:
        return ProgressEvent(**values)
    except TypeError:
        return None


def load_events(path: str | os.PathLike) -> list[ProgressEvent]:
    """The events of a JSON-lines file, as :class:`ProgressEvent` objects."""
    return [e for e in map(progress_event, read_events(path)) if e is not None]


class EventStream:
    """What one run has said so far. Feed it the bytes of its events (:meth:`feed_events`) and
    of its log (:meth:`feed_log`) as they come; each returns the whole lines they completed. A
    line on the events channel that is not an event is a log line (a warning printed there)."""

    def __init__(self) -> None:
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.last_event: ProgressEvent | None = None
        self.error_message: str | None = None  # the trainer's own "error" event
        self.trained = False  # a step was reported (before it, a stop saves nothing)
        self._events = b""
        self._log = b""

    @property
    def silent(self) -> bool:
        """Nothing at all came yet: no event, no log line."""
        return self.last_event is None and not self.log_lines

    def feed_events(
        self, data: bytes, final: bool = False
    ) -> tuple[list[ProgressEvent], list[str]]:
        """The events and log lines completed by ``data``; ``final``: the output ended, so a
        last line without its newline counts too."""
        *lines, self._events = (self._events + data).split(b"\n")
        if final:
            lines.append(self._events)
            self._events = b""
        events, log = [], []
        for line in lines:
            found = parse_event(line)
            event = progress_event(found) if found is not None else None
            if event is None:
                text = line.decode("utf-8", errors="replace").strip()
                if text:
                    log.append(self._add_log(text))
                continue
            self.last_event = event
            if event.kind == "step":
                self.trained = True
            if event.kind == "error" and event.message:
                self.error_message = event.message
            events.append(event)
        return events, log

    def feed_log(self, data: bytes, final: bool = False) -> list[str]:
        """The log lines completed by ``data`` (a progress line redrawn with ``\\r`` is a line
        each time it is drawn)."""
        *lines, self._log = (self._log + data).replace(b"\r", b"\n").split(b"\n")
        if final:
            lines.append(self._log)
            self._log = b""
        out = []
        for line in lines:
            text = line.decode("utf-8", errors="replace").replace("\x1b[2K", "").rstrip()
            if text:
                out.append(self._add_log(text))
        return out

    def _add_log(self, text: str) -> str:
        self.log_lines.append(text)
        return text

    def cli_error(self) -> str | None:
        """The CLI's one-line ``error: ...`` on the log, newest first."""
        for line in reversed(self.log_lines):
            if line.startswith("error: "):
                return line.removeprefix("error: ")
        return None
