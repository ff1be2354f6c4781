"""The model's guesses for masked words: every [MASK] in the sentence, and any token the user
masks with right-click -> "Mask and predict" (``core.analysis.predict_masked``).

Each masked position is a top-level row; its children are the top-k tokens with their
probability (softmax over the whole vocabulary, from ``core``), drawn as a bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QRect, Qt, Slot
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.engine_calls import MaskAnswer
from app.state import AppState

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

PROB_ROLE = Qt.ItemDataRole.UserRole + 1


class ProbabilityBar(QStyledItemDelegate):
    """Paints a probability as a bar behind its percentage."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        prob = index.data(PROB_ROLE)
        if prob is None:
            super().paint(painter, option, index)
            return
        painter.save()
        rect: QRect = option.rect.adjusted(2, 3, -2, -3)
        color = option.palette.color(QPalette.ColorRole.Highlight)
        color.setAlpha(80)  # light enough that the percentage stays legible over it
        painter.fillRect(rect.x(), rect.y(), int(rect.width() * float(prob)), rect.height(), color)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            rect.adjusted(4, 0, 0, 0), int(Qt.AlignmentFlag.AlignVCenter), f"{float(prob):.1%}"
        )
        painter.restore()


class MaskedWords(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.note = QLabel(
            "Type [MASK] in the sentence, or right-click a token \u2192 Mask and predict."
        )
        self.note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["token", "probability"])
        self.tree.setItemDelegateForColumn(1, ProbabilityBar(self.tree))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)
        state.probed.connect(self._on_probed)
        state.masked.connect(self._on_masked)
        state.mask_failed.connect(self._on_mask_failed)
        state.current_changed.connect(self._on_current_changed)

    def predictions(self) -> list[tuple[str, list[tuple[str, float]]]]:
        """What the list shows: (row title, [(token, probability), ...]) per masked position."""
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            children = [
                (item.child(j).text(0), float(item.child(j).data(1, PROB_ROLE)))
                for j in range(item.childCount())
            ]
            rows.append((item.text(0), children))
        return rows

    def _add(self, title: str, prediction, original: str | None = None) -> QTreeWidgetItem:
        top = QTreeWidgetItem([title, ""])
        font = top.font(0)
        font.setBold(True)
        top.setFont(0, font)
        for token, prob in zip(prediction.tokens, prediction.probs, strict=True):
            child = QTreeWidgetItem([token, ""])
            child.setData(1, PROB_ROLE, float(prob))
            if original is not None and token == original:
                child.setToolTip(0, "the token that was there")
                f = child.font(0)
                f.setUnderline(True)
                child.setFont(0, f)
            top.addChild(child)
        return top

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        self.tree.clear()
        if not result.has_mlm:
            self.note.setText(result.note or "this model has no MLM head")
            return
        for prediction in result.masked:
            item = self._add(f"[MASK] at #{prediction.position}", prediction)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        if result.masked:
            self.note.setText(
                f"Top-{len(result.masked[0].tokens)} guesses for each [MASK]; "
                "right-click a token above to mask it."
            )
        else:
            self.note.setText(
                "No [MASK] in the sentence: right-click a token above \u2192 Mask and predict."
            )

    @Slot(object)
    def _on_masked(self, masked: MaskAnswer) -> None:
        prediction = masked.prediction
        item = self._add(
            f"#{prediction.position} {masked.token!r} masked", prediction, masked.token
        )
        self.tree.insertTopLevelItem(0, item)
        item.setExpanded(True)
        self.tree.scrollToItem(item)

    @Slot(str)
    def _on_mask_failed(self, message: str) -> None:
        self.note.setText(message)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.tree.clear()
