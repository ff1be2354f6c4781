"""Both models' attention side by side, with one selection for the two: layer, head (or the
mean over heads, or rollout) and the focused token.

Models of different depth are linked by relative depth (layer l of L sits at l / L, as the
ALBERT paper's Figure 1 plots them): picking layer 3 of a 4-layer model shows layer 9 of a
12-layer one, and the link is spelled out above the plots. A head number the other model does
not have falls back to its mean over heads. The focused token's row (its attention) is outlined
in both, on the pieces that cover the same characters. The matrices are ``core``'s arrays
and the layer links come in the bundle (``run_compare_probe``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.compare.calls import CompareBundle
from app.probe.attention_heatmap import MEAN, ROLLOUT, head_name
from app.theme import ATTENTION_COLORMAP, token_label_style
from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas

A, B = 0, 1
FOCUS_PEN = QColor("#19c0f0")


class PairedHeatmaps(QWidget):
    selected = Signal(int, int, int)  # layer of A, layer of B, head
    token_focused = Signal(int, int)  # side, row clicked in that side's heatmap

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bundle: CompareBundle | None = None
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("Layer of model A; model B follows at the same relative depth")
        self.head_box = QComboBox()
        self.head_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.head_box.setToolTip("Head, mean over heads or rollout, in both models")
        self.link = QLabel("")
        self.link.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer"))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addSpacing(10)
        controls.addWidget(self.link, 1)
        self.canvas = PlotCanvas()
        self.canvas.export_name = "compare-attention"
        self.plots = (  # short labels: two heatmaps share the width and the tab's height
            MatrixPlot(
                colormap=ATTENTION_COLORMAP, levels=(0.0, 1.0), colorbar=False, max_label_px=70
            ),
            # The one colour bar serves both maps, so it has no drag handles: moving them
            # would re-colour model B's map only.
            MatrixPlot(
                colormap=ATTENTION_COLORMAP,
                levels=(0.0, 1.0),
                interactive=False,
                max_label_px=70,
            ),
        )
        for col, plot in enumerate(self.plots):
            plot.row_axis.setLabel("from")
            self.canvas.addItem(plot, row=0, col=col)
            plot.image.clicked.connect(lambda row, _col, s=col: self.token_focused.emit(s, row))
        self.canvas.apply_palette()
        self.focus_rows: tuple[list[int], list[int]] = ([], [])
        self._focus_items: list[QGraphicsRectItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        self.layer_box.currentIndexChanged.connect(self._on_box_changed)
        self.head_box.currentIndexChanged.connect(self._on_box_changed)

    # -- selection -----------------------------------------------------------------------------
    @property
    def layer_a(self) -> int:
        return max(0, self.layer_box.currentIndex())

    @property
    def head(self) -> int:
        data = self.head_box.currentData()
        return int(data) if data is not None else 0

    @property
    def layer_b(self) -> int:
        """B's layer at the relative depth of A's (the bundle's layer-link table)."""
        return self.bundle.layer_b_of_a[self.layer_a] if self.bundle is not None else 0

    def select(self, layer_a: int, head: int) -> None:
        """Show ``layer_a`` of A (and B's layer at the same relative depth) and ``head``."""
        for box in (self.layer_box, self.head_box):
            box.blockSignals(True)
        if 0 <= layer_a < self.layer_box.count():
            self.layer_box.setCurrentIndex(layer_a)
        index = self.head_box.findData(head)
        if index >= 0:
            self.head_box.setCurrentIndex(index)
        for box in (self.layer_box, self.head_box):
            box.blockSignals(False)
        self._redraw()

    def matrix(self, side: int) -> np.ndarray | None:
        """The (T, T) matrix on screen for ``side``, straight from ``core``'s arrays."""
        if self.bundle is None:
            return None
        analysis = self.bundle.a if side == A else self.bundle.b
        layer = self.layer_a if side == A else self.layer_b
        head = self.head
        if head >= analysis.result.num_heads:
            head = MEAN
        if head == MEAN:
            return analysis.attention.mean_maps[layer]
        if head == ROLLOUT:
            return analysis.attention.rollout[layer]
        return analysis.result.attentions[layer, head]

    def set_focus(self, rows_a: list[int], rows_b: list[int]) -> None:
        """Outline the rows (the focused token's attention) in each heatmap."""
        self.focus_rows = (list(rows_a), list(rows_b))
        self._draw_focus()

    # -- drawing -------------------------------------------------------------------------------
    def set_bundle(self, bundle: CompareBundle) -> None:
        la = bundle.a.result.num_layers
        heads = max(bundle.a.result.num_heads, bundle.b.result.num_heads)
        layer, head = self.layer_a, self.head
        self.bundle = bundle
        for box in (self.layer_box, self.head_box):
            box.blockSignals(True)
        if self.layer_box.count() != la:
            self.layer_box.clear()
            self.layer_box.addItems([f"{i + 1}" for i in range(la)])
            self.layer_box.setCurrentIndex(min(layer, la - 1))
        if self.head_box.count() != heads + 2:
            first = self.head_box.count() == 0
            self.head_box.clear()
            for h in range(heads):
                self.head_box.addItem(f"{h + 1}", h)
            self.head_box.addItem("mean over heads", MEAN)
            self.head_box.addItem("rollout", ROLLOUT)
            wanted = MEAN if first or head >= heads else head  # the head mean at first
            self.head_box.setCurrentIndex(max(0, self.head_box.findData(wanted)))
        for box in (self.layer_box, self.head_box):
            box.blockSignals(False)
        for plot, analysis in zip(self.plots, (bundle.a, bundle.b), strict=True):
            labels, colors, bold = token_label_style(analysis.result.tokens, self.palette())
            plot.set_labels(labels, None, colors, None, bold)
        self.focus_rows = ([], [])
        self._redraw()

    def link_text(self) -> str:
        if self.bundle is None:
            return ""
        names = (self.bundle.a.result.model_name, self.bundle.b.result.model_name)
        return f"{names[0]} {self.bundle.depth_links[self.layer_a]} {names[1]}"

    @Slot(int)
    def _on_box_changed(self, _index: int) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if self.bundle is None:
            return
        for side, plot in enumerate(self.plots):
            analysis = self.bundle.a if side == A else self.bundle.b
            plot.set_matrix(self.matrix(side))
            layer = self.layer_a if side == A else self.layer_b
            head = self.head if self.head < analysis.result.num_heads else MEAN
            plot.setTitle(
                f"{analysis.result.model_name} \u00b7 layer {layer + 1}/{analysis.result.num_layers}"
                f" \u00b7 {head_name(head)}",
                size="10pt",
            )
        self.link.setText(self.link_text())
        self._draw_focus()
        self.selected.emit(self.layer_a, self.layer_b, self.head)

    def _draw_focus(self) -> None:
        for item in self._focus_items:
            item.scene() and item.scene().removeItem(item)
        self._focus_items = []
        if self.bundle is None:
            return
        pen = QPen(FOCUS_PEN, 0)  # cosmetic: 2 px whatever the zoom
        pen.setWidthF(2.5)
        pen.setCosmetic(True)
        for plot, rows, analysis in zip(
            self.plots, self.focus_rows, (self.bundle.a, self.bundle.b), strict=True
        ):
            t = len(analysis.result.tokens)
            for row in rows:
                rect = QGraphicsRectItem(-0.5, row - 0.5, t, 1.0)
                rect.setPen(pen)
                rect.setZValue(10)
                plot.addItem(rect)
                self._focus_items.append(rect)
