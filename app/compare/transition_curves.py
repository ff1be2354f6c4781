"""Both models' layer-transition curves in one plot (the ALBERT paper's Figure 1): the L2
distance, the cosine similarity and the angle in degrees between the hidden states of
consecutive layers, averaged over the sentence's tokens, against relative depth (layer l of L at l / L), so a 4-layer and a
12-layer model share an axis. ALBERT's shared layers give smoother curves than BERT's.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.compare.calls import CompareBundle
from app.widgets.plot_canvas import PlotCanvas

MODEL_COLORS = ("#3b75af", "#c8413e")  # model A, model B
# relative depth 0-1, padded so the last layer's marker (at 1.0) is drawn whole
DEPTH_RANGE = (-0.06, 1.06)
SERIES = (  # LayerStats field, plot title
    ("l2_mean", "L2 distance, layer l\u22121 \u2192 l"),
    ("cosine_mean", "cosine similarity, l\u22121 \u2192 l"),
    ("angle_mean_deg", "angle (degrees), l\u22121 \u2192 l"),
)


class TransitionCurves(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = PlotCanvas()
        self.canvas.export_name = "compare-layer-transitions"
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

    def _plot(self, field: str, title: str, row: int) -> pg.PlotItem:
        plot = self.canvas.addPlot(row=row, col=0)
        plot.setTitle(title, size="9pt")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMouseEnabled(x=False, y=False)
        plot.setXRange(*DEPTH_RANGE, padding=0)
        for side in (0, 1):
            color = MODEL_COLORS[side]
            style = Qt.PenStyle.SolidLine if side == 0 else Qt.PenStyle.DashLine
            self.curves[(field, side)] = plot.plot(
                [], pen=pg.mkPen(color, width=2, style=style), symbol="os"[side],
                symbolSize=7, symbolBrush=color,
            )  # fmt: skip
            if row == 0:  # one key for all plots, in its own column so it never hides a curve
                self.legend.addItem(self.curves[(field, side)], f"model {'AB'[side]}")
        self.plots[field] = plot
        return plot

    def series(self, bundle: CompareBundle) -> list[tuple[str, str]]:
        """The LayerStats fields both results carry (the angle only once core computes it)."""
        return [
            (field, title)
            for field, title in SERIES
            if getattr(bundle.a.layers, field, None) is not None
            and getattr(bundle.b.layers, field, None) is not None
        ]

    def curve_data(self, field: str, side: int) -> tuple[np.ndarray, np.ndarray]:
        return self.curves[(field, side)].getData()

    def set_bundle(self, bundle: CompareBundle) -> None:
        wanted = self.series(bundle)
        if [f for f, _ in wanted] != list(self.plots):
            self.canvas.clear()
            self.plots, self.curves = {}, {}
            self.legend = self.canvas.add_key(row=len(wanted), col=0, columns=2)
            for row in range(len(wanted) + 1):
                self.canvas.ci.layout.setRowStretchFactor(row, int(row < len(wanted)))
            for row, (field, title) in enumerate(wanted):
                self._plot(field, title, row)
            last = self.plots[wanted[-1][0]]
            last.setLabel("bottom", "relative depth l / L")
            self.canvas.apply_palette()
        for side, (analysis, x) in enumerate(
            ((bundle.a, bundle.depth_a), (bundle.b, bundle.depth_b))
        ):
            stats = analysis.layers
            name = f"{analysis.result.model_name} ({stats.num_layers} layers)"
            for field in self.plots:
                curve = self.curves[(field, side)]
                curve.setData(x, np.asarray(getattr(stats, field), dtype=np.float64))
            self.legend.items[side][1].setText(name)
        self.canvas.fit_key(self.legend)
        self.canvas.apply_palette()
