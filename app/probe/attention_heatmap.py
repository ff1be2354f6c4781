"""The big attention heatmap: one layer and head (or the head mean, or rollout) of the probed
sentence, tokens on both axes, rows attending to columns.

Row i of ``attentions[layer, head]`` is where token i looks (it sums to 1). "Mean over heads"
shows ``AttentionStats.mean_maps[layer]`` and "Rollout" ``AttentionStats.rollout[layer]``
(Abnar and Zuidema 2020), both computed by ``core``. The default colour scale, "auto", is
fixed at 0..1 for short inputs, so colours mean the same weight in every layer, head and
sentence; above ``AUTO_LONG`` tokens a row's weights are about 1/T and 0..1 is black, so "auto"
colours each row to its maximum. The scale can also be chosen: 0..1, the matrix's maximum,
each row's maximum, or a square root (gamma 0.5); the one in use is named in the title.
"Words" shows word-level attention (Clark et al. 2019), which the state has the engine thread
compute (``AppState.set_word_level``); the pieces stay on screen until it arrives. Cells stay
square for a long input, which opens on its first tokens and scrolls (a short one fills the
panel, no bands beside it); a span brushed on the token strip
zooms to that block, and the token clicked there has its row (where it looks) outlined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QColor, QKeySequence, QPen, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.probe.state import AppState
from app.theme import ATTENTION_COLORMAP, FOCUS_OUTLINE, is_dark, token_label_style
from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas

if TYPE_CHECKING:  # pragma: no cover
    from app.probe.calls import WordViews
    from core.analysis.summary import ProbeAnalysis

MEAN = -1  # "head" index for the mean over heads
ROLLOUT = -2  # "head" index for attention rollout
SCALES = (  # colour-scale modes: key, menu text
    ("auto", "auto"),
    ("fixed", "0\u20131"),
    ("max", "0\u2013max"),
    ("row", "per row"),
    ("gamma", "\u221aweight"),
)
AUTO_LONG = 32  # "auto" keeps 0..1 up to this many tokens, then colours rows to their max
MAX_VISIBLE = 48  # a longer input opens on its first 48 tokens, in square cells
DARK_FLOOR = 0.12  # in the dark theme the colour map starts above inferno's black


def resolve_scale(mode: str, tokens: int) -> str:
    """The scale "auto" stands for at ``tokens`` tokens: 0..1 while it shows structure, each
    row to its max beyond (one strong target per row would keep 0..max black too)."""
    if mode != "auto":
        return mode
    return "row" if tokens > AUTO_LONG else "fixed"


def scale_for_display(matrix: np.ndarray, mode: str) -> tuple[np.ndarray, tuple[float, float], str]:
    """What the image shows for colour-scale ``mode``: (data, levels, name for the title).
    The read-out always gives the unscaled weight."""
    m = np.asarray(matrix, dtype=np.float32)
    if mode == "auto":
        tokens = m.shape[-1] if m.ndim else 0
        picked = resolve_scale(mode, tokens)
        data, levels, name = scale_for_display(m, picked)
        return data, levels, name if picked == "fixed" else f"{name} (auto)"
    if mode == "max":
        top = max(float(m.max()), 1e-6) if m.size else 1.0
        return m, (0.0, top), f"colours 0\u2013{top:.3g} (max)"
    if mode == "row":
        tops = m.max(axis=1, keepdims=True) if m.size else np.ones((0, 1), np.float32)
        return m / np.where(tops > 0, tops, 1.0), (0.0, 1.0), "colours: each row / its max"
    if mode == "gamma":
        return np.sqrt(np.clip(m, 0.0, None)), (0.0, 1.0), "colours: \u221aweight"
    return m, (0.0, 1.0), "colours 0\u20131"


def head_name(head: int) -> str:
    return {MEAN: "mean over heads", ROLLOUT: "rollout"}.get(head, f"head {head + 1}")


class AttentionHeatmap(QWidget):
    selected = Signal(int, int)  # layer, head (MEAN / ROLLOUT for the aggregates)
    cell_hovered = Signal(str)  # readout of the hovered cell ("" when none)
    scale_changed = Signal(str, bool)  # colour-scale mode, word level: the head grid follows

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.analysis: ProbeAnalysis | None = None
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("Layer (Alt+Up / Alt+Down)")
        self.head_box = QComboBox()
        self.head_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        # a cramped row must not cut "mean over heads" to "mean over |"
        self.head_box.setMinimumContentsLength(len("mean over heads"))
        self.head_box.setToolTip("Head, mean over heads or rollout (Alt+Left / Alt+Right)")
        self.scale_box = QComboBox()
        self.scale_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for key, text in SCALES:
            self.scale_box.addItem(text, key)
        self.scale_box.setToolTip(
            "Colour scale: auto (0\u20131 for short inputs, each row to its maximum above "
            f"{AUTO_LONG} tokens), "
            "fixed 0\u20131 (the same colour is the same weight everywhere), "
            "0 to this matrix's maximum, each row to its own maximum, or a square root that "
            "lifts small weights. The read-out always shows the weight itself."
        )
        self.words_box = QCheckBox("words")
        self.words_box.setToolTip(
            "Word-level attention: pieces of a word merged, attention to a word summed over "
            "its pieces, attention from a word averaged over them (Clark et al. 2019)"
        )
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Fixed 0\u20131 colours and the whole matrix in view")
        self.readout = QLabel("")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setMinimumWidth(200)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer"))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addWidget(QLabel("Colours"))
        controls.addWidget(self.scale_box)
        controls.addWidget(self.words_box)
        controls.addWidget(self.reset_button)
        controls.addStretch(1)
        self.canvas = PlotCanvas()
        # no drag handles on the colour bar: the scale is chosen (and named) above
        self.plot = MatrixPlot(
            colormap=ATTENTION_COLORMAP, levels=(0.0, 1.0), interactive=False, square=True
        )
        self.plot.max_visible = MAX_VISIBLE
        self.focus_token: int | None = None  # the token clicked on the strip: its row outlined
        pen = QPen(QColor(FOCUS_OUTLINE))
        pen.setWidthF(2.5)
        pen.setCosmetic(True)  # 2.5 px whatever the zoom
        self.focus_outline = QGraphicsRectItem()
        self.focus_outline.setPen(pen)
        self.focus_outline.setZValue(10)
        self.focus_outline.setVisible(False)
        self.plot.addItem(self.focus_outline)
        self.plot.row_axis.setLabel("from")
        self.plot.col_axis.setLabel("to")
        self.canvas.addItem(self.plot)
        self.canvas.apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.readout)
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
        state.word_level_ready.connect(self._on_word_level_ready)
        state.current_changed.connect(self._on_current_changed)
        self.layer_box.currentIndexChanged.connect(self._on_box_changed)
        self.head_box.currentIndexChanged.connect(self._on_box_changed)
        self.scale_box.currentIndexChanged.connect(self._on_box_changed)
        self.words_box.toggled.connect(self._on_words_toggled)
        self.reset_button.clicked.connect(self.reset_view)
        self.plot.image.hovered.connect(self._on_hovered)
        self._apply_theme()
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

    @property
    def scale(self) -> str:
        return str(self.scale_box.currentData() or "auto")

    @property
    def word_level(self) -> bool:
        """Words on screen: switched on, and the engine has computed them for this probe."""
        return self.words_box.isChecked() and self._word_views() is not None

    def _word_views(self) -> WordViews | None:
        """The state's word-level attention, if it belongs to the probe drawn here."""
        if self.analysis is None or self.analysis is not self.state.analysis:
            return None
        return self.state.word_views

    def set_scale(self, mode: str) -> None:
        index = self.scale_box.findData(mode)
        if index >= 0:
            self.scale_box.setCurrentIndex(index)

    def matrix(self) -> np.ndarray | None:
        """The (T, T) matrix on screen (W x W with "words"), unscaled, from ``core``'s arrays."""
        analysis = self.analysis
        if analysis is None:
            return None
        layer, head = self.layer, self.head
        words = self._word_views() if self.words_box.isChecked() else None
        if words is not None:
            if head == MEAN:
                return words.mean_maps[layer]
            if head == ROLLOUT:
                return words.rollout[layer]
            return words.attentions[layer, head]
        if head == MEAN:
            return analysis.attention.mean_maps[layer]
        if head == ROLLOUT:
            return analysis.attention.rollout[layer]
        return analysis.result.attentions[layer, head]

    def names(self) -> list[str]:
        """Row/column names: tokens, or words with "words" on."""
        if self.analysis is None:
            return []
        if self.word_level:
            return list(self._word_views().words.labels)
        return [t.text for t in self.analysis.result.tokens]

    def describe_cell(self, row: int, col: int) -> str:
        matrix = self.matrix()
        if matrix is None:
            return ""
        names = self.names()
        weight = float(matrix[row, col])
        unit = "word " if self.word_level else ""
        return (
            f"from {unit}#{row} {names[row]!r} \u2192 to {unit}#{col} {names[col]!r}: "
            f"{weight:.4f}  (layer {self.layer + 1}, {head_name(self.head)})"
        )

    def zoom_to(self, first: int, last: int) -> None:
        """Show tokens ``first``..``last`` (a span brushed on the token strip)."""
        if self.analysis is None:
            return
        if self.word_level:
            words = self._word_views().words
            first, last = words.word_of(first), words.word_of(last)
        self.plot.show_block(first, last)

    @Slot(int)
    def outline_token(self, index: int | None) -> None:
        """Outline the row of token ``index`` (its word's row with "words" on); None: none."""
        self.focus_token = index
        self._draw_outline()

    def outlined_row(self) -> int | None:
        """The matrix row outlined now, or None."""
        if not self.focus_outline.isVisible():
            return None
        return round(self.focus_outline.rect().top() + 0.5)

    def _draw_outline(self) -> None:
        matrix, index = self.matrix(), self.focus_token
        if matrix is None or index is None or index >= len(self.analysis.result.tokens):
            self.focus_outline.setVisible(False)
            return
        row = self._word_views().words.word_of(index) if self.word_level else index
        self.focus_outline.setRect(-0.5, row - 0.5, matrix.shape[1], 1.0)
        self.focus_outline.setVisible(True)

    def reset_view(self) -> None:
        """Fixed colours and the whole matrix in view."""
        self.set_scale("fixed")
        if self.analysis is not None:
            self.plot.show_whole()

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        # token labels may take a quarter of the height, so a short panel keeps its matrix
        room = max(52, min(110, (self.canvas.height() - 60) // 4))
        for axis in (self.plot.row_axis, self.plot.col_axis):
            axis.set_max_label_px(room)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()

    def _apply_theme(self) -> None:
        self.plot.set_colormap_floor(DARK_FLOOR if is_dark(self.palette()) else 0.0)

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
        self._on_hovered(None)  # a read-out of the previous result would describe other tokens
        self._relabel()
        self._redraw()

    def _relabel(self) -> None:
        labels, colors, bold = token_label_style(self.analysis.result, self.palette())
        if self.word_level:
            words = self._word_views().words
            labels = list(words.labels)
            colors = [colors[i] for i in words.first]
            bold = [bold[i] for i in words.first]
        self.plot.set_labels(labels, None, colors, None, bold)

    @Slot(bool)
    def _on_words_toggled(self, on: bool) -> None:
        self.state.set_word_level(on)  # words ready now, or word_level_ready once computed
        self._show_level()

    @Slot(object)
    def _on_word_level_ready(self, _words: WordViews) -> None:
        if self.words_box.isChecked():
            self._show_level()

    def _show_level(self) -> None:
        """Redraw as pieces or words, whichever :attr:`word_level` says is on screen."""
        if self.analysis is None:
            return
        self._on_hovered(None)
        self._relabel()
        self._redraw()

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.analysis = None
            self.plot.clear_matrix()
            self.focus_outline.setVisible(False)
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
        data, levels, scale_name = scale_for_display(matrix, self.scale)
        self.plot.set_matrix(data, levels=levels)
        words = " \u00b7 words" if self.word_level else ""
        # 10pt: the scale's name must fit above a half-width panel's matrix
        self.plot.setTitle(
            f"layer {self.layer + 1} \u00b7 {head_name(self.head)}{words} \u00b7 {scale_name}",
            size="10pt",
        )
        self._draw_outline()
        self.selected.emit(self.layer, self.head)
        self.scale_changed.emit(self.scale, self.word_level)
