"""What each head attends to, as layer x head heat grids (Clark et al. 2019).

Entropy (nats; log T is uniform attention) and the mean attention mass on [CLS], on [SEP], on
punctuation, on the token itself, on the previous and on the next token, from
``core.analysis.AttentionStats``; for sentence pairs also the A->B and B->A cross-text mass
from ``core.analysis.pair_blocks``. The mass grids share one 0..1 colour bar.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.state import AppState
from app.tasks import ProbeBundle
from app.theme import STAT_COLORMAP
from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas

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
COLUMNS = 3


class HeadStatistics(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.bundle: ProbeBundle | None = None
        self.canvas = PlotCanvas()
        self.plots: dict[str, MatrixPlot] = {}
        self.values: dict[str, np.ndarray] = {}
        for i, (name, title) in enumerate(STATISTICS):
            plot = MatrixPlot(
                colormap=STAT_COLORMAP,
                colorbar=name in ("entropy", "to_cls"),
                interactive=False,
                max_label_px=30,
                title=title,
            )
            plot.image.hovered.connect(lambda cell, name=name: self._on_hovered(name, cell))
            self.canvas.addItem(plot, row=i // COLUMNS, col=i % COLUMNS)
            self.plots[name] = plot
        mass_bar = self.plots["to_cls"].colorbar
        mass_images = [p.image for n, p in self.plots.items() if n != "entropy"]
        mass_bar.setImageItem(mass_images)
        self.canvas.apply_palette()
        self.readout = QLabel("Hover a cell for its value.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)
        state.probed.connect(self._on_probed)

    @Slot(object)
    def _on_probed(self, bundle: ProbeBundle) -> None:
        self.bundle = bundle
        stats, pairs = bundle.attention, bundle.pairs
        layers, heads = stats.entropy.shape
        rows = [f"L{i + 1}" for i in range(layers)]
        cols = [f"H{h + 1}" for h in range(heads)]
        self.values = {name: getattr(stats, name) for name in stats.PER_HEAD}
        has_pair = pairs.get("a_to_b") is not None
        for name in ("a_to_b", "b_to_a"):
            if has_pair:
                self.values[name] = pairs[name]
            self.plots[name].setVisible(has_pair)
        for name, values in self.values.items():
            plot = self.plots[name]
            plot.set_labels(rows, cols)
            levels = (0.0, max(float(stats.max_entropy), 1e-6)) if name == "entropy" else (0.0, 1.0)
            plot.set_matrix(values, levels=levels)

    def _on_hovered(self, name: str, cell: tuple[int, int] | None) -> None:
        if cell is None or name not in self.values:
            return
        layer, head = cell
        title = dict(STATISTICS)[name]
        unit = " nats" if name == "entropy" else ""
        value = float(self.values[name][layer, head])
        self.readout.setText(f"{title}: layer {layer + 1}, head {head + 1} = {value:.4f}{unit}")
