"""Where one token looks, layer by layer (bertviz's head view, Vig 2019, as bars).

Click a token in the strip: for every layer the plot draws one column of horizontal bars, one
bar per token it could attend to, as long as the attention weight (a full cell = 1) on the
heatmap's colour scale: with "auto", a long input's bars run to each layer's largest weight,
since weights near 1/T would be invisible slivers (named in the title). Values are
``ProbeAnalysis.focus``, computed by core with the probe for every token, so a click only
indexes: one head or the mean over heads. For sentence pairs the A->B / B->A filters keep only
the attention that crosses from one text to the other, as in bertviz's sentence-pair filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.probe.attention_heatmap import scale_for_display
from app.probe.state import AppState
from app.theme import token_categories, token_label_style, token_pens
from app.widgets.plot_canvas import PlotCanvas
from app.widgets.token_axis import TokenAxis

if TYPE_CHECKING:  # pragma: no cover
    from app.probe.calls import WordViews
    from core.analysis.summary import ProbeAnalysis

BAR_WIDTH = 0.9  # share of a layer column a weight of 1 fills
FILTERS = ("all tokens", "A \u2192 B", "B \u2192 A")


class TokenFocus(QWidget):
    focused = Signal(int)  # token index now shown

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.analysis: ProbeAnalysis | None = None
        self.index: int | None = None
        self.word_level = False  # bars per word (the heatmap's "words" switch)
        self.scale = "auto"  # the heatmap's colour scale: bar lengths follow it
        self.weights: np.ndarray | None = None  # (L, T) on screen, zeros where filtered out
        self.head_box = QComboBox()
        self.head_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        # a cramped row must not cut "mean over heads" to "mean over |"
        self.head_box.setMinimumContentsLength(len("mean over heads"))
        self.filter_box = QComboBox()
        self.filter_box.addItems(FILTERS)
        self.filter_box.setToolTip(
            "For sentence pairs: only attention from text A to text B, or back"
        )
        self.title = QLabel("Click a token above to see where it looks in every layer.")
        self.title.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Head"))
        controls.addWidget(self.head_box)
        controls.addWidget(QLabel("Filter"))
        controls.addWidget(self.filter_box)
        controls.addStretch(1)
        self.canvas = PlotCanvas()
        self.token_axis = TokenAxis("left", max_label_px=90)
        self.layer_axis = TokenAxis("bottom", max_label_px=40)
        self.plot = self.canvas.addPlot(
            axisItems={"left": self.token_axis, "bottom": self.layer_axis}
        )
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=True)
        self.plot.showGrid(x=False, y=False)
        self.marker = pg.BarGraphItem(x0=[], y=[], width=[], height=0.9)
        self.plot.addItem(self.marker)
        # one bar item per token group (A, B, special, [MASK]), each with a single brush
        self.bars = [pg.BarGraphItem(x0=[], y=[], width=[], height=0.8) for _ in range(4)]
        for bars in self.bars:
            self.plot.addItem(bars)
        self.canvas.apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        self.readout = QLabel("")
        layout.addWidget(self.readout)

        state.probed.connect(self._on_probed)
        state.current_changed.connect(self._on_current_changed)
        self.head_box.currentIndexChanged.connect(self._on_options_changed)
        self.filter_box.currentIndexChanged.connect(self._on_options_changed)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        if state.analysis is not None:  # built after a probe: draw it now
            self._on_probed(state.analysis)

    @property
    def head(self) -> int:
        data = self.head_box.currentData()
        return int(data) if data is not None else -1

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        heads = result.num_heads
        if self.head_box.count() != heads + 1:
            self.head_box.blockSignals(True)
            self.head_box.clear()
            self.head_box.addItem("mean over heads", -1)
            for h in range(heads):
                self.head_box.addItem(f"{h + 1}", h)
            self.head_box.blockSignals(False)
        self.filter_box.setEnabled(result.pair is not None)
        if result.pair is None:
            self.filter_box.setCurrentIndex(0)
        if self.analysis is not None and self.index is not None:
            # the same characters, not the same token number: another tokenizer cuts
            # the words differently ("#5 'lord'" must not become "#5 '▁the'")
            self.index = self.state.carry(self.index)
        self.analysis = analysis
        self._relabel()
        self.layer_axis.set_labels([f"L{i + 1}" for i in range(result.num_layers)])
        if self.index is None or self.index >= len(result.tokens):
            self.index = 0  # [CLS] until the user picks a token
        self._redraw()

    def _word_views(self) -> WordViews | None:
        """The state's word-level attention while the heatmap shows words (it follows the
        state's probe, which is the one drawn here)."""
        return self.state.word_views if self.word_level else None

    def _relabel(self) -> None:
        labels, colors, bold = token_label_style(self.analysis.result, self.palette())
        views = self._word_views()
        if views is not None:
            first = views.words.first
            labels = list(views.words.labels)
            colors, bold = [colors[i] for i in first], [bold[i] for i in first]
        self.token_axis.set_labels(labels, colors, bold)

    @Slot(str, bool)
    def set_display(self, scale: str, word_level: bool) -> None:
        """Follow the heatmap's colour scale (bar lengths) and word level (bars per word)."""
        if (scale, word_level) == (self.scale, self.word_level):
            return
        self.scale, self.word_level = scale, word_level
        self.filter_box.setEnabled(not word_level and self.analysis is not None
                                   and self.analysis.result.pair is not None)  # fmt: skip
        if self.analysis is not None:
            self._relabel()
            self._redraw()

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not key:
            self.analysis, self.weights = None, None
            for bars in (*self.bars, self.marker):
                bars.setOpts(x0=[], y=[], width=[])

    @Slot(int)
    def show_token(self, index: int) -> None:
        self.index = index
        self._redraw()

    @Slot(int)
    def _on_options_changed(self, _index: int) -> None:
        self._redraw()

    def _redraw(self) -> None:
        analysis, index = self.analysis, self.index
        if analysis is None or index is None:
            return
        result, focus = analysis.result, analysis.focus  # computed by core with the probe
        # (L, T): where token ``index`` looks in each layer
        weights = focus.mean[index] if self.head < 0 else focus.heads[index, :, self.head]
        mode = self.filter_box.currentIndex() if result.pair is not None else 0
        token = result.tokens[index]
        note = ""
        groups = token_categories(result)
        row = index
        views = self._word_views()
        if views is not None:
            words = views.words
            row = words.word_of(index)
            # (L, W): where word ``row`` looks, mean over heads or one head
            weights = (
                views.mean_maps[:, row] if self.head < 0 else views.attentions[:, self.head, row]
            )
            groups = groups[words.first]
            mode = 0
        if mode:
            weights = weights * focus.keep[mode, index]  # zero where the filter drops i -> j
            if not focus.sources[mode, index]:
                text = "A" if mode == 1 else "B"
                note = f" \u2014 pick a token of text {text} for the {FILTERS[mode]} filter"
        self.weights = weights
        layers, t = weights.shape
        # each layer is one row of an attention matrix: "row" runs its bars to its own max
        lengths, (_, top), scale_name = scale_for_display(weights, self.scale)
        lengths = lengths / max(top, 1e-6)
        for group, (bars, color) in enumerate(
            zip(self.bars, token_pens(self.palette()), strict=True)
        ):
            targets = np.flatnonzero(groups == group)
            bars.setOpts(
                x0=np.repeat(np.arange(layers) - BAR_WIDTH / 2, len(targets)),
                y=np.tile(targets, layers),
                width=(lengths[:, targets] * BAR_WIDTH).ravel(),
                height=0.8,
                brush=pg.mkBrush(color),
                pen=None,
            )
        highlight = self.palette().color(self.palette().ColorRole.Highlight)
        highlight.setAlpha(60)
        self.marker.setOpts(
            x0=[-0.5], y=[row], width=[layers], height=0.95, brush=highlight, pen=None
        )
        self.plot.setLimits(xMin=-0.6, xMax=layers - 0.4, yMin=-0.6, yMax=t - 0.4)
        self.plot.setRange(xRange=(-0.6, layers - 0.4), yRange=(-0.6, t - 0.4), padding=0)
        head = "mean over heads" if self.head < 0 else f"head {self.head + 1}"
        what = f"#{index} {token.text!r}"
        if views is not None:
            what = f"the word {views.words.labels[row]!r} (pieces averaged, targets summed)"
        bars = scale_name.replace("colours", "bars")
        self.title.setText(f"Where {what} looks in each layer ({head}; {bars}){note}")
        self.focused.emit(index)

    @Slot(object)
    def _on_mouse_moved(self, pos: QPointF) -> None:
        if self.weights is None or self.analysis is None:
            return
        if not self.plot.sceneBoundingRect().contains(pos):
            self.readout.setText("")
            return
        point = self.plot.vb.mapSceneToView(pos)
        layer, target = round(point.x()), round(point.y())
        layers, t = self.weights.shape
        if 0 <= layer < layers and 0 <= target < t:
            tokens = self.analysis.result.tokens
            views = self._word_views()
            if views is not None:
                words = views.words
                source = words.labels[words.word_of(self.index)]
                name = f"word {source!r} \u2192 word {words.labels[target]!r}"
            else:
                name = f"#{self.index} {tokens[self.index].text!r} \u2192 #{target} {tokens[target].text!r}"
            self.readout.setText(
                f"layer {layer + 1}: {name}: {float(self.weights[layer, target]):.4f}"
            )
