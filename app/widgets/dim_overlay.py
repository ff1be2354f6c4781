"""A translucent sheet over a widget: "these panels are out of date", drawn as one clean layer.

A ``QGraphicsOpacityEffect`` on a widget that holds docks and ``QGraphicsView``s renders the
children offscreen and composes them again, and they came out as two offset copies (ghosting);
a child widget that paints one translucent rectangle over its parent has nothing to compose.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

OPACITY = 0.55  # of the window colour over the panels: they read as dimmed, still legible


class DimOverlay(QWidget):
    """Covers ``target`` (following its size) while shown; mouse events pass through to it."""

    def __init__(self, target: QWidget, opacity: float = OPACITY):
        super().__init__(target)
        self.opacity = opacity
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        target.installEventFilter(self)
        self.hide()

    def colour(self) -> QColor:
        colour = QColor(self.palette().color(QPalette.ColorRole.Window))
        colour.setAlphaF(self.opacity)
        return colour

    def cover(self, on: bool) -> None:
        if on:
            self.setGeometry(self.parentWidget().rect())
            self.raise_()
        self.setVisible(on)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        elif event.type() == QEvent.Type.ChildAdded and self.isVisible():
            self.raise_()  # a dock re-parented into the area stays under the sheet
        return False

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.colour())
        painter.end()
