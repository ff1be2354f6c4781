"""Both models' guesses for the same [MASK], side by side: one row per masked position (matched
by its character offset in the text, ``core.analysis.side_by_side.match_masks``), its children
the top-k of each model with probabilities (softmax over each model's whole vocabulary)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.compare.calls import CompareBundle
from app.probe.masked_words import PROB_ROLE, ProbabilityBar
from app.theme import display_token
from app.widgets.plot_export import install_table_menu


class PairedMaskedWords(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.note = QLabel("Write [MASK] in the sentence to compare both models' guesses.")
        self.note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setObjectName("compare-masked-words")
        self.tree.setColumnCount(5)
        self.tree.setHeaderLabels(["#", "A", "p", "B", "p"])
        for col in (2, 4):
            self.tree.setItemDelegateForColumn(col, ProbabilityBar(self.tree))
        self.tree.setUniformRowHeights(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setIndentation(6)
        # each column as wide as its content, the last one takes the rest: two stretched
        # probability columns pushed model B's past the edge of a narrow panel
        header = self.tree.header()
        header.setMinimumSectionSize(40)
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        install_table_menu(self.tree)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)

    def rows(self) -> list[tuple[str, list[tuple[str, float | None, str, float | None]]]]:
        """What the tree shows: per mask, (A token, A prob, B token, B prob) by rank."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            ranks = []
            for j in range(top.childCount()):
                c = top.child(j)
                ranks.append((c.text(1), c.data(2, PROB_ROLE), c.text(3), c.data(4, PROB_ROLE)))
            out.append((top.text(0), ranks))
        return out

    def set_bundle(self, bundle: CompareBundle) -> None:
        self.tree.clear()
        names = (bundle.a.result.model_name, bundle.b.result.model_name)
        self.tree.setHeaderLabels(["#", names[0], "p", names[1], "p"])
        texts = (bundle.a.result.text, bundle.a.result.pair or "")
        for pair in bundle.masks:
            where = "text" if pair.sequence == 0 else "pair"
            before = " ".join(texts[pair.sequence][: pair.start].split()[-3:])
            top = QTreeWidgetItem([f"[MASK] at {where} char {pair.start}: \u2026{before} ___"])
            k = max(len(p.tokens) if p else 0 for p in (pair.a, pair.b))
            for rank in range(k):
                cells = [f"{rank + 1}", "", "", "", ""]
                child = QTreeWidgetItem(cells)
                for col, pred in ((1, pair.a), (3, pair.b)):
                    if pred is not None and rank < len(pred.tokens):
                        child.setText(col, display_token(pred.tokens[rank]))
                        child.setToolTip(col, pred.tokens[rank])
                        child.setData(col + 1, PROB_ROLE, float(pred.probs[rank]))
                        child.setText(col + 1, f"{float(pred.probs[rank]):.6f}")  # for CSV
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)
            top.setExpanded(True)
        has_mlm = (bundle.a.result.has_mlm, bundle.b.result.has_mlm)
        if not bundle.masks:
            self.note.setText("Write [MASK] in the sentence to compare both models' guesses.")
        elif not all(has_mlm):
            missing = [n for n, h in zip(names, has_mlm, strict=True) if not h]
            self.note.setText(f"{', '.join(missing)}: no MLM head, no guesses.")
        else:
            self.note.setText("Top guesses of both models for each [MASK] (matched by offset).")
