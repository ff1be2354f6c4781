"""A pyqtgraph canvas that takes its colours from the Qt palette, so themes apply everywhere.

On a palette change (light/dark switch) it repaints the background, axes, titles and text
items; views only build their plots once.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QWidget


def foreground(widget: QWidget) -> str:
    return widget.palette().color(QPalette.ColorRole.WindowText).name()


class PlotCanvas(pg.GraphicsLayoutWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.apply_palette()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.apply_palette()

    def apply_palette(self) -> None:
        if self.scene() is None or not hasattr(self, "ci"):
            return  # still inside GraphicsView.__init__
        palette = self.palette()
        fg = palette.color(QPalette.ColorRole.WindowText)
        self.setBackground(palette.color(QPalette.ColorRole.Base))
        for item in self.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(fg)
                item.setTextPen(fg)
                item.label.setDefaultTextColor(fg)
            elif isinstance(item, pg.LabelItem):
                item.opts["color"] = fg
                item.setText(item.text)
            elif isinstance(item, pg.TextItem) and getattr(item, "follow_theme", False):
                item.setColor(fg)
