"""What each head attends to, as layer x head heat grids (Clark et al. 2019).

Entropy (nats; log T is uniform attention) and the mean attention mass on [CLS], on [SEP], on
punctuation, on the token itself, on the previous and on the next token, from
``core.analysis.AttentionStats``; for sentence pairs also the A->B and B->A cross-text mass
from ``core.analysis.pair_blocks``. The mass grids share one 0..1 colour bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.probe.state import AppState
from app.theme import STAT_COLORMAP
from app.widgets.matrix_plot import MatrixPlot, fit_colorbar
from app.widgets.plot_canvas import PlotCanvas

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

STATISTICS: tuple[tuple[str, str], ...] = (
    ("entropy", "entropy (nats)"),
    ("to_cls", "\u2192 [CLS]"),
    ("to_sep", "\u2192 [SEP]"),
    ("to_punct", "\u2192 punctuation"),
    ("to_self", "\u2192 itself"),
    ("to_prev", "\u2192 previous"),
    ("to_next", "\u2192 next"),
    ("a_to_b", "text A \u2192 text B"),
    ("b_to_a", "text B \u2192 text A"),
)
# What each grid is, shown on hover (Clark et al. 2019, "What does BERT look at?", section 3).
DEFINITIONS = {
    "entropy": "mean over query tokens of -\u03a3 p log p of the head's attention, in nats; "
    "log T (the colour bar's top) is uniform attention",
    "to_cls": "mean over query tokens of the attention mass on [CLS]",
    "to_sep": "mean over query tokens of the attention mass on all [SEP] tokens together",
    "to_punct": "mean over query tokens of the attention mass on punctuation tokens",
    "to_self": "mean over tokens i of A[i, i], the attention a token pays itself",
    "to_prev": "mean over tokens i \u2265 1 of A[i, i\u22121], attention to the previous token",
    "to_next": "mean over tokens i < T\u22121 of A[i, i+1], attention to the next token",
    "a_to_b": "mean over the tokens of text A of their attention mass on text B",
    "b_to_a": "mean over the tokens of text B of their attention mass on text A",
}
PLOT_WIDTH = 135  # pixels a grid needs to stay readable


class HeadStatistics(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.analysis: ProbeAnalysis | None = None
        self.canvas = PlotCanvas()
        self.plots: dict[str, MatrixPlot] = {}
        self.values: dict[str, np.ndarray] = {}
        for name, title in STATISTICS:
            plot = MatrixPlot(colormap=STAT_COLORMAP, colorbar=False, max_label_px=30, title=title)
            plot.setToolTip(f"{title}: {DEFINITIONS[name]} (Clark et al. 2019)")
            plot.image.hovered.connect(lambda cell, name=name: self._on_hovered(name, cell))
            self.plots[name] = plot
        # two colour bars in a column of their own: entropy, and the attention-mass grids
        cmap = pg.colormap.get(STAT_COLORMAP)
        self.entropy_bar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=cmap, interactive=False, width=10, label="entropy (nats)"
        )
        self.entropy_bar.setImageItem(self.plots["entropy"].image)
        self.mass_bar = pg.ColorBarItem(
            values=(0.0, 1.0),
            colorMap=cmap,
            interactive=False,
            width=10,
            label="attention mass (0\u20131)",
        )
        self.mass_bar.setImageItem([p.image for n, p in self.plots.items() if n != "entropy"])
        for bar in (self.entropy_bar, self.mass_bar):
            fit_colorbar(bar)
        self.columns = 0
        self._laid_out: list[str] = []
        self._reflow()
        self.canvas.apply_palette()
        self.readout = QLabel("Hover a cell for its value and what it measures.")
        self.readout.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        state.probed.connect(self._on_probed)
        if state.analysis is not None:  # built after a probe: draw it now
            self._on_probed(state.analysis)

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        self.analysis = analysis
        stats = analysis.attention
        layers, heads = stats.entropy.shape
        rows = [f"L{i + 1}" for i in range(layers)]
        cols = [f"H{h + 1}" for h in range(heads)]
        self.values = {name: getattr(stats, name) for name in stats.PER_HEAD}
        has_pair = analysis.a_to_b is not None
        if has_pair:
            self.values["a_to_b"], self.values["b_to_a"] = analysis.a_to_b, analysis.b_to_a
        self._reflow()
        for name, values in self.values.items():
            plot = self.plots[name]
            plot.set_labels(rows, cols)
            plot.set_matrix(values)
        self.entropy_bar.setLevels((0.0, max(float(stats.max_entropy), 1e-6)))  # log T: uniform
        fit_colorbar(self.entropy_bar)

    def _visible(self) -> list[str]:
        has_pair = "a_to_b" in self.values
        return [name for name, _ in STATISTICS if has_pair or name not in ("a_to_b", "b_to_a")]

    def _reflow(self) -> None:
        """Lay the grids out in as many columns as the width allows (one row when wide)."""
        names = self._visible()
        columns = max(2, min(len(names), (self.canvas.width() - 90) // PLOT_WIDTH))
        if columns == self.columns and names == self._laid_out:
            return  # nothing moves: re-adding items would cost a layout pass per sentence
        self.columns, self._laid_out = columns, names
        layout = self.canvas.ci
        for item in [*self.plots.values(), self.entropy_bar, self.mass_bar]:
            if item in layout.items:
                layout.removeItem(item)
        for name, plot in self.plots.items():
            plot.setVisible(name in names)
        for i, name in enumerate(names):
            layout.addItem(self.plots[name], row=i // columns, col=i % columns)
        rows = -(-len(names) // columns)
        layout.addItem(self.entropy_bar, row=0, col=columns)
        layout.addItem(
            self.mass_bar,
            row=1 if rows > 1 else 0,
            col=columns + (rows == 1),
            rowspan=max(1, rows - 1),
        )
        self.canvas.apply_palette()

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._reflow()

    def _on_hovered(self, name: str, cell: tuple[int, int] | None) -> None:
        if cell is None or name not in self.values:
            return
        layer, head = cell
        title = dict(STATISTICS)[name]
        unit = " nats" if name == "entropy" else ""
        value = float(self.values[name][layer, head])
        self.readout.setText(
            f"{title}: layer {layer + 1}, head {head + 1} = {value:.4f}{unit} \u2014 "
            f"{DEFINITIONS[name]}"
        )
