"""Live training curves: losses, held-out scores, learning rate, gradient norm, throughput.

As pyqtgraph's ``examples/PlotSpeedTest.py``: one ``PlotDataItem`` per run and series,
``setData`` with the whole (growing) array, ``setClipToView(True)`` and automatic
downsampling, so a long run redraws no slower than a short one. Every plot's x axis is tokens
seen, so BERT and ALBERT trained on the same token budget share the axes; the key above
the plots names the runs in their colours. The numbers plotted are exactly the trainer's events
(:class:`RunSeries`), accuracies in percent (as the Runs table shows them) and perplexity on a
log axis. Each y axis spans its data from a floor of 0 (a log axis: from just below the
smallest value), never the ±0.5 pyqtgraph gives a single point.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.train.series import RunSeries

if TYPE_CHECKING:  # pragma: no cover
    import pyqtgraph as pg

# (key, title, source): "step" series per optimizer step, "eval" per held-out evaluation
PLOTS = (
    ("mlm", "MLM loss", "step"),
    ("sentence", "NSP/SOP loss", "step"),
    ("mlm_accuracy", "held-out MLM acc. (%)", "eval"),
    ("perplexity", "held-out perplexity (log)", "eval"),
    ("lr", "learning rate", "step"),
    ("grad_norm", "gradient norm", "step"),
    ("tokens_per_s", "tokens / s", "step"),
    ("sentence_accuracy", "held-out NSP/SOP acc. (%)", "eval"),
)
PERCENT = ("mlm_accuracy", "sentence_accuracy")  # fractions in the events, percent on screen
LOG_Y = ("perplexity",)
HEADROOM = 1.08  # the top of a linear axis, as a multiple of the largest value
COLUMNS = 4
MIN_PLOT_WIDTH = 180  # pixels: below this per column, the grid uses fewer columns
# Colour per family (BERT blue, ALBERT orange) and further runs after them.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def tokens_seen_axis(orientation: str) -> pg.AxisItem:
    """An axis labelling tokens seen as 40k, 1.2M: short labels that never run into each other
    (a factory, so pyqtgraph is imported only once the curves are built)."""
    import pyqtgraph as pg

    class TokensSeenAxis(pg.AxisItem):
        def tickStrings(self, values, scale, spacing):
            out = []
            for v in values:
                v = v * scale
                if abs(v) >= 1e6:
                    out.append(f"{v / 1e6:g}M")
                elif abs(v) >= 1e3:
                    out.append(f"{v / 1e3:g}k")
                else:
                    out.append(f"{v:g}")
            return out

    return TokensSeenAxis(orientation)


def y_range(values: np.ndarray, log: bool = False, percent: bool = False) -> tuple[float, float]:
    """The y axis of one plot: a linear axis from 0 to a little above the largest value (a
    percentage from 0 to between 1% and 100%), a log axis (in log10 units, as
    pyqtgraph's log mode takes it) from a quarter below the smallest to a quarter above the
    largest value."""
    values = np.asarray(values, dtype=np.float64)
    if log:
        low, high = float(values.min()), float(values.max())
        return math.log10(low / 1.25), math.log10(high * 1.25)
    top = float(values.max()) * HEADROOM
    if not top > 0:  # nothing above 0 yet (a zero learning rate at step 0)
        top = 1.0
    if percent:
        top = min(100.0, max(top, 1.0))
    return 0.0, top


class TrainCurves(QWidget):
    """The plots are built when the Train tab is first shown or a run is first plotted: the
    window's start-up (and its first probe) need none of them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # a key above the plots instead of a legend that would sit on the curves
        self.key = QLabel("")
        self.key.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._layout.addWidget(self.key)
        self._canvas = None
        self.plots: dict[str, pg.PlotItem] = {}
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}  # (run, key) -> curve
        self.series: dict[str, RunSeries] = {}
        self.colors: dict[str, str] = {}
        self.columns = 0

    @property
    def canvas(self):
        """The plots' canvas, built on first use."""
        if self._canvas is None:
            self._build()
        return self._canvas

    def _build(self) -> None:
        import pyqtgraph as pg

        from app.widgets.plot_canvas import PlotCanvas

        self._canvas = PlotCanvas()
        self._layout.addWidget(self._canvas, 1)
        for key, title, _source in PLOTS:
            plot = pg.PlotItem(axisItems={"bottom": tokens_seen_axis("bottom")})
            plot.setTitle(title, size="8pt")
            plot.setMinimumWidth(140)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setLogMode(y=key in LOG_Y)
            plot.enableAutoRange(False)  # fit_ranges sets both axes from the data
            self.plots[key] = plot
        self._arrange(max(2, min(COLUMNS, self.width() // MIN_PLOT_WIDTH)))
        self._canvas.apply_palette()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        _ = self.canvas

    def _arrange(self, columns: int) -> None:
        """Lay the plots out in ``columns`` columns (fewer in a narrow window)."""
        if columns == self.columns:
            return
        import pyqtgraph as pg

        old = self.canvas.ci
        for plot in self.plots.values():
            if plot.scene() is not None:
                old.removeItem(plot)
        # a fresh grid: a QGraphicsGridLayout keeps the spacing of columns it no longer uses
        layout = pg.GraphicsLayout()
        layout.setContentsMargins(4, 4, 4, 4)
        self.canvas.setCentralItem(layout)
        self.canvas.ci = layout
        for i, plot in enumerate(self.plots.values()):
            layout.addItem(plot, row=i // columns, col=i % columns)
        self.columns = columns

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._canvas is not None:
            self._arrange(max(2, min(COLUMNS, self.width() // MIN_PLOT_WIDTH)))

    def _update_key(self) -> None:
        runs = [
            f'<span style="color:{self.colors[run]}">\u2501\u2501</span> {run}'
            for run in self.series
        ]
        self.key.setText("&nbsp;&nbsp;&nbsp;".join([*runs, "<i>x: tokens seen</i>"]))

    def color_for(self, run: str, family: str | None = None) -> str:
        if run not in self.colors:
            used = set(self.colors.values())
            preferred = {"bert": COLORS[0], "albert": COLORS[1]}.get(family or "")
            free = [c for c in COLORS if c not in used]
            if preferred in free:
                self.colors[run] = preferred
            else:
                self.colors[run] = free[0] if free else COLORS[len(self.colors) % len(COLORS)]
        return self.colors[run]

    def show_run(self, run: str, series: RunSeries, family: str | None = None) -> None:
        """Plot (or redraw) ``series`` under the name ``run``."""
        import pyqtgraph as pg

        _ = self.canvas
        self.series[run] = series
        color = self.color_for(run, family)
        for key, _title, source in PLOTS:
            item = self.items.get((run, key))
            if item is None:
                style = {"pen": pg.mkPen(color, width=1.5)}
                if source == "eval":
                    style.update(symbol="o", symbolSize=6, symbolBrush=color, symbolPen=None)
                item = self.plots[key].plot(**style)
                self.items[(run, key)] = item
            self.update_item(run, key, source)
        self._update_key()

    def update_run(self, run: str) -> None:
        """Redraw ``run``'s curves after its series grew."""
        for key, _title, source in PLOTS:
            if (run, key) in self.items:
                self.update_item(run, key, source)

    def update_item(self, run: str, key: str, source: str) -> None:
        series = self.series[run]
        data = series.evals if source == "eval" else series.steps
        x = np.asarray(data["tokens"], dtype=np.float64)
        y = np.asarray(data[key], dtype=np.float64)
        if key in PERCENT:
            y = 100.0 * y
        finite = np.isfinite(y)
        if key in LOG_Y:
            finite &= y > 0
        self.items[(run, key)].setData(x[finite], y[finite])
        self.fit_ranges(key)

    def fit_ranges(self, key: str) -> None:
        """Both axes of plot ``key`` from the data of every run on it: x from 0 tokens, y from
        0 (accuracies up to at most 100%), a log axis a little below and above its values."""
        xs, ys = [], []
        for (_run, k), item in self.items.items():
            if k == key and item.xData is not None and len(item.xData):
                xs.append(item.xData)
                ys.append(item.yData)
        if not xs:
            return
        plot = self.plots[key]
        x_top = float(np.max(np.concatenate(xs)))
        plot.setXRange(0.0, x_top * 1.03 if x_top > 0 else 1.0, padding=0)
        low, high = y_range(np.concatenate(ys), log=key in LOG_Y, percent=key in PERCENT)
        plot.setYRange(low, high, padding=0)

    def remove_run(self, run: str) -> None:
        for key, _title, _source in PLOTS:
            item = self.items.pop((run, key), None)
            if item is not None:
                self.plots[key].removeItem(item)
                self.fit_ranges(key)
        self.series.pop(run, None)
        self.colors.pop(run, None)
        self._update_key()

    def runs(self) -> list[str]:
        return list(self.series)

    def curve(self, run: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) arrays on screen for one run and series."""
        item = self.items[(run, key)]
        x, y = item.xData, item.yData  # what was set, before clipping to the view
        return (
            np.asarray(x if x is not None else [], dtype=np.float64),
            np.asarray(y if y is not None else [], dtype=np.float64),
        )

    def legend_names(self) -> list[str]:
        """The runs the key names, in its order (each in its curves' colour)."""
        return list(self.series)
