"""File -> Open recent: the model folders the user opened (not the demos), newest first, kept
in ``QSettings`` under "recent"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Slot
from PySide6.QtWidgets import QMenu

from app.probe.state import AppState

MAX_RECENT = 8


class RecentModels(QObject):
    """Fills ``menu`` with the recent folders; picking one opens it through the state."""

    def __init__(self, settings: QSettings, state: AppState, menu: QMenu):
        super().__init__(menu)
        self.settings, self.state, self.menu = settings, state, menu
        state.loaded.connect(self._on_loaded)
        self._rebuild()

    def paths(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def remember(self, path: Path) -> None:
        recent = [p for p in self.paths() if Path(p) != path]
        recent.insert(0, str(path))
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._rebuild()

    def clear(self) -> None:
        self.settings.setValue("recent", [])
        self._rebuild()

    @Slot(str)
    def _on_loaded(self, key: str) -> None:
        entry = self.state.entries.get(key)
        if entry is not None and entry.path is not None and not entry.demo:
            self.remember(entry.path)

    def _rebuild(self) -> None:
        self.menu.clear()
        recent = self.paths()
        for i, path in enumerate(recent):
            action = self.menu.addAction(f"&{i + 1} {path}")
            action.triggered.connect(lambda _=False, p=path: self.state.open_folder(p))
        if not recent:
            empty = self.menu.addAction("(none yet)")
            empty.setEnabled(False)
        else:
            self.menu.addSeparator()
            self.menu.addAction("Clear list").triggered.connect(self.clear)
