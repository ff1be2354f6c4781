"""The ALBERT trade-off in numbers: both models' parameters by component (unique or effective),
memory for inference and one training step at the batch, length, precision and optimizer set
here (predicted at once, measured on request), FLOPs per token and measured speed, with a B / A
ratio for every figure and one sentence that states the trade-off.

Every figure comes from ``core`` (``core.cost.tradeoff.cost_rows`` over a ``Comparison``),
formatted on the engine thread into :class:`~app.compare.calls.CostFigures`, and carries its
formula and source as a tooltip; the panel only places it. The measurement runs on the engine
thread as a generator (progress after each of its six steps; Cancel stops it at the next step).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.compare.calls import CostFigures
from app.compare.session import CompareSession
from app.widgets.plot_canvas import PlotCanvas
from app.widgets.plot_export import install_table_menu

COMPONENT_COLORS = ("#4e79a7", "#76b7b2", "#f28e2b", "#e15759", "#59a14f", "#edc948", "#b07aa1")
MEMORY_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1")
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "lamb")
TICK_CHARS = 14  # longer model names are abbreviated under the bars (full in the tooltip)


def tick_name(name: str) -> str:
    """A model name short enough for a bar's label: long names would overlap the next bar."""
    return name if len(name) <= TICK_CHARS else name[: TICK_CHARS - 1] + "\u2026"


def _dash():
    """A horizontal-line marker (one bar wide) for the modelled peak."""
    from PySide6.QtGui import QPainterPath

    path = QPainterPath()
    path.moveTo(-0.5, 0.0)
    path.lineTo(0.5, 0.0)
    return path


class CostPanel(QWidget):
    settings_changed = Signal(int, int, str, str)  # batch, seq (0 = fit both), precision, optimizer

    def __init__(self, session: CompareSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.figures: CostFigures | None = None  # on screen
        self.comparison = None  # core.cost.compare.Comparison on screen
        self.rows: list = []  # core.cost.tradeoff.CostRow on screen

        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(session.batch)
        self.batch.setToolTip("Batch size B of the memory figures and the measurement")
        self.seq = QSpinBox()
        self.seq.setRange(0, 8192)
        self.seq.setSpecialValueText("auto")
        self.seq.setValue(session.seq)
        self.seq.setToolTip("Sequence length T; auto = 128, or the shorter model's positions")
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.precision.setToolTip("fp32, or bf16/fp16 mixed precision (torch.autocast)")
        self.optimizer = QComboBox()
        self.optimizer.addItems(OPTIMIZERS)
        self.optimizer.setToolTip("Optimizer whose states a training step keeps (2 moments each)")
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip(
            "Run one real training step, one inference pass and timed forward passes of both "
            "models on the current device (engine thread; the window stays responsive)"
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 6)
        self.progress.setMaximumWidth(120)
        self.progress.setVisible(False)
        self.status = QLabel("")
        settings = QHBoxLayout()
        for label, widget in (
            ("Batch", self.batch),
            ("Length", self.seq),
            ("Precision", self.precision),
            ("Optimizer", self.optimizer),
        ):
            settings.addWidget(QLabel(label))
            settings.addWidget(widget)
        settings.addSpacing(8)
        settings.addWidget(self.measure_button)
        settings.addWidget(self.cancel_button)
        settings.addWidget(self.progress)
        settings.addWidget(self.status, 1)

        self.sentence = QLabel("")
        self.sentence.setWordWrap(True)
        font = QFont(self.sentence.font())
        font.setBold(True)
        self.sentence.setFont(font)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.unique_button = QRadioButton("unique (stored)")
        self.effective_button = QRadioButton("effective (per token)")
        self.unique_button.setChecked(True)
        self.count_group = QButtonGroup(self)
        for button in (self.unique_button, self.effective_button):
            self.count_group.addButton(button)
        toggle = QHBoxLayout()
        toggle.addWidget(QLabel("Parameters:"))
        toggle.addWidget(self.unique_button)
        toggle.addWidget(self.effective_button)
        toggle.addStretch(1)

        self.canvas = PlotCanvas()
        self.canvas.export_name = "compare-cost-bars"
        self.params_plot = self.canvas.addPlot(row=0, col=0, title="parameters by component (M)")
        self.memory_plot = self.canvas.addPlot(row=0, col=1, title="memory (MiB)")
        for plot in (self.params_plot, self.memory_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.showGrid(y=True, alpha=0.25)
        # keys in their own columns, so they never cover a bar
        self.params_legend = self.canvas.add_key(row=1, col=0, columns=3)
        self.memory_legend = self.canvas.add_key(row=1, col=1, columns=3)
        self.memory_plot.getAxis("bottom").setHeight(38)
        self.param_bars: dict[str, pg.BarGraphItem] = {}
        self.memory_bars: dict[str, pg.BarGraphItem] = {}
        self.peak_marks = pg.ScatterPlotItem(
            symbol=_dash(), size=44, pen=pg.mkPen("#222", width=2), brush=None, name="peak (model)"
        )
        self.measured_marks = pg.ScatterPlotItem(
            symbol="x", size=12, pen=pg.mkPen("#d00", width=2), brush="#d00", name="peak (measured)"
        )

        self.table = QTableWidget(0, 4)
        self.table.setObjectName("compare-cost-table")
        self.table.setHorizontalHeaderLabels(["figure", "A", "B", "B / A"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        for col in (0, 1, 2, 3):  # sized once per update (resizeColumnsToContents)
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self.table.setMinimumSize(470, 200)
        self.table.setWordWrap(False)
        header.setStretchLastSection(True)
        install_table_menu(self.table)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(toggle)
        top_layout.addWidget(self.canvas, 1)
        self.canvas.setMinimumSize(640, 380)  # both charts with their titles, bars and keys
        # the charts across the whole width, the table below them: side by side neither fits
        # a laptop's width (the page scrolls instead, see CompareView)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.table)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([440, 320])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(settings)
        layout.addWidget(self.sentence)
        layout.addWidget(splitter, 1)

        self.batch.valueChanged.connect(self._on_settings_edited)
        self.seq.valueChanged.connect(self._on_settings_edited)
        self.precision.currentIndexChanged.connect(self._on_settings_edited)
        self.optimizer.currentIndexChanged.connect(self._on_settings_edited)
        self.count_group.buttonToggled.connect(self._on_count_toggled)
        self.measure_button.clicked.connect(self._on_measure)
        self.cancel_button.clicked.connect(session.cancel_measure)
        session.costed.connect(self.show_figures)
        session.cost_failed.connect(self._on_failed)
        session.measure_progress.connect(self._on_progress)
        session.measured.connect(self._on_measured)
        session.measure_failed.connect(self._on_measure_failed)
        session.measure_cancelled.connect(self._on_measure_cancelled)

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> tuple[int, int, str, str]:
        return (
            self.batch.value(),
            self.seq.value(),
            self.precision.currentText(),
            self.optimizer.currentText(),
        )

    @Slot()
    def _on_settings_edited(self, *_args) -> None:
        self.session.set_cost_settings(*self.settings())
        self.settings_changed.emit(*self.settings())

    @Slot()
    def _on_count_toggled(self, *_args) -> None:
        if self.figures is not None:
            self._draw_params(self.figures)

    # -- figures -------------------------------------------------------------------------------
    @property
    def effective(self) -> bool:
        return self.effective_button.isChecked()

    def param_values(self, side: int) -> dict[str, int]:
        """Parameters per component of model ``side`` as the bars show them."""
        counts = self.figures.effective if self.effective else self.figures.unique
        return dict(counts[side])

    @Slot(object)
    def show_figures(self, figures: CostFigures) -> None:
        self.figures = figures
        self.comparison = figures.comparison
        self.rows = figures.rows
        self.sentence.setText(figures.sentence)
        self.sentence.setToolTip(
            "Computed from the table: unique parameters, forward FLOPs per token and the "
            "training-step peak (measured when measured, else the memory model)"
        )
        self._fill_table(figures)
        self._draw_params(figures)
        self._draw_memory(figures)
        if not self.status.text().startswith("measur"):
            self.status.setText("")

    def _fill_table(self, f: CostFigures) -> None:
        c = f.comparison
        self.table.setHorizontalHeaderLabels(["figure", c.a.name, c.b.name, "B / A"])
        table = self.table
        table.setUpdatesEnabled(False)
        if table.rowCount() != len(f.table):  # new items only when the shape changes
            table.setRowCount(len(f.table))
            bold = QFont(table.font())
            bold.setBold(True)
            for r, line in enumerate(f.table):
                for col in range(4):
                    item = QTableWidgetItem("")
                    if col:
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    if line.bold:
                        item.setFont(bold)
                    table.setItem(r, col, item)
        for r, line in enumerate(f.table):
            for col, text in enumerate(line.cells):
                item = table.item(r, col)
                item.setText(text)
                item.setToolTip(line.tip)
        table.resizeColumnsToContents()
        table.setUpdatesEnabled(True)

    def _bars(self, plot, key, names, colors, store: dict, width: float, x) -> None:
        """One persistent stacked BarGraphItem per name (created once, with its legend entry)."""
        if store:
            return
        for name, color in zip(names, colors, strict=True):
            bar = pg.BarGraphItem(x=x, height=np.zeros(len(x)), width=width, brush=color)
            plot.addItem(bar)
            key.addItem(bar, name)
            store[name] = bar

    def _draw_params(self, f: CostFigures) -> None:
        c = f.comparison
        plot = self.params_plot
        self._bars(
            plot, self.params_legend, f.components, COMPONENT_COLORS, self.param_bars, 0.6,
            np.arange(2.0),
        )  # fmt: skip
        values = [self.param_values(0), self.param_values(1)]
        bottom = np.zeros(2)
        for comp in f.components:
            heights = np.array([values[0][comp], values[1][comp]], dtype=np.float64) / 1e6
            bar = self.param_bars[comp]
            bar.setOpts(height=heights, y0=bottom.copy())
            bar.setToolTip(
                f"{comp}: {values[0][comp]:,} / {values[1][comp]:,} parameters\n"
                f"formula ({c.a.name}): {f.formulas[0][comp]}\n"
                f"formula ({c.b.name}): {f.formulas[1][comp]}\n"
                "source: core.cost.params.param_report"
            )
            bottom = bottom + heights
        kind = "effective" if self.effective else "unique"
        plot.setTitle(f"parameters by component, {kind} (M)")
        plot.getAxis("bottom").setTicks([[(0, tick_name(c.a.name)), (1, tick_name(c.b.name))]])
        plot.getAxis("bottom").setToolTip(f"A: {c.a.name}\nB: {c.b.name}")
        plot.setXRange(-0.5, 1.5, padding=0)
        plot.setYRange(0, float(bottom.max()) * 1.05, padding=0)
        self.canvas.fit_key(self.params_legend)

    def memory_values(self) -> list[dict[str, int]]:
        """Bytes per memory group of the four bars: A training, B training, A inference,
        B inference."""
        return [dict(groups) for groups in self.figures.memory]

    def _draw_memory(self, f: CostFigures) -> None:
        c = f.comparison
        plot = self.memory_plot
        x = np.array([0.0, 1.0, 2.5, 3.5])
        first = not self.memory_bars
        self._bars(
            plot, self.memory_legend, list(f.memory_groups), MEMORY_COLORS, self.memory_bars, 0.8, x
        )
        if first:
            plot.addItem(self.peak_marks)
            # a short line for the key: the bar-wide dash itself would run over its label
            sample = pg.PlotDataItem(pen=pg.mkPen("#222", width=2))
            self.memory_legend.addItem(sample, "peak (model)")
            plot.addItem(self.measured_marks)
            self.memory_legend.addItem(self.measured_marks, "peak (measured)")
        bottom = np.zeros(4)
        for group, names in f.memory_groups.items():
            heights = np.array([v[group] for v in f.memory], dtype=np.float64) / 2**20
            bar = self.memory_bars[group]
            bar.setOpts(height=heights, y0=bottom.copy())
            bar.setToolTip(
                f"{group} (MiB): " + ", ".join(f"{h:,.1f}" for h in heights)
                + f"\nmemory items: {'; '.join(names)}\nformula: {f.memory_formulas[group]}"
                + f"\nsource: core.cost.memory (B={c.batch}, T={c.seq}, {c.precision})"
            )  # fmt: skip
            bottom = bottom + heights
        peaks = np.array(
            [c.a.memory_training.total, c.b.memory_training.total,
             c.a.memory_inference.total, c.b.memory_inference.total], dtype=np.float64,
        ) / 2**20  # fmt: skip
        self.peak_marks.setData(x=x, y=peaks)
        self.peak_marks.setToolTip("peak (model): weights + states + the largest phase")
        measured = [c.a.measured_training, c.b.measured_training,
                    c.a.measured_inference, c.b.measured_inference]  # fmt: skip
        top = max(float(bottom.max()), float(peaks.max()))
        if all(m is not None for m in measured):
            heights = np.array([m.peak for m in measured], dtype=np.float64) / 2**20
            self.measured_marks.setData(x=x, y=heights)
            self.measured_marks.setToolTip(f"peak (measured): {measured[0].method}")
            top = max(top, float(heights.max()))
        else:
            self.measured_marks.setData(x=[], y=[])
        a, b = tick_name(c.a.name), tick_name(c.b.name)
        plot.getAxis("bottom").setTicks(
            [[(0, f"{a}\ntraining"), (1, f"{b}\ntraining"),
              (2.5, f"{a}\ninference"), (3.5, f"{b}\ninference")]]
        )  # fmt: skip
        plot.getAxis("bottom").setToolTip(f"A: {c.a.name}\nB: {c.b.name}")
        plot.setTitle(f"memory (MiB), B={c.batch} \u00d7 T={c.seq}, {c.precision}, {c.optimizer}")
        plot.setXRange(-0.6, 4.1, padding=0)
        plot.setYRange(0, top * 1.05, padding=0)
        self.canvas.fit_key(self.memory_legend)
        if first:  # the new legend labels take the theme's colours; later draws keep them
            self.canvas.apply_palette()

    # -- measurement ---------------------------------------------------------------------------
    @Slot()
    def _on_measure(self) -> None:
        job = self.session.measure()
        if job is None:
            return
        self.measure_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText("measuring\u2026")

    def _measure_ended(self, message: str) -> None:
        self.measure_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self.status.setText(message)
        self.status.setToolTip(message)

    @Slot(object)
    def _on_progress(self, progress) -> None:
        self.progress.setMaximum(progress.total)
        self.progress.setValue(progress.done)
        self.status.setText(f"measuring\u2026 {progress.label}")

    @Slot(object)
    def _on_measured(self, comparison) -> None:
        self._measure_ended(f"measured on {comparison.device}")

    @Slot(str)
    def _on_measure_failed(self, message: str) -> None:
        self._measure_ended(message)

    @Slot()
    def _on_measure_cancelled(self) -> None:
        self._measure_ended("measurement cancelled")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(message)
        self.status.setToolTip(message)
