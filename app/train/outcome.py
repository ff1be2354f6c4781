"""How a run ended, decided in one place for a child of the window and a background run alike.

Whatever the trainer did (finished, paused, a bad corpus, NaN, out of memory, killed), the window
only sees a process that ended and what it said on the way: :func:`run_outcome` turns that into
a :class:`RunStatus` and, for a failure, the one-line reason shown in the Train tab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.train.event_stream import EventStream
from app.train.run_folder import resumable_checkpoints
from core.training.run_status import RunStatus

SET_UP_STOP = "stopped during set-up, before the first step: nothing saved"


@dataclass(frozen=True)
class ProcessExit:
    """How the trainer's process ended, as far as the window can tell."""

    code: int | None = None  # exit status; None: not the window's child (a background run)
    killed: bool = False  # ended by a signal it did not handle (SIGKILL, a crash)


def run_outcome(
    stream: EventStream, intent: RunStatus | None, exit: ProcessExit, out: Path
) -> tuple[RunStatus, str]:
    """(status, one-line message) of a run whose process ended.

    ``intent`` is PAUSED or STOPPED when the window asked the trainer to stop (SIGTERM), else
    None; ``out`` is the run folder, for the checkpoint a failed run can resume from.
    """
    kind = stream.last_event.kind if stream.last_event is not None else None
    if kind == "done" and exit.code in (0, None):
        return RunStatus.DONE, ""
    if kind == "cancelled":  # the trainer saved a checkpoint and stopped, as asked
        return intent or RunStatus.PAUSED, ""
    if intent is not None and not stream.trained:
        if exit.code is None and stream.silent:
            return RunStatus.NEW, ""  # a background chain stopped before this run began
        return RunStatus.STOPPED, SET_UP_STOP  # stopped before the first step
    reason = stream.error_message or stream.cli_error()
    if reason is not None:
        return RunStatus.FAILED, reason
    if exit.code is not None and not exit.killed:
        reason = f"the trainer exited with status {exit.code}"
        if stream.log_lines:
            reason += f": {stream.log_lines[-1]}"
        return RunStatus.FAILED, reason
    if exit.killed:
        reason = "the trainer process was killed"
        if intent is not None:
            reason += " before it could save a checkpoint"
    else:
        reason = "the background trainer ended without a word (killed?)"
    saved = resumable_checkpoints(out)
    if saved:
        reason += f"; Resume continues from {saved[-1].name}"
    return RunStatus.FAILED, reason
