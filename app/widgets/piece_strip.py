"""One model's word pieces as a wrapped row of chips that can be highlighted from outside.

The Compare tab shows two of them, one per tokenizer; hovering or clicking a piece in one
reports its index, and the view highlights the pieces covering the same characters in the
other (``core.analysis.side_by_side.align_tokens``). Colours as the Probe tab's token strip:
text A and B tinted, special tokens grey and bold, [MASK] pink; highlighted pieces get a thick
outline, the focused one a filled accent.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.theme import display_token, token_colors

CHIP_PAD = 5.0
GAP = 4.0
PIECE_GAP = 1.0
SEGMENT_GAP = 14.0


class PieceStrip(QWidget):
    hovered = Signal(int)  # token index under the mouse, -1 when none
    clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tokens: list = []  # core.analysis.TokenInfo
        self.mask_token = "[MASK]"
        self.highlighted: set[int] = set()
        self.focused: int | None = None
        self.rects: list[QRectF] = []
        self._hover = -1
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_tokens(self, tokens: list, mask_token: str = "[MASK]") -> None:
        self.tokens, self.mask_token = list(tokens), mask_token
        self.highlighted, self.focused = set(), None
        self._relayout()

    def set_highlight(self, indices, focused: int | None = None) -> None:
        self.highlighted, self.focused = set(indices), focused
        self.update()

    def _bold(self) -> QFont:
        font = QFont(self.font())
        font.setBold(True)
        return font

    def _compute(self, width: float) -> tuple[list[QRectF], float]:
        fm, bold = QFontMetricsF(self.font()), QFontMetricsF(self._bold())
        h = fm.height() + 8
        x, y, rects = 2.0, 2.0, []
        for i, tok in enumerate(self.tokens):
            w = (bold if tok.special else fm).horizontalAdvance(display_token(tok.text))
            w += 2 * CHIP_PAD
            if i > 0:
                gap = PIECE_GAP if tok.continuation else GAP
                x += SEGMENT_GAP if tok.segment != self.tokens[i - 1].segment else gap
            if x + w > width - 2 and x > 2.0:
                x, y = 2.0, y + h + 4
            rects.append(QRectF(x, y, w, h))
            x += w
        return rects, (y + h + 2 if self.tokens else h)

    def _relayout(self) -> None:
        self.rects, height = self._compute(float(max(self.width(), 100)))
        self.setFixedHeight(int(height) + 2)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        rects, height = self._compute(float(max(self.width(), 100)))
        self.rects = rects
        if int(height) + 2 != self.height():
            self.setFixedHeight(int(height) + 2)

    def index_at(self, pos: QPointF) -> int:
        return next((i for i, r in enumerate(self.rects) if r.contains(pos)), -1)

    def centre_of(self, index: int) -> QPointF:
        return self.rects[index].center()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colors = token_colors(self.palette())
        fonts = (self.font(), self._bold())
        for i, (tok, rect) in enumerate(zip(self.tokens, self.rects, strict=False)):
            if tok.text == self.mask_token:
                fill = colors.mask
            elif tok.special:
                fill = colors.special
            else:
                fill = colors.segment_b if tok.segment == 1 else colors.segment_a
            painter.setBrush(colors.selected if i == self.focused else fill)
            if i in self.highlighted:
                painter.setPen(QPen(colors.selected, 3.0))
            else:
                painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(colors.text)
            painter.setFont(fonts[tok.special])
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), display_token(tok.text))
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position())
        if index != self._hover:
            self._hover = index
            self.hovered.emit(index)
            if index >= 0:
                tok = self.tokens[index]
                span = f", characters {tok.span[0]}\u2013{tok.span[1]}" if tok.span else ""
                self.setToolTip(f"#{index} {tok.text!r}{span}")

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        if self._hover != -1:
            self._hover = -1
            self.hovered.emit(-1)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and index >= 0:
            self.clicked.emit(index)
            return
        super().mousePressEvent(event)
