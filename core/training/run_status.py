"""How a training run stands: the one list of statuses the window's run history stores and its
runs end with.

Torch-free and free of any other ``core`` import, so whoever reads a run history (the window,
a script) pays nothing for it. The members are strings (``RunStatus.DONE == "done"``), so the
history file (``runs.json``) reads and writes the same bytes it did when they were plain strings.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Where a run is. A run ends as DONE, PAUSED (resumable), STOPPED or FAILED, or stays NEW
    when a background chain stopped before it began."""

    NEW = "new"  # not started yet
    RUNNING = "running"  # a child process of this window trains it
    BACKGROUND = "background"  # a process of its own trains it (the window may be closed)
    PAUSED = "paused"  # stopped with a checkpoint; Resume continues it
    STOPPED = "stopped"  # ended early on purpose (a checkpoint, when it got to a step)
    DONE = "done"  # ran every step
    FAILED = "failed"  # ended on an error; the record's message says which

    def __str__(self) -> str:
        # The value, as a plain ``str`` would print (Python 3.10's mixin prints the name).
        return self.value
