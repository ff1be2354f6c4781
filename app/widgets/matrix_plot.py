"""A labelled matrix heatmap, after pyqtgraph's ``examples/MatrixDisplayExample.py``.

``ImageItem(axisOrder="row-major")`` so ``image[row, col]`` is row ``row`` on screen; a -0.5
translate so cell (i, j) is centred on the integer ticks (j, i); ``invertY`` so row 0 is at the
top; :class:`TokenAxis` labels on the left (rows) and bottom (columns); a ``ColorBarItem`` with
fixed levels, so the colours mean the same weight from one sentence to the next. Hovering and
clicking report the cell under the mouse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QTransform

from app.widgets.token_axis import TokenAxis

MIN_CELL_PX = 16  # a long input's first view keeps cells at least this big (labels fit)
SHORT_INPUT = 24  # up to this many tokens the whole matrix is shown, however small its cells


def fit_colorbar(bar: pg.ColorBarItem) -> None:
    """Keep the colour bar's axis as wide as its widest tick label at its current height (the
    ticks change with it): pyqtgraph fixes it at 45 px, which cuts "1.00" to "1.(" in a large
    font or at a range like 0-12.5."""
    axis = bar.axis
    if not getattr(axis, "fits_labels", False):
        axis.fits_labels = True
        axis.geometryChanged.connect(lambda: _fit_axis(bar))
    _fit_axis(bar)


def _fit_axis(bar: pg.ColorBarItem) -> None:
    axis = bar.axis
    low, high = (float(v) for v in bar.levels())
    metrics = QFontMetricsF(axis.style["tickFont"] or QFont())
    widest = 0.0
    for spacing, values in axis.tickValues(low, high, max(float(axis.height()), 60.0)):
        for text in axis.tickStrings(values, axis.scale, spacing):
            widest = max(widest, metrics.horizontalAdvance(text))
    width = widest + axis.style["tickTextOffset"][0] + max(0, axis.style["tickLength"]) + 6
    if axis.label.isVisible():
        width += axis.label.boundingRect().height() * 0.8
    if math.ceil(width) != axis.width():
        axis.setWidth(math.ceil(width))


class MatrixImage(pg.ImageItem):
    """An ImageItem that tells which cell the mouse is over or clicked."""

    hovered = Signal(object)  # (row, col), or None when the mouse left the image
    clicked = Signal(int, int)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The (row, col) under ``pos`` (item coordinates: cell (i, j) spans [j, j+1) x [i, i+1))."""
        if self.image is None:
            return None
        col, row = math.floor(pos.x()), math.floor(pos.y())
        rows, cols = self.image.shape[:2]
        return (row, col) if 0 <= row < rows and 0 <= col < cols else None

    def hoverEvent(self, ev) -> None:
        if ev.isExit():
            self.hovered.emit(None)
            return
        self.hovered.emit(self.cell_at(ev.pos()))

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(ev.pos())
        if cell is not None:
            ev.accept()
            self.clicked.emit(*cell)


class MatrixPlot(pg.PlotItem):
    """Heatmap of a 2-D array with text labels on both axes and a fixed-level colour bar."""

    def __init__(
        self,
        colormap: str = "inferno",
        levels: tuple[float, float] = (0.0, 1.0),
        colorbar: bool = True,
        interactive: bool = True,
        max_label_px: int = 110,
        title: str | None = None,
        square: bool = False,
    ):
        self.row_axis = TokenAxis("left", max_label_px=max_label_px)
        self.col_axis = TokenAxis("bottom", max_label_px=max_label_px)
        super().__init__(axisItems={"left": self.row_axis, "bottom": self.col_axis}, title=title)
        self.image = MatrixImage(axisOrder="row-major")
        self.image.setTransform(QTransform().translate(-0.5, -0.5))
        self.addItem(self.image)
        self.invertY(True)
        self.setDefaultPadding(0.0)
        self.setMenuEnabled(False)
        self.hideButtons()
        for side in ("top", "right"):
            self.showAxis(side)
            self.getAxis(side).setStyle(showValues=False, tickLength=0)
        self.cmap = pg.colormap.get(colormap)
        self.levels = tuple(levels)
        self.colorbar: pg.ColorBarItem | None = None
        if colorbar:
            self.colorbar = pg.ColorBarItem(
                values=self.levels,
                colorMap=self.cmap,
                interactive=interactive,
                width=12,
                rounding=0.01,
            )
            self.colorbar.setImageItem(self.image, insert_in=self)
            fit_colorbar(self.colorbar)
        else:
            self.image.setLookupTable(self.cmap.getLookupTable(nPts=256))
            self.image.setLevels(self.levels)
        self._shape: tuple[int, ...] | None = None
        # cells stay square for a long input (it scrolls and zooms, never squeezes); up to
        # SHORT_INPUT tokens the matrix fills its panel instead, with no bands beside it
        self.square = square
        self.locked = False  # the aspect is locked now (a square plot with a long input)
        self.floor = 0.0  # where the colour map starts (set_colormap_floor)
        self.max_visible = 0  # with square cells: rows/cols shown at first (0 = all)
        # the block last asked for, shown again when the view is resized until the user pans
        # or zooms (a locked aspect would otherwise re-centre it)
        self._block: tuple[int, int] | None = None
        self.getViewBox().sigResized.connect(self._on_view_resized)
        self.getViewBox().sigRangeChangedManually.connect(self._on_manual_range)

    @property
    def data(self) -> np.ndarray | None:
        return self.image.image

    def set_colormap_floor(self, floor: float) -> None:
        """Start the colour map at ``floor`` (0..1) instead of its darkest colour: inferno's
        black would melt into a dark panel. The colour bar shows the same map."""
        positions = np.linspace(0.0, 1.0, 64)
        colors = self.cmap.map(floor + (1.0 - floor) * positions, mode="byte")
        cmap = pg.ColorMap(positions, colors)
        if self.colorbar is not None:
            self.colorbar.setColorMap(cmap)
        else:
            self.image.setLookupTable(cmap.getLookupTable(nPts=256))
        self.floor = floor

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.levels = (float(levels[0]), float(levels[1]))
        if self.colorbar is not None:
            self.colorbar.setLevels(self.levels)
            fit_colorbar(self.colorbar)
        else:
            self.image.setLevels(self.levels)

    def set_labels(
        self,
        rows: Sequence[str],
        cols: Sequence[str] | None = None,
        row_colors: Sequence[QColor | None] | None = None,
        col_colors: Sequence[QColor | None] | None = None,
        row_bold: Sequence[bool] | None = None,
        col_bold: Sequence[bool] | None = None,
    ) -> None:
        """Row and column labels (columns default to the row labels, as for attention)."""
        self.row_axis.set_labels(rows, row_colors, row_bold)
        if cols is None:
            cols, col_colors, col_bold = rows, row_colors, row_bold
        self.col_axis.set_labels(cols, col_colors, col_bold)

    def set_matrix(self, data: np.ndarray, levels: tuple[float, float] | None = None) -> None:
        """Show ``data`` (rows, cols) at fixed levels; the view resets when the shape changes."""
        data = np.asarray(data)
        rows, cols = data.shape[:2]
        self.image.setImage(data, autoLevels=False)
        if levels is not None:
            self.set_levels(levels)
        else:
            self.image.setLevels(self.levels)
        if data.shape != self._shape:
            self._shape = data.shape
            vb = self.getViewBox()
            self.locked = self.square and max(rows, cols) > SHORT_INPUT
            vb.setAspectLocked(self.locked, ratio=1.0)
            # square cells in a wide or tall view leave blank room beside the matrix: allow it
            room = 3 * max(rows, cols) if self.locked else 0
            vb.setLimits(
                xMin=-0.5 - room,
                xMax=cols - 0.5 + room,
                yMin=-0.5 - room,
                yMax=rows - 0.5 + room,
                minXRange=min(cols, 2),
                minYRange=min(rows, 2),
            )
            self.show_block(0, max(rows, cols) - 1)

    def _on_view_resized(self, *_args) -> None:
        if self._block is not None:
            self.show_block(*self._block)

    def _on_manual_range(self, *_args) -> None:
        self._block = None

    def show_block(self, first: int, last: int) -> None:
        """Zoom to rows and columns ``first``..``last``; with square cells and a long input the
        first view is the first ``max_visible`` tokens (scroll or zoom out for the rest)."""
        if self._shape is None:
            return
        self._block = (first, last)
        rows, cols = self._shape[:2]
        vb = self.getViewBox()
        if self.square and self.max_visible and first == 0 and max(rows, cols) > SHORT_INPUT:
            # the first view of a long input: at most max_visible tokens, and cells big enough
            # for every label (MIN_CELL_PX), scroll or zoom out for the rest
            fit = int(min(vb.width(), vb.height()) / MIN_CELL_PX) if vb.width() > 1 else 0
            limit = max(8, min(self.max_visible, fit)) if fit else self.max_visible
            last = min(last, limit - 1)
        last_row, last_col = min(last, rows - 1), min(last, cols - 1)
        x_span, y_span = last_col + 1.0 - first, last_row + 1.0 - first
        if self.locked and vb.width() > 1 and vb.height() > 1:
            # ask for a range of the view's own aspect, so the locked aspect does not centre
            # the block: it stays at the top-left, the extra room goes right or down
            ratio = vb.height() / vb.width()
            x_span, y_span = max(x_span, y_span / ratio), max(y_span, x_span * ratio)
        x0 = y0 = first - 0.5
        if first == 0 and last_row == rows - 1 and last_col == cols - 1:
            # the whole matrix with room to spare: centre it in that room
            x0 -= (x_span - cols) / 2
            y0 -= (y_span - rows) / 2
        vb.setRange(xRange=(x0, x0 + x_span), yRange=(y0, y0 + y_span), padding=0)

    def show_whole(self) -> None:
        """The whole matrix in view, which a later resize keeps (no block to return to)."""
        self._block = None
        if self._shape is None:
            return
        rows, cols = self._shape[:2]
        self.getViewBox().setRange(xRange=(-0.5, cols - 0.5), yRange=(-0.5, rows - 0.5), padding=0)

    def clear_matrix(self) -> None:
        self.image.clear()
        self.row_axis.set_labels([])
        self.col_axis.set_labels([])
        self._shape = None
