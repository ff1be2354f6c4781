"""The main window's status bar: messages that clear themselves, the engine's busy bar, the
device in use and the memory in use.

The resident memory is this process's, read from ``/proc`` on the GUI thread (no torch). A
model on a GPU adds torch's allocated and reserved memory, which only the engine thread reads:
the poll timer submits :func:`accelerator_memory` as a quiet job (newest wins, and it never
makes the busy bars flash), so the GUI thread never imports or calls torch.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from app.probe.state import AppState

MESSAGE_MS = 8000  # status-bar messages clear themselves after this long
MEMORY_POLL_MS = 2000
MEMORY = "status-memory"  # engine channel of the GPU memory reading


def resident_memory() -> tuple[int, str]:
    """Resident memory of this process in bytes, and what the figure is ("RSS" or "peak")."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "RSS"
    except (OSError, ValueError, IndexError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), "peak"


def accelerator_memory(device: str) -> tuple[int, int] | None:
    """GPU memory on ``device`` in bytes: (allocated by tensors, reserved by torch's caching
    allocator, the part of ``nvidia-smi``'s figure that is ours less the CUDA context); None on
    CPU. Runs on the engine thread (torch is imported there)."""
    import torch

    from core.device import memory_in_use, memory_reserved

    where = torch.device(device)
    allocated, reserved = memory_in_use(where), memory_reserved(where)
    if allocated is None or reserved is None:
        return None
    return allocated, reserved


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover


class WindowStatus(QObject):
    """What the status bar shows, kept up to date from the state's signals."""

    def __init__(self, bar: QStatusBar, state: AppState):
        super().__init__(bar)
        self.state = state
        self.message = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.device_label = QLabel("Device: starting engine\u2026")
        self.memory_label = QLabel("")
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.busy)
        bar.addPermanentWidget(self.device_label)
        bar.addPermanentWidget(self.memory_label)
        self.message_timer = QTimer(self)
        self.message_timer.setSingleShot(True)
        self.message_timer.setInterval(MESSAGE_MS)
        self.message_timer.timeout.connect(lambda: self.message.setText(""))
        self.memory_timer = QTimer(self)
        self.memory_timer.setInterval(MEMORY_POLL_MS)
        self.memory_timer.timeout.connect(self.poll_memory)

        state.started.connect(lambda _info: self.update_device())
        state.models_changed.connect(self.update_device)
        state.current_changed.connect(self._on_current_changed)
        state.busy_changed.connect(self.busy.setVisible)
        state.probe_failed.connect(self.show_message)
        state.mask_failed.connect(self.show_message)
        state.reported.connect(self.show_message)
        self.memory_timer.start()
        self.poll_memory()

    def show_message(self, text: str) -> None:
        """A status-bar message that clears itself after MESSAGE_MS."""
        self.message.setText(text)
        self.message.setToolTip(text)
        if text:
            self.message_timer.start()
        else:
            self.message_timer.stop()

    @Slot()
    def update_device(self) -> None:
        entry = self.state.current
        if entry is not None and entry.summary is not None:
            self.device_label.setText(f"Device: {entry.summary.device_name}")
        elif self.state.info is not None:
            self.device_label.setText(f"Device: {self.state.info.device_name}")

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        entry = self.state.entries.get(key)
        if entry is None or entry.name not in self.message.text():
            self.show_message("")  # a message about another model would contradict this one
        self.update_device()

    @Slot()
    def poll_memory(self) -> None:
        """Show this process's memory now; a model on a GPU adds torch's figures once the
        engine thread has read them."""
        rss, kind = resident_memory()
        text = f"Memory: {format_bytes(rss)} {kind}"
        entry = self.state.current
        if entry is None or not entry.device or entry.device.startswith("cpu"):
            self.memory_label.setText(text)
            return
        device = entry.device

        def show(used: tuple[int, int] | None) -> None:
            if used is None:
                self.memory_label.setText(text)
                return
            allocated, reserved = used
            self.memory_label.setText(
                f"{text} \u00b7 {device}: {format_bytes(allocated)} allocated, "
                f"{format_bytes(reserved)} reserved"
            )

        self.state.engine.submit_latest(
            MEMORY, accelerator_memory, device, on_done=show, on_error=lambda _m: show(None),
            quiet=True,
        )  # fmt: skip

    def stop(self) -> None:
        self.memory_timer.stop()
