"""A pyqtgraph canvas that takes its colours from the Qt palette, so themes apply everywhere.

On a palette change (light/dark switch) it repaints the background, axes, titles and text
items; views only build their plots once. Its right-click menu exports the plot as PNG or SVG
(:mod:`app.widgets.plot_export`); pyqtgraph's own view-box menus are switched off so that one
menu opens, not two.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QContextMenuEvent, QPalette
from PySide6.QtWidgets import QWidget

from app.widgets.plot_export import plot_menu


def foreground(widget: QWidget) -> str:
    return widget.palette().color(QPalette.ColorRole.WindowText).name()


class PlotCanvas(pg.GraphicsLayoutWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.apply_palette()

    export_name = ""  # file-name stem for exports (set by the view that owns the canvas)

    def add_key(self, row: int, col: int, columns: int = 1, **layout) -> pg.LegendItem:
        """A legend in its own layout cell (so it never covers data), as small as its
        entries, at the top left of the cell."""
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QSizePolicy

        key = pg.LegendItem(labelTextSize="8pt", colCount=columns)
        key.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.addItem(key, row=row, col=col, **layout)
        self.ci.layout.setAlignment(key, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        return key

    @staticmethod
    def fit_key(key: pg.LegendItem) -> None:
        """Hold a key to the height of its entries (layouts hand spare height to every row)."""
        key.layout.activate()
        key.setFixedHeight(key.layout.preferredHeight() + 2)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._disable_view_menus()

    def _disable_view_menus(self) -> None:
        if self.scene() is None:
            return
        for item in self.scene().items():
            if isinstance(item, pg.ViewBox) and item.menuEnabled():
                item.setMenuEnabled(False)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self._disable_view_menus()
        plot_menu(self).exec(event.globalPos())
        event.accept()

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
