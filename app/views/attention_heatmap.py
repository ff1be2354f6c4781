"""The big attention heatmap: one layer and head (or the head mean, or rollout) of the probed
sentence, tokens on both axes, rows attending to columns.

Row i of ``attentions[layer, head]`` is where token i looks (it sums to 1). "Mean over heads"
shows ``AttentionStats.mean_maps[layer]`` and "Rollout" ``AttentionStats.rollout[layer]``
(Abnar and Zuidema 2020), both computed by ``core``. Levels stay fixed at 0..1 so the colours
mean the same weight in every layer, head and sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.state import AppState
from app.theme import ATTENTION_COLORMAP, token_label_style
from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

MEAN = -1  # "head" index for the mean over heads
ROLLOUT = -2  # "head" index for attention rollout


def head_name(head: int) -> str:
    return {MEAN: "mean over heads", ROLLOUT: "rollout"}.get(head, f"head {head + 1}")


class AttentionHeatmap(QWidget):
    selected = Signal(int, int)  # layer, head (MEAN / ROLLOUT for the aggregates)
    cell_hovered = Signal(str)  # readout of the hovered cell ("" when none)

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.analysis: ProbeAnalysis | None = None
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("Layer (Alt+Up / Alt+Down)")
        self.head_box = QComboBox()
        self.head_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.head_box.setToolTip("Head, mean over heads or rollout (Alt+Left / Alt+Right)")
        self.readout = QLabel("")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setMinimumWidth(200)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer"))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addSpacing(12)
        controls.addWidget(self.readout, 1)
        self.canvas = PlotCanvas()
        self.plot = MatrixPlot(colormap=ATTENTION_COLORMAP, levels=(0.0, 1.0))
        self.plot.row_axis.setLabel("from")
        self.plot.col_axis.setLabel("to")
        self.canvas.addItem(self.plot)
        self.canvas.apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        shortcuts = (
            ("Alt+Up", self._on_previous_layer),
            ("Alt+Down", self._on_next_layer),
            ("Alt+Left", self._on_previous_head),
            ("Alt+Right", self._on_next_head),
        )
        for keys, slot in shortcuts:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

        state.probed.connect(self._on_probed)
        state.current_changed.connect(self._on_current_changed)
        self.layer_box.currentIndexChanged.connect(self._on_box_changed)
        self.head_box.currentIndexChanged.connect(self._on_box_changed)
        self.plot.image.hovered.connect(self._on_hovered)
        if state.analysis is not None:  # built after a probe: draw it now
            self._on_probed(state.analysis)

    # -- selection -------------------------------------------------------------------------
    @property
    def layer(self) -> int:
        return max(0, self.layer_box.currentIndex())

    @property
    def head(self) -> int:
        data = self.head_box.currentData()
        return int(data) if data is not None else 0

    def select(self, layer: int, head: int) -> None:
        """Show ``layer`` and ``head`` (or MEAN / ROLLOUT)."""
        with_signals_blocked = [self.layer_box.blockSignals(True), self.head_box.blockSignals(True)]
        try:
            if 0 <= layer < self.layer_box.count():
                self.layer_box.setCurrentIndex(layer)
            index = self.head_box.findData(head)
            if index >= 0:
                self.head_box.setCurrentIndex(index)
        finally:
            self.layer_box.blockSignals(with_signals_blocked[0])
            self.head_box.blockSignals(with_signals_blocked[1])
        self._redraw()

    def matrix(self) -> np.ndarray | None:
        """The (T, T) matrix on screen, straight from ``core``'s arrays."""
        analysis = self.analysis
        if analysis is None:
            return None
        layer, head = self.layer, self.head
        if head == MEAN:
            return analysis.attention.mean_maps[layer]
        if head == ROLLOUT:
            return analysis.attention.rollout[layer]
        return analysis.result.attentions[layer, head]

    def describe_cell(self, row: int, col: int) -> str:
        matrix = self.matrix()
        if matrix is None:
            return ""
        tokens = self.analysis.result.tokens
        weight = float(matrix[row, col])
        return (
            f"from #{row} {tokens[row].text!r} \u2192 to #{col} {tokens[col].text!r}: "
            f"{weight:.4f}  (layer {self.layer + 1}, {head_name(self.head)})"
        )

    # -- slots -----------------------------------------------------------------------------
    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        layers, heads = analysis.result.attentions.shape[:2]
        layer, head = self.layer, self.head
        if self.layer_box.count() != layers or self.head_box.count() != heads + 2:
            for box in (self.layer_box, self.head_box):
                box.blockSignals(True)
            self.layer_box.clear()
            self.layer_box.addItems([f"{i + 1}" for i in range(layers)])
            self.head_box.clear()
            for h in range(heads):
                self.head_box.addItem(f"{h + 1}", h)
            self.head_box.addItem("mean over heads", MEAN)
            self.head_box.addItem("rollout", ROLLOUT)
            self.layer_box.setCurrentIndex(min(layer, layers - 1))
            self.head_box.setCurrentIndex(
                max(0, self.head_box.findData(head if head < heads else 0))
            )
            for box in (self.layer_box, self.head_box):
                box.blockSignals(False)
        self.analysis = analysis
        labels, colors, bold = token_label_style(analysis.result.tokens, self.palette())
        self.plot.set_labels(labels, None, colors, None, bold)
        self._redraw()

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.analysis = None
            self.plot.clear_matrix()
            self.readout.setText("")

    @Slot(int)
    def _on_box_changed(self, _index: int) -> None:
        self._redraw()

    @Slot(object)
    def _on_hovered(self, cell: tuple[int, int] | None) -> None:
        text = "" if cell is None else self.describe_cell(*cell)
        self.readout.setText(text)
        self.setToolTip(text)
        self.cell_hovered.emit(text)

    def _on_previous_layer(self) -> None:
        self.layer_box.setCurrentIndex(max(0, self.layer_box.currentIndex() - 1))

    def _on_next_layer(self) -> None:
        self.layer_box.setCurrentIndex(
            min(self.layer_box.count() - 1, self.layer_box.currentIndex() + 1)
        )

    def _on_previous_head(self) -> None:
        self.head_box.setCurrentIndex(max(0, self.head_box.currentIndex() - 1))

    def _on_next_head(self) -> None:
        self.head_box.setCurrentIndex(
            min(self.head_box.count() - 1, self.head_box.currentIndex() + 1)
        )

    def _redraw(self) -> None:
        matrix = self.matrix()
        if matrix is None:
            return
        self.plot.set_matrix(matrix)
        self.plot.setTitle(f"layer {self.layer + 1} \u00b7 {head_name(self.head)}")
        self.selected.emit(self.layer, self.head)
