"""The demo-preloading policy: nothing competes with the first probe for the engine thread;
once its result is on screen, every trained demo model that is not loaded yet loads quietly
(not selected, no status message), so switching to it later is instant."""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot

from app.probe.state import AppState


class DemoPreloader(QObject):
    def __init__(self, state: AppState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        state.probed.connect(self._on_probed)

    @Slot(object)
    def _on_probed(self, _analysis) -> None:
        self.state.probed.disconnect(self._on_probed)  # the first probe only
        for key, entry in list(self.state.entries.items()):
            if entry.demo and not entry.random_init and not entry.is_loaded and not entry.loading:
                self.state.load(key, select=False)
