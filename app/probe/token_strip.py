"""The word pieces of the probed input as a wrapped strip of chips.

Text A and text B get different tints, special tokens ([CLS], [SEP], ...) are grey and bold,
[MASK] tokens are pink and unknown tokens ([UNK], ``<unk>``) have a red dashed outline, both
recognised by vocabulary id; word-piece continuations ("##ing", or SentencePiece pieces that
do not start a word) sit flush against the piece before them so words read as words. Text cut
by truncation follows a scissors marker, greyed. Click a token to focus on it (what it attends
to); drag across tokens to select a span (the heatmap zooms to it); right-click for "Mask and
predict", which frames the masked token in dashes and strikes it out until the next probe.
A selection follows its characters to the next result (``AppState.carry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolTip, QWidget

from app.probe.state import AppState
from app.theme import display_token, token_colors

MAX_DROPPED_WORDS = 40  # greyed words of the cut text shown after the marker

if TYPE_CHECKING:  # pragma: no cover
    from app.probe.calls import MaskAnswer
    from core.analysis.summary import ProbeAnalysis

CHIP_PAD = 5.0  # horizontal padding inside a chip
GAP = 4.0  # between words
PIECE_GAP = 1.0  # between pieces of one word
SEGMENT_GAP = 14.0  # before text B


class TokenStrip(QWidget):
    token_selected = Signal(int)
    span_selected = Signal(int, int)  # first and last token of a dragged span
    mask_requested = Signal(int)
    laid_out = Signal(int)  # height the chips need at the current width

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.result = None  # core ProbeResult on screen
        self.tokens: list = []  # core.analysis.TokenInfo
        self.kinds: list[str] = []  # per token: "mask", "unknown", "special" or "text"
        self.dropped: list[str] = []  # chips after the tokens: the marker, then cut words
        self.has_mlm = False
        self.selected_index: int | None = None
        self.masked_index: int | None = None  # the token "Mask and predict" replaced by [MASK]
        self.span: tuple[int, int] | None = None  # a dragged span, first..last
        self._press: int | None = None
        self.rects: list[QRectF] = []  # one per token, then one per dropped chip
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        state.probed.connect(self._on_probed)
        state.current_changed.connect(self._on_current_changed)
        state.masked.connect(self._on_masked)

    # -- data ------------------------------------------------------------------------------
    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        if self.selected_index is not None:
            self.selected_index = (
                self.state.carry(self.selected_index) if self.result is not None else None
            )
        self.span = None
        self.masked_index = None  # a new probe reads the sentence as typed
        self.result = result
        self.tokens = list(result.tokens)
        masks, unknowns = result.ids_of("mask"), result.ids_of("unk")
        self.kinds = [
            "mask" if masks[i] else "unknown" if unknowns[i] else "special" if t.special else "text"
            for i, t in enumerate(self.tokens)
        ]
        self.dropped = []
        if result.truncated:
            words = " ".join(part for part in result.dropped if part).split()
            self.dropped = [f"\u2702 cut: {len(words)} more words", *words[:MAX_DROPPED_WORDS]]
            if len(words) > MAX_DROPPED_WORDS:
                self.dropped.append("\u2026")
        self.has_mlm = result.has_mlm
        self._relayout()

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.tokens, self.kinds, self.dropped, self.result = [], [], [], None
            self.selected_index = self.span = None
            self._relayout()

    @Slot(object)
    def _on_masked(self, answer: MaskAnswer) -> None:
        """Mark the token Masked words now predicts (a dashed [MASK] frame and a tooltip)."""
        position = answer.prediction.position
        self.masked_index = position if 0 <= position < len(self.tokens) else None
        self.update()

    def select(self, index: int | None) -> None:
        self.selected_index = index
        self.span = None
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

    def row_height(self) -> float:
        """Height of one row of chips, the gap to the next row included."""
        return QFontMetricsF(self.font()).height() + 8 + 4

    def _compute(self, width: float) -> tuple[list[QRectF], float]:
        fm = QFontMetricsF(self.font())
        bold = QFontMetricsF(self._font(True))
        h = fm.height() + 8
        x, y, rects = 2.0, 2.0, []
        chips = [
            (display_token(t.text), self.kinds[i] in ("special", "mask"), t)
            for i, t in enumerate(self.tokens)
        ] + [(word, False, None) for word in self.dropped]
        for i, (text, is_bold, tok) in enumerate(chips):
            metrics = bold if is_bold else fm
            w = metrics.horizontalAdvance(text) + 2 * CHIP_PAD
            if i > 0:
                prev = self.tokens[i - 1] if i - 1 < len(self.tokens) else None
                if tok is None:
                    gap = SEGMENT_GAP if i == len(self.tokens) else GAP
                else:
                    gap = PIECE_GAP if tok.continuation else GAP
                    if prev is not None and tok.segment != prev.segment:
                        gap = SEGMENT_GAP
                x += gap
            if x + w > width - 2 and x > 2.0:
                x, y = 2.0, y + h + 4
            rects.append(QRectF(x, y, w, h))
            x += w
        return rects, (y + h + 2 if chips else 0.0)

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
        """The token under ``pos`` (None over a gap or the cut text)."""
        point = QPointF(pos)
        for i, rect in enumerate(self.rects[: len(self.tokens)]):
            if rect.contains(point):
                return i
        return None

    # -- painting --------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colors = token_colors(self.palette())
        fonts = (self._font(False), self._font(True))
        span = range(self.span[0], self.span[1] + 1) if self.span else range(0)
        for i, (tok, rect) in enumerate(zip(self.tokens, self.rects, strict=False)):
            kind = self.kinds[i]
            if kind == "mask":
                fill = colors.mask
            elif kind == "special":
                fill = colors.special
            else:
                fill = colors.segment_b if tok.segment == 1 else colors.segment_a
            painter.setBrush(fill)
            if i == self.selected_index or i in span:
                painter.setPen(QPen(colors.selected, 2.5))
            elif kind == "unknown":
                painter.setPen(QPen(colors.unknown, 1.6, Qt.PenStyle.DashLine))
            else:
                painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(rect, 4, 4)
            if i == self.masked_index:  # "Mask and predict": a [MASK]-pink dashed frame
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(QPen(colors.mask.darker(160), 2.0, Qt.PenStyle.DashLine))
                painter.drawRoundedRect(rect.adjusted(-1.5, -1.5, 1.5, 1.5), 5, 5)
            painter.setPen(colors.unknown if kind == "unknown" else colors.text)
            font = fonts[kind in ("special", "mask")]
            if i == self.masked_index:
                font = QFont(font)
                font.setStrikeOut(True)
            painter.setFont(font)
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), display_token(tok.text))
        for j, (word, rect) in enumerate(
            zip(self.dropped, self.rects[len(self.tokens) :], strict=False)
        ):
            painter.setBrush(Qt.BrushStyle.NoBrush)
            if j == 0:  # the marker where the model stopped reading
                painter.setPen(QPen(colors.unknown, 1.2, Qt.PenStyle.DashLine))
                painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(colors.dropped)
            painter.setFont(fonts[0])
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), word)
        painter.end()

    # -- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and index is not None:
            self._press = index
            self.select(index)
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        press, self._press = self._press, None
        index = self.index_at(event.position().toPoint())
        if press is not None and index is not None and index != press:
            self.select_span(min(press, index), max(press, index))
            return
        super().mouseReleaseEvent(event)

    def select_span(self, first: int, last: int) -> None:
        """Brush tokens ``first``..``last``: the heatmap zooms to that block."""
        self.span = (first, last)
        self.update()
        self.span_selected.emit(first, last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().toPoint())
        if self._press is not None and index is not None:
            self.span = (min(self._press, index), max(self._press, index))
            self.update()
        if index is None:
            QToolTip.hideText()
            return
        QToolTip.showText(event.globalPosition().toPoint(), self.describe(index), self)

    def describe(self, index: int) -> str:
        tok = self.tokens[index]
        kind = self.kinds[index]
        if kind == "mask":
            what = "mask token: the model predicts it (Masked words)"
        elif kind == "unknown":
            what = f"unknown to the vocabulary: {self.result.source_text(index)!r}"
        elif tok.special:
            what = "special token"
        else:
            what = "word piece (continues a word)" if tok.continuation else "word piece"
        seg = "B" if tok.segment == 1 else "A"
        span = f", characters {tok.span[0]}\u2013{tok.span[1]}" if tok.span else ""
        masked = (
            " \u2014 masked now: Masked words shows the model's guesses for it"
            if index == self.masked_index
            else ""
        )
        return f"#{index} {tok.text!r} (id {tok.id}): {what}, segment {seg}{span}{masked}"

    def menu_for(self, index: int) -> QMenu:
        """The right-click menu of token ``index``."""
        menu = QMenu(self)
        tok = self.tokens[index]
        focus = QAction(f"Show where {tok.text!r} looks", menu)
        focus.triggered.connect(lambda: self.select(index))
        menu.addAction(focus)
        predict = QAction(f"Mask and predict {tok.text!r}", menu)
        predict.setEnabled(self.has_mlm and not tok.special and self.kinds[index] != "mask")
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
