"""Per-layer summary of the Clark et al. (2019) head statistics for both models in one plot:
mean attention entropy in nats (top) and the mean attention mass on [CLS], on [SEP], on the
previous and on the next token (bottom), each the head mean of ``core``'s per-head statistics
(``core.analysis.side_by_side.head_summary``), against relative depth. Model A solid, B dashed.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.compare.calls import CompareBundle
from app.compare.transition_curves import DEPTH_RANGE, MODEL_COLORS
from app.widgets.plot_canvas import PlotCanvas

MASS_COLORS = {
    "to_cls": "#8e44ad",
    "to_sep": "#2e8b57",
    "to_prev": "#d35400",
    "to_next": "#2471a3",
}


class HeadSummaryPlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = PlotCanvas()
        self.canvas.export_name = "compare-head-statistics"
        self.entropy = self.canvas.addPlot(row=0, col=0, title="entropy (nats), head mean")
        self.mass = self.canvas.addPlot(row=1, col=0, title="attention mass, head mean")
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}
        for plot in (self.entropy, self.mass):
            plot.setTitle(plot.titleLabel.text, size="9pt")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMouseEnabled(x=False, y=False)
            plot.setXRange(*DEPTH_RANGE, padding=0)
        self.mass.setYRange(0, 1, padding=0.02)
        self.mass.setLabel("bottom", "relative depth l / L")
        # keys in their own column, so they never hide a curve
        # one key: the models (line style) and the four statistics (colour)
        self.entropy_legend = self.mass_legend = self.canvas.add_key(row=2, col=0, columns=3)
        for row, stretch in enumerate((1, 1, 0)):
            self.canvas.ci.layout.setRowStretchFactor(row, stretch)
        for side in (0, 1):  # models: line style (A solid, B dashed) and entropy markers
            style = Qt.PenStyle.SolidLine if side == 0 else Qt.PenStyle.DashLine
            self.curves[("entropy", side)] = self.entropy.plot(
                [], pen=pg.mkPen(MODEL_COLORS[side], width=2, style=style), symbol="os"[side],
                symbolSize=6, symbolBrush=MODEL_COLORS[side],
            )  # fmt: skip
            self.entropy_legend.addItem(self.curves[("entropy", side)], f"model {'AB'[side]}")
        for side in (0, 1):  # statistics: colour
            style = Qt.PenStyle.SolidLine if side == 0 else Qt.PenStyle.DashLine
            for field, color in MASS_COLORS.items():
                self.curves[(field, side)] = self.mass.plot(
                    [], pen=pg.mkPen(color, width=2, style=style)
                )
                if side == 0:
                    label = {"to_cls": "to [CLS]", "to_sep": "to [SEP]"}.get(field, field[3:])
                    self.mass_legend.addItem(self.curves[(field, side)], label)
        self.canvas.fit_key(self.mass_legend)
        self.canvas.apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def curve_data(self, field: str, side: int) -> tuple[np.ndarray, np.ndarray]:
        return self.curves[(field, side)].getData()

    def set_bundle(self, bundle: CompareBundle) -> None:
        for side, (analysis, summary, x) in enumerate(
            ((bundle.a, bundle.heads_a, bundle.depth_a), (bundle.b, bundle.heads_b, bundle.depth_b))
        ):
            for field in ("entropy", *MASS_COLORS):
                self.curves[(field, side)].setData(x, np.asarray(summary[field], dtype=np.float64))
            self.entropy_legend.items[side][1].setText(analysis.result.model_name)
        self.canvas.apply_palette()
