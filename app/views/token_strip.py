"""The word pieces of the probed input as a wrapped strip of chips.

Text A and text B get different tints, special tokens ([CLS], [SEP], ...) are grey and bold,
[MASK] tokens are pink, and word-piece continuations ("##ing", or SentencePiece pieces that do
not start a word) sit flush against the piece before them so words read as words. Click a
token to focus on it (what it attends to); right-click for "Mask and predict".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolTip, QWidget

from app.state import AppState
from app.theme import display_token, token_colors

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

CHIP_PAD = 5.0  # horizontal padding inside a chip
GAP = 4.0  # between words
PIECE_GAP = 1.0  # between pieces of one word
SEGMENT_GAP = 14.0  # before text B


class TokenStrip(QWidget):
    token_selected = Signal(int)
    mask_requested = Signal(int)
    laid_out = Signal(int)  # height the chips need at the current width

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.tokens: list = []  # core.analysis.TokenInfo
        self.mask_token = "[MASK]"
        self.has_mlm = False
        self.selected_index: int | None = None
        self.rects: list[QRectF] = []
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        state.probed.connect(self._on_probed)
        state.current_changed.connect(self._on_current_changed)

    # -- data ------------------------------------------------------------------------------
    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        self.tokens = list(result.tokens)
        self.mask_token = result.special_tokens.get("mask", "[MASK]")
        self.has_mlm = result.has_mlm
        if self.selected_index is not None and self.selected_index >= len(self.tokens):
            self.selected_index = None
        self._relayout()

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.tokens, self.selected_index = [], None
            self._relayout()

    def select(self, index: int | None) -> None:
        self.selected_index = index
        self.update()
        if index is not None:
            self.token_selected.emit(index)

    # -- layout ----------------------------------------------------------------------------
    def _font(self, special: bool) -> QFont:
        if not special:
            return self.font()
        font = QFont(self.font())
        font.setBold(True)
        return font

    def _compute(self, width: float) -> tuple[list[QRectF], float]:
        fm = QFontMetricsF(self.font())
        bold = QFontMetricsF(self._font(True))
        h = fm.height() + 8
        x, y, rects = 2.0, 2.0, []
        for i, tok in enumerate(self.tokens):
            metrics = bold if tok.special else fm
            w = metrics.horizontalAdvance(display_token(tok.text)) + 2 * CHIP_PAD
            if i > 0:
                prev = self.tokens[i - 1]
                gap = PIECE_GAP if tok.continuation else GAP
                if tok.segment != prev.segment:
                    gap = SEGMENT_GAP
                x += gap
            if x + w > width - 2 and x > 2.0:
                x, y = 2.0, y + h + 4
            rects.append(QRectF(x, y, w, h))
            x += w
        return rects, (y + h + 2 if self.tokens else 0.0)

    def _relayout(self) -> None:
        self.rects, height = self._compute(float(max(self.width(), 100)))
        self.setMinimumHeight(int(height) + 2)
        self.updateGeometry()
        self.update()
        self.laid_out.emit(int(height) + 2)

    def sizeHint(self) -> QSize:
        return QSize(400, max(32, self.minimumHeight()))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    def index_at(self, pos: QPoint) -> int | None:
        point = QPointF(pos)
        for i, rect in enumerate(self.rects):
            if rect.contains(point):
                return i
        return None

    # -- painting --------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colors = token_colors(self.palette())
        fonts = (self._font(False), self._font(True))
        for i, (tok, rect) in enumerate(zip(self.tokens, self.rects, strict=False)):
            if tok.special and tok.text == self.mask_token:
                fill = colors.mask
            elif tok.special:
                fill = colors.special
            else:
                fill = colors.segment_b if tok.segment == 1 else colors.segment_a
            painter.setBrush(fill)
            if i == self.selected_index:
                painter.setPen(QPen(colors.selected, 2.5))
            else:
                painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(colors.text)
            painter.setFont(fonts[tok.special])
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), display_token(tok.text))
        painter.end()

    # -- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and index is not None:
            self.select(index)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if index is None:
            QToolTip.hideText()
            return
        QToolTip.showText(event.globalPosition().toPoint(), self.describe(index), self)

    def describe(self, index: int) -> str:
        tok = self.tokens[index]
        kind = (
            "special token"
            if tok.special
            else ("word piece (continues a word)" if tok.continuation else "word piece")
        )
        seg = "B" if tok.segment == 1 else "A"
        span = f", characters {tok.span[0]}\u2013{tok.span[1]}" if tok.span else ""
        return f"#{index} {tok.text!r} (id {tok.id}): {kind}, segment {seg}{span}"

    def menu_for(self, index: int) -> QMenu:
        """The right-click menu of token ``index``."""
        menu = QMenu(self)
        tok = self.tokens[index]
        focus = QAction(f"Show where {tok.text!r} looks", menu)
        focus.triggered.connect(lambda: self.select(index))
        menu.addAction(focus)
        predict = QAction(f"Mask and predict {tok.text!r}", menu)
        predict.setEnabled(self.has_mlm and not tok.special)
        if tok.special:
            predict.setToolTip("special tokens cannot be masked")
        elif not self.has_mlm:
            predict.setToolTip("this model has no MLM head")
        predict.triggered.connect(lambda: self.mask_requested.emit(index))
        menu.addAction(predict)
        return menu

    def contextMenuEvent(self, event) -> None:
        index = self.index_at(event.pos())
        if index is None:
            return
        self.menu_for(index).exec(event.globalPos())
