"""The model's guesses for masked words: every [MASK] in the sentence, and any token the user
masks with right-click -> "Mask and predict" (``core.analysis.predict_masked``).

Each masked position is a top-level row; its children are the top-k tokens with their
probability (softmax over the whole vocabulary, from ``core``), drawn as a bar. The labels,
piece flags and whole-word guesses come labelled from the engine thread
(``calls.mask_guesses``), so toggling "whole words only" only re-indexes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QRect, Qt, Slot
from PySide6.QtGui import QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QHeaderView,
    QLabel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.probe.calls import MaskAnswer, MaskGuesses
from app.probe.state import AppState
from app.widgets.plot_export import install_table_menu

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

PROB_ROLE = Qt.ItemDataRole.UserRole + 1  # probability of a guess
SCALE_ROLE = Qt.ItemDataRole.UserRole + 2  # the top guess's probability: a full bar
TOKEN_ROLE = Qt.ItemDataRole.UserRole + 3  # the token exactly as the vocabulary spells it
PIECE_ROLE = Qt.ItemDataRole.UserRole + 4  # True for a sub-word piece
ORIGINAL_ROLE = Qt.ItemDataRole.UserRole + 5  # the "original: ..." row of a masked token


class ProbabilityBar(QStyledItemDelegate):
    """Paints a probability as a bar behind its percentage; a full bar is the top guess of the
    same position (a 4% guess beside a 9% top guess is half a bar, not a sliver)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        prob = index.data(PROB_ROLE)
        if prob is None:
            super().paint(painter, option, index)
            return
        scale = float(index.data(SCALE_ROLE) or 1.0)
        painter.save()
        rect: QRect = option.rect.adjusted(2, 3, -2, -3)
        color = option.palette.color(QPalette.ColorRole.Highlight)
        color.setAlpha(90)  # light enough that the percentage stays legible over it
        share = min(1.0, float(prob) / scale) if scale > 0 else 0.0
        painter.fillRect(rect.x(), rect.y(), int(rect.width() * share), rect.height(), color)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        text = f"{float(prob):.1%}" if prob >= 0.001 else f"{float(prob):.2g}"
        painter.drawText(rect.adjusted(4, 0, 0, 0), int(Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()


class GuessLabel(QStyledItemDelegate):
    """A guess without its piece markers ("##", "▁"), with a small grey "piece" tag after
    sub-word pieces so "ing" the piece and "ing" the word stay apart."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if not index.data(PIECE_ROLE):
            super().paint(painter, option, index)
            return
        super().paint(painter, option, index)
        painter.save()
        text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        font = QFont(option.font)
        width = option.fontMetrics.horizontalAdvance(text)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        color = option.palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if option.state & QStyle.StateFlag.State_Selected:
            color = option.palette.color(QPalette.ColorRole.HighlightedText)
        painter.setPen(color)
        rect = option.rect.adjusted(width + 10, 0, 0, 0)
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignVCenter), "piece")
        painter.restore()


class MaskedWords(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.note = QLabel(
            "Type [MASK] in the sentence, or right-click a token \u2192 Mask and predict."
        )
        self.note.setWordWrap(True)
        self.words_only = QCheckBox("whole words only")
        self.words_only.setToolTip(
            "Hide punctuation and sub-word pieces from the guesses (the next best whole words "
            "take their place)"
        )
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["guess", "probability"])
        self.tree.setItemDelegateForColumn(0, GuessLabel(self.tree))
        self.tree.setItemDelegateForColumn(1, ProbabilityBar(self.tree))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        install_table_menu(self.tree)  # right-click: export as CSV
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.note)
        layout.addWidget(self.words_only)
        layout.addWidget(self.tree, 1)
        # what the tree shows, to rebuild it when the filter changes: (title, guesses)
        self.entries: list[tuple[str, MaskGuesses]] = []
        state.probed.connect(self._on_probed)
        state.masked.connect(self._on_masked)
        state.mask_failed.connect(self._on_mask_failed)
        state.current_changed.connect(self._on_current_changed)
        self.words_only.toggled.connect(self._rebuild)

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self.tree.setColumnWidth(0, max(90, int(self.tree.viewport().width() * 0.6)))

    def predictions(self) -> list[tuple[str, list[tuple[str, float]]]]:
        """What the list shows: (row title, [(token, probability), ...]) per masked position,
        tokens as the vocabulary spells them (the "original" rows left out)."""
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            children = [
                (item.child(j).data(0, TOKEN_ROLE), float(item.child(j).data(1, PROB_ROLE)))
                for j in range(item.childCount())
                if not item.child(j).data(0, ORIGINAL_ROLE)
            ]
            rows.append((item.text(0), children))
        return rows

    def bar_scales(self) -> list[float]:
        """The probability a full bar stands for, per masked position (its top guess)."""
        return [
            float(self.tree.topLevelItem(i).child(0).data(1, SCALE_ROLE))
            for i in range(self.tree.topLevelItemCount())
            if self.tree.topLevelItem(i).childCount()
        ]

    def _add(self, title: str, entry: MaskGuesses) -> QTreeWidgetItem:
        prediction = entry.prediction
        top = QTreeWidgetItem([title, ""])
        font = top.font(0)
        font.setBold(True)
        top.setFont(0, font)
        guesses = entry.words if self.words_only.isChecked() else entry.top
        scale = guesses[0].prob if guesses else 1.0
        for guess in guesses:
            token, prob = guess.token, guess.prob
            child = QTreeWidgetItem([guess.label, ""])
            child.setData(0, TOKEN_ROLE, token)
            child.setData(0, PIECE_ROLE, guess.piece)
            child.setData(1, PROB_ROLE, float(prob))
            child.setData(1, SCALE_ROLE, float(scale))
            child.setText(1, f"{float(prob):.6f}")  # for CSV export; the bar paints its own
            child.setToolTip(0, f"{token!r}: {prob:.2%}")
            if prediction.original is not None and token == prediction.original:
                child.setToolTip(0, f"{token!r}: the token that was there, {prob:.2%}")
                f = child.font(0)
                f.setUnderline(True)
                child.setFont(0, f)
            top.addChild(child)
        if prediction.original is not None:
            rank, prob = prediction.original_rank, float(prediction.original_prob or 0.0)
            child = QTreeWidgetItem([f"original {entry.original!r}: rank {rank}, {prob:.1%}", ""])
            child.setData(0, TOKEN_ROLE, prediction.original)
            child.setData(0, ORIGINAL_ROLE, True)
            child.setData(1, PROB_ROLE, prob)
            child.setData(1, SCALE_ROLE, float(scale))
            child.setToolTip(
                0,
                f"the token that was there, {prediction.original!r}: rank {rank} of the whole "
                f"vocabulary, probability {prob:.2%}",
            )
            f = child.font(0)
            f.setItalic(True)
            child.setFont(0, f)
            top.addChild(child)
        return top

    def _rebuild(self) -> None:
        self.tree.clear()
        for title, entry in self.entries:
            item = self._add(title, entry)
            self.tree.addTopLevelItem(item)
            item.setFirstColumnSpanned(True)  # the title reads across the bar column
            for j in range(item.childCount()):
                if item.child(j).data(0, ORIGINAL_ROLE):
                    item.child(j).setFirstColumnSpanned(True)  # its numbers are in the text
            item.setExpanded(True)

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        self.entries = []
        if not result.has_mlm:
            self.tree.clear()
            self.note.setText(result.note or "this model has no MLM head")
            return
        self.entries = [(f"[MASK] at #{g.prediction.position}", g) for g in self.state.guesses]
        self._rebuild()
        if result.masked:
            self.note.setText(
                f"Top-{len(result.masked[0].tokens)} guesses for each [MASK] (bars relative to "
                "the best guess); right-click a token above to mask it."
            )
        else:
            self.note.setText(
                "No [MASK] in the sentence: right-click a token above \u2192 Mask and predict."
            )

    @Slot(object)
    def _on_masked(self, masked: MaskAnswer) -> None:
        position = masked.prediction.position
        self.entries.insert(0, (f"#{position} {masked.token!r} masked", masked.guesses))
        self._rebuild()
        self.tree.scrollToItem(self.tree.topLevelItem(0))

    @Slot(str)
    def _on_mask_failed(self, message: str) -> None:
        self.note.setText(message)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.entries = []
            self.tree.clear()
