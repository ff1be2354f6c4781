"""Menu and toolbar actions the way every window part makes them: a shortcut named in the
tooltip, a status tip, and added to the window so the shortcut works with the menu bar hidden."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


def make_action(
    owner: QWidget,
    text: str,
    slot: Callable[..., object],
    shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
    tip: str | None = None,
) -> QAction:
    """An action of ``owner`` that runs ``slot``."""
    action = QAction(text, owner)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
    action.triggered.connect(slot)
    owner.addAction(action)  # shortcuts work even with the menu bar hidden
    return action
