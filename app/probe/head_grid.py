"""Every head of every layer as a small heatmap, like bertviz's model view (Vig 2019).

Rows are layers (ALBERT: effective layers, one per use of a shared layer), columns are heads.
Each cell is ``attentions[layer, head]`` at the big heatmap's colour scale (named in the hint);
clicking a cell opens that head there. Cells are rebuilt only when the model's shape changes;
a new sentence just swaps the images. The grid never shrinks below its labels and
``MIN_HEAD_CELL_PX`` cells: a panel too small for a 12-head model scrolls instead of cutting
the last heads off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, Signal, Slot
from PySide6.QtGui import QPalette, QTransform
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.probe.attention_heatmap import DARK_FLOOR, resolve_scale, scale_for_display
from app.probe.state import AppState
from app.theme import ATTENTION_COLORMAP, is_dark
from app.widgets.matrix_plot import MatrixImage
from app.widgets.plot_canvas import PlotCanvas

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

MIN_HEAD_CELL_PX = 14  # a head's cell is never smaller: below it the grid scrolls


@dataclass
class HeadCell:
    layer: int
    head: int
    view: pg.ViewBox
    image: MatrixImage


class HeadGrid(QWidget):
    selected = Signal(int, int)  # layer, head clicked

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.cells: list[HeadCell] = []
        self.shape: tuple[int, int] = (0, 0)
        self.highlighted: tuple[int, int] | None = None
        self.cmap = pg.colormap.get(ATTENTION_COLORMAP)
        self.lut = self.cmap.getLookupTable(nPts=256)
        self.scale = "auto"  # the heatmap's colour scale and word level, followed here
        self.word_level = False
        self.analysis: ProbeAnalysis | None = None
        self.canvas = PlotCanvas()
        self.canvas.ci.setSpacing(2)
        self.hint = QLabel("Click a head to open it in the heatmap.")
        self.hint.setWordWrap(True)  # a narrow panel still names the colour scale
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout.addWidget(self.hint)
        layout.addWidget(self.scroll, 1)
        state.probed.connect(self._on_probed)
        state.current_changed.connect(self._on_current_changed)
        self._apply_theme()
        if state.analysis is not None:  # built after a probe: draw it now
            self._on_probed(state.analysis)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()

    def _apply_theme(self) -> None:
        """Start the colour map above black in the dark theme, as the big heatmap does."""
        floor = DARK_FLOOR if is_dark(self.palette()) else 0.0
        self.lut = self.cmap.getLookupTable(start=floor, stop=1.0, nPts=256)
        for cell in self.cells:
            cell.image.setLookupTable(self.lut)

    @Slot(str, bool)
    def set_display(self, scale: str, word_level: bool) -> None:
        """Follow the big heatmap's colour scale and word level."""
        if (scale, word_level) == (self.scale, self.word_level):
            return
        self.scale, self.word_level = scale, word_level
        if self.analysis is not None:
            self._on_probed(self.analysis)

    def cell(self, layer: int, head: int) -> HeadCell:
        return self.cells[layer * self.shape[1] + head]

    def _build(self, layers: int, heads: int) -> None:
        self.canvas.ci.clear()
        self.cells = []
        self.shape = (layers, heads)
        # heads numbered under a "layer \ head" corner: "H12" would widen every column
        self.canvas.ci.addLabel("L\\H", row=0, col=0, size="7pt")
        for h in range(heads):
            self.canvas.ci.addLabel(f"{h + 1}", row=0, col=h + 1, size="7pt")
        for layer in range(layers):
            self.canvas.ci.addLabel(f"L{layer + 1}", row=layer + 1, col=0, size="8pt")
            for h in range(heads):
                view = self.canvas.ci.addViewBox(
                    row=layer + 1,
                    col=h + 1,
                    lockAspect=True,
                    enableMouse=False,
                    invertY=True,
                    defaultPadding=0.0,
                )
                view.setMenuEnabled(False)
                view.setMinimumSize(MIN_HEAD_CELL_PX, MIN_HEAD_CELL_PX)
                image = MatrixImage(axisOrder="row-major", autoDownsample=True)
                image.setTransform(QTransform().translate(-0.5, -0.5))
                image.setLookupTable(self.lut)
                image.clicked.connect(
                    lambda _r, _c, layer=layer, head=h: self._on_cell_clicked(layer, head)
                )
                view.addItem(image)
                self.cells.append(HeadCell(layer, h, view, image))
        self.canvas.apply_palette()
        self.highlighted = None
        # the canvas asks for the room its labels and smallest cells need; the scroll area
        # shows a scroll bar when the panel has less
        need = self.canvas.ci.layout.effectiveSizeHint(Qt.SizeHint.MinimumSize)
        self.canvas.setMinimumSize(QSize(int(need.width()) + 4, int(need.height()) + 4))

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        self.analysis = analysis
        # (L, heads, T, T), or (L, heads, W, W) word-level (computed by the engine thread)
        words = self.state.word_views if self.word_level else None
        attentions = words.attentions if words is not None else analysis.result.attentions
        layers, heads, t = attentions.shape[:3]
        if (layers, heads) != self.shape:
            self._build(layers, heads)
        for cell in self.cells:
            data, levels, _ = scale_for_display(attentions[cell.layer, cell.head], self.scale)
            cell.image.setImage(data, autoLevels=False, levels=levels)
            cell.view.setRange(xRange=(-0.5, t - 0.5), yRange=(-0.5, t - 0.5), padding=0)
        self.hint.setText(
            f"{layers} layers \u00d7 {heads} heads \u00b7 {self.scale_name(t)} \u2014 click one"
        )

    def scale_name(self, tokens: int) -> str:
        """The colour scale the cells use, in words (the hint names it)."""
        picked = resolve_scale(self.scale, tokens)
        auto = " (auto)" if self.scale == "auto" else ""
        return {
            "fixed": "colours 0\u20131",
            "max": "colours 0\u2013max per cell",
            "row": "colours: each row / its max",
            "gamma": "colours \u221aweight",
        }[picked] + auto

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.canvas.ci.clear()
            self.cells, self.shape, self.analysis = [], (0, 0), None

    def _on_cell_clicked(self, layer: int, head: int) -> None:
        self.highlight(layer, head)
        self.selected.emit(layer, head)

    def highlight(self, layer: int, head: int) -> None:
        """Frame the head shown in the big heatmap (heads < 0, the aggregates, frame nothing)."""
        if self.highlighted is not None and self.cells:
            old = self.cell(*self.highlighted)
            old.view.setBorder(None)
        self.highlighted = None
        if 0 <= layer < self.shape[0] and 0 <= head < self.shape[1]:
            color = self.palette().color(QPalette.ColorRole.Highlight)
            self.cell(layer, head).view.setBorder(pg.mkPen(color, width=3))
            self.highlighted = (layer, head)
