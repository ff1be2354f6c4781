"""Both models' tokenizations of the compared sentence, one strip each, aligned by characters.

WordPiece ("shepherd ##ess") and SentencePiece-style pieces ("▁shepherd ess") cut words at
different places; hovering or clicking a piece in one strip highlights the pieces of the other
that cover the same characters (``core.analysis.side_by_side.align_tokens``, computed in the
engine job). A click also focuses the token, and the heatmaps follow (``token_focused``).
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from app.compare.calls import CompareBundle
from app.widgets.piece_strip import PieceStrip

A, B = 0, 1


class AlignedTokenStrips(QWidget):
    token_focused = Signal(int, int)  # side (0 = A, 1 = B), token index on that side (a click)
    token_pointed = Signal(int, int)  # side and index highlighted now (hover or click); -1: none

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bundle: CompareBundle | None = None
        self.strips = (PieceStrip(), PieceStrip())
        self.names = (QLabel("A"), QLabel("B"))
        self.focus: tuple[int, int] | None = None  # (side, index) clicked
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(2)
        for side in (A, B):
            self.names[side].setMinimumWidth(80)
            layout.addWidget(self.names[side], side, 0)
            layout.addWidget(self.strips[side], side, 1)
            self.strips[side].hovered.connect(lambda i, s=side: self._on_hovered(s, i))
            self.strips[side].clicked.connect(lambda i, s=side: self.focus_token(s, i))
        layout.setColumnStretch(1, 1)

    def set_bundle(self, bundle: CompareBundle) -> None:
        self.bundle = bundle
        for side, analysis in ((A, bundle.a), (B, bundle.b)):
            result = analysis.result
            self.names[side].setText(result.model_name)
            self.names[side].setToolTip(f"{result.model_name}: {len(result.tokens)} tokens")
            self.strips[side].set_tokens(result.tokens, result.special_tokens.get("mask", "[MASK]"))
        self.focus = None

    def partners(self, side: int, index: int) -> list[int]:
        """Tokens of the other side covering the characters of token ``index`` of ``side``."""
        if self.bundle is None:
            return []
        links = self.bundle.a_to_b if side == A else self.bundle.b_to_a
        return list(links[index]) if 0 <= index < len(links) else []

    def highlight(self, side: int, index: int) -> None:
        """Outline token ``index`` of ``side`` and its partners on the other side."""
        other = B if side == A else A
        self.strips[side].set_highlight({index}, index)
        self.strips[other].set_highlight(self.partners(side, index))
        self.token_pointed.emit(side, index)

    def focus_token(self, side: int, index: int) -> None:
        """Focus a token (a click): highlight it and its partners, and tell the heatmaps."""
        if self.bundle is None:
            return
        self.focus = (side, index)
        self.highlight(side, index)
        self.token_focused.emit(side, index)

    @Slot()
    def _on_hovered(self, side: int, index: int) -> None:
        if index >= 0:
            self.highlight(side, index)
        elif self.focus is not None:
            self.highlight(*self.focus)
        else:
            for strip in self.strips:
                strip.set_highlight(())
            self.token_pointed.emit(-1, -1)
