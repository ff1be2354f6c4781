"""An axis that labels cell positions with token strings and thins them so they never overlap.

pyqtgraph's ``AxisItem`` always draws its first tick level, overlapping or not, and drops
horizontal labels that stick out of the plot. For a 512-token sentence that is a black smear.
:class:`TokenAxis` draws the labels itself: it measures how many pixels one cell gets at the
current zoom and first shrinks the font (down to ``MIN_POINT_SIZE``) until every label fits;
only below that it shows every k-th token, with k just large enough for one line of text per
label, and says so in the axis title ("every 2nd token labelled"). Bottom/top labels are
rotated to read upwards, so the same rule applies on both axes. A piece longer than
``max_label_px`` is elided ("supercal…"), never dropped for it; hovering its label shows the
whole piece.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

LABEL_GAP = 1.15  # a label needs this many text line-heights of room
MIN_POINT_SIZE = 6.0  # labels shrink to this size before any is dropped


def ordinal(k: int) -> str:
    """2nd, 3rd, 4th, 11th, 21st: for "every 2nd token labelled"."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


class TokenAxis(pg.AxisItem):
    """Axis whose integer positions 0..n-1 carry text labels (tokens, layers, heads)."""

    def __init__(self, orientation: str, max_label_px: int = 110, **kwargs):
        self.rotated = False  # bottom/top labels read upwards when they are wider than tall
        self._labels: list[str] = []
        self._colors: list[QColor | None] = []
        self._bold: list[bool] = []
        self.max_label_px = max_label_px
        self._title = ""  # the axis title without the "every k-th" note
        self._note_step = 1
        super().__init__(orientation, **kwargs)
        self.drawn: list[int] = []  # indices of the labels drawn in the last paint
        self.drawn_text: dict[int, str] = {}  # what each drawn label reads (elided or whole)
        self.setAcceptHoverEvents(True)
        self.setStyle(showValues=False, tickLength=0)
        self.setTicks([[], []])
        self._update_extent()

    @property
    def vertical(self) -> bool:
        return self.orientation in ("left", "right")

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def base_font(self) -> QFont:
        return self.style["tickFont"] or QFont()

    def tick_font(self) -> QFont:
        """The font the labels are drawn in: the base font, shrunk (to ``MIN_POINT_SIZE`` at
        least) until one label fits in each cell at the current zoom."""
        font = QFont(self.base_font())
        px = self.pixels_per_cell()
        size = font.pointSizeF()
        if px <= 0 or size <= 0:
            return font
        while size > MIN_POINT_SIZE and self._room_needed(font) > px:
            size = max(MIN_POINT_SIZE, size - 0.5)
            font.setPointSizeF(size)
        return font

    def _room_needed(self, font: QFont) -> float:
        """Pixels along the axis that one label in ``font`` needs."""
        metrics = QFontMetricsF(font)
        if self.vertical or self.rotated:
            return metrics.height() * LABEL_GAP
        # horizontal labels side by side need their width
        widest = min(
            max((metrics.horizontalAdvance(s) for s in self._labels), default=0.0),
            self.max_label_px,
        )
        return widest + metrics.height() * 0.5

    def set_labels(
        self,
        labels: Sequence[str],
        colors: Sequence[QColor | None] | None = None,
        bold: Sequence[bool] | None = None,
    ) -> None:
        self._labels = [str(s) for s in labels]
        self._colors = list(colors) if colors is not None else [None] * len(self._labels)
        self._bold = list(bold) if bold is not None else [False] * len(self._labels)
        self._update_extent()
        self.picture = None
        self.update()

    def set_max_label_px(self, px: int) -> None:
        """Cap the labels at ``px`` pixels (a short panel gives its matrix the room)."""
        if px != self.max_label_px:
            self.max_label_px = px
            self._update_extent()

    def setLabel(self, text=None, *args, **kwargs) -> None:
        if hasattr(self, "_title"):
            self._title, self._note_step = text or "", 1
        super().setLabel(text, *args, **kwargs)
        if hasattr(self, "max_label_px"):
            self._update_extent()

    def _show_note(self, step: int) -> None:
        """Say in the axis title that only every ``step``-th label is shown."""
        if step == self._note_step or not self._title:
            return
        self._note_step = step
        note = f" (every {ordinal(step)} token labelled)" if step > 1 else ""
        super().setLabel(self._title + note)

    def _update_extent(self) -> None:
        """Make room for the widest label (capped) plus the axis title if shown."""
        font = QFont(self.base_font())
        font.setBold(True)
        metrics = QFontMetricsF(font)
        widest = min(
            max((metrics.horizontalAdvance(s) for s in self._labels), default=0.0),
            self.max_label_px,
        )
        # short labels (layer and head numbers) stay horizontal; token labels are rotated
        self.rotated = not self.vertical and widest > metrics.height() * 1.5
        if self.vertical or self.rotated:
            extent = math.ceil(widest) + 8
        else:
            extent = math.ceil(metrics.height()) + 6
        if self.label.isVisible():
            extent += math.ceil(self.label.boundingRect().height() * 0.8)
        if self.vertical:
            self.setWidth(extent)
        else:
            self.setHeight(extent)

    # -- geometry --------------------------------------------------------------------------
    def _axis_coord(self, value: float) -> float | None:
        """Pixel coordinate along this axis (item coordinates) of a view value."""
        view = self.linkedView()
        if view is None or self.scene() is None:
            return None
        point = self.mapFromScene(view.mapViewToScene(QPointF(value, value)))
        return point.y() if self.vertical else point.x()

    def pixels_per_cell(self) -> float:
        a, b = self._axis_coord(0.0), self._axis_coord(1.0)
        return 0.0 if a is None or b is None else abs(b - a)

    def stride(self) -> int:
        """Show every ``stride``-th label: the smallest step with a text line of room each."""
        n = len(self._labels)
        if n == 0:
            return 1
        px = self.pixels_per_cell()
        if px <= 0:
            return n
        return max(1, math.ceil(self._room_needed(self.tick_font()) / px - 1e-6))

    def visible_indices(self) -> list[int]:
        """Indices whose labels fit: every stride-th one inside the visible range."""
        n = len(self._labels)
        if n == 0 or self.linkedView() is None:
            return []
        step = self.stride()
        lo, hi = self.range if self.range[0] <= self.range[1] else self.range[::-1]
        first = max(0, math.ceil(lo))
        first += (-first) % step
        last = min(n - 1, math.floor(hi))
        return list(range(first, last + 1, step))

    def label_at(self, pos: QPointF) -> int | None:
        """The drawn label at ``pos`` (item coordinates): the one whose cell is nearest."""
        origin, unit = self._axis_coord(0.0), self._axis_coord(1.0)
        if origin is None or unit is None or unit == origin or not self.drawn:
            return None
        along = pos.y() if self.vertical else pos.x()
        index = round((along - origin) / (unit - origin))
        return index if index in self.drawn_text else None

    def tooltip_at(self, pos: QPointF) -> str:
        """The whole piece under ``pos`` with its position, or "" where no label is drawn."""
        index = self.label_at(pos)
        return "" if index is None else f"#{index} {self._labels[index]}"

    def hoverEvent(self, ev) -> None:
        self.setToolTip("" if ev.isExit() else self.tooltip_at(ev.pos()))

    # -- drawing ---------------------------------------------------------------------------
    def drawPicture(self, p: QPainter, axisSpec, tickSpecs, textSpecs) -> None:
        super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
        p.setClipping(False)  # the first and last labels may overhang the plot by half a line
        self.drawn, self.drawn_text = [], {}
        if not self._labels:
            return
        origin, unit = self._axis_coord(0.0), self._axis_coord(1.0)
        if origin is None or unit is None:
            return
        bounds = self.boundingRect()
        font = self.tick_font()
        height = QFontMetricsF(font).height()
        pen = self.textPen()
        fonts = [QFont(font), QFont(font)]
        fonts[1].setBold(True)
        metrics = [QFontMetricsF(f) for f in fonts]
        indices = self.visible_indices()
        self._show_note(indices[1] - indices[0] if len(indices) > 1 else 1)
        for index in indices:
            pos = origin + index * (unit - origin)  # the axis maps values linearly
            bold = int(self._bold[index]) if index < len(self._bold) else 0
            p.setFont(fonts[bold])
            text = metrics[bold].elidedText(
                self._labels[index], Qt.TextElideMode.ElideRight, self.max_label_px
            )
            color = self._colors[index] if index < len(self._colors) else None
            p.setPen(color if color is not None else pen.color())
            pad = 4.0
            if self.orientation == "left":
                rect = QRectF(0, pos - height / 2, bounds.width() - pad, height)
                p.drawText(
                    rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text
                )
            elif self.orientation == "right":
                rect = QRectF(pad, pos - height / 2, bounds.width() - pad, height)
                p.drawText(
                    rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text
                )
            elif not self.rotated:
                width = metrics[bold].horizontalAdvance(text) + 2
                top = pad if self.orientation == "bottom" else 0.0
                rect = QRectF(pos - width / 2, top, width, height)
                p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
            else:
                # Rotated to read upwards; the text ends next to the plot.
                length = bounds.height() - pad
                p.save()
                if self.orientation == "bottom":
                    p.translate(pos, pad)
                    p.rotate(-90)
                    rect = QRectF(-length, -height / 2, length, height)
                    flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                else:
                    p.translate(pos, bounds.height() - pad)
                    p.rotate(-90)
                    rect = QRectF(0, -height / 2, length, height)
                    flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                p.drawText(rect, int(flags), text)
                p.restore()
            self.drawn.append(index)
            self.drawn_text[index] = text
