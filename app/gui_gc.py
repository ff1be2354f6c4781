"""Python's cyclic garbage collector, run only on the GUI thread from the event loop.

Left automatic, the collector runs wherever an allocation crosses its threshold, and with Qt
that can be inside Qt's own locked regions: ``QObject::disconnect`` holds two of its pooled
signal-slot mutexes while it calls the sender's virtual ``disconnectNotify()`` (Qt documents
that it "may be called with a QObject internal mutex locked"); for a Python subclass such as
pyqtgraph's ``GraphicsView`` shiboken looks for a Python override, allocates, and a collection
starting there that frees a ``QMenu`` left in a reference cycle by a closed window locks a pool
mutex the thread already holds: the GUI thread deadlocks on itself. Collections on the engine
thread would also destroy GUI objects from the wrong thread.

So automatic collection is off and a timer on the GUI thread collects by Python's own counts and
thresholds, at a point where no Qt lock is held. This is pyqtgraph's
``pyqtgraph.util.garbage_collector.GarbageCollector`` idea; it is written out here (a dozen
lines) because the window shows before pyqtgraph is imported, and because it also needs
:func:`freeze_startup_objects`, which pyqtgraph's has no notion of.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000


class GuiGarbageCollector(QObject):
    """Turns automatic collection off and collects from a GUI-thread timer instead.

    Create it on the GUI thread once a ``QApplication`` exists; :meth:`stop` (or deleting it)
    gives automatic collection back, as it was.
    """

    def __init__(self, interval_ms: int = INTERVAL_MS, parent: QObject | None = None):
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.last_seconds = 0.0  # how long the last collection took (the stutter it caused)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> int:
        """Collect the generations whose counts passed their thresholds, as the automatic
        collector would have; returns the number of unreachable objects found."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        generation = -1
        for level in range(3):
            if counts[level] > thresholds[level]:
                generation = level
            else:
                break
        if generation < 0:
            return 0
        start = time.perf_counter()
        found = gc.collect(generation)
        self.last_seconds = time.perf_counter() - start
        return found

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()


def freeze_startup_objects() -> float:
    """Collect once, then move every object alive now (torch, core, the built window: all
    long-lived) into the permanent generation, so later full collections skip them; returns
    the collection's time in seconds."""
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - start


def full_collection_seconds() -> float:
    """The time of one full collection now (what a generation-2 timer tick costs)."""
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start
