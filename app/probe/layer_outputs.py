"""How the token representations change with depth.

Left: the hidden-state norm of every token at every layer (row 0 is the embedding output), and
the layer-to-layer L2 distance and cosine similarity averaged over tokens, the curves of the
ALBERT paper's Figure 1 (Lan et al. 2020), where ALBERT's transitions are smoother than BERT's.
Right: the tokens on each layer's first two principal components; the layer slider glides from
one layer's projection to the next (the views only interpolate between projections ``core``
computed, with a ``QVariantAnimation``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEasingCurve, Qt, QTimer, QVariantAnimation, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.probe.state import AppState
from app.theme import display_token, segment_pens, token_categories, token_label_style, token_pens
from app.widgets.matrix_plot import MatrixPlot
from app.widgets.plot_canvas import PlotCanvas

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

ANIMATION_MS = 350
TURN_TITLES = (
    "angle between h\u2097\u208b\u2081 and h\u2097",
    "cosine similarity, l\u22121 \u2192 l",
)
AVERAGING = (
    "Per token first, then averaged over the sentence. all tokens: the mean over all T tokens, "
    "[CLS] and [SEP] included (as Lan et al. 2020, Figure 1). words only: the mean over the "
    "other tokens. The angle is the mean of each token's angle, degrees(arccos(cos)), not the "
    "angle of the mean cosine."
)
PLAY_STEP_MS = 700
OWN_RANGE_RATIO = 3.0  # embedding and layer norm ranges this far apart: each layer to its own
LABEL_ANCHORS = ((0.5, 1.3), (0.5, -0.3), (-0.15, 0.5), (1.15, 0.5))  # above, below, right, left
MAX_POINT_LABELS = 64  # beyond this many tokens only the special ones are named (hover for text)


def range_ratio(norms: np.ndarray) -> float:
    """How many times wider one colour range over all rows is than the layers' own range (rows
    1..L): ALBERT's small embedding norms (row 0) stretch it until the layers are one colour.
    Ranges below a thousandth of the largest norm count as that much (rounding noise)."""
    floor = 1e-3 * max(float(np.abs(norms).max()), 1e-9)
    layers = norms[1:] if len(norms) > 1 else norms
    return max(float(np.ptp(norms)), floor) / max(float(np.ptp(layers)), floor)


class LayerOutputs(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.analysis: ProbeAnalysis | None = None
        self.layer = 0  # PCA layer the slider points at
        self._from_layer = 0
        self.positions: np.ndarray | None = None  # (T, 2) points on screen

        # left: norms heatmap; middle: transition curves
        self.norms_canvas = PlotCanvas()
        self.norms = MatrixPlot(
            colormap="viridis",
            interactive=False,
            max_label_px=70,
            title="hidden-state L2 norm",
        )
        self.norms_canvas.addItem(self.norms)
        self.norms_canvas.apply_palette()
        self.norms_canvas.setToolTip(
            "L2 norm of each token's hidden-state vector (the output of the layer, "
            "hidden_size numbers); row emb is the embedding output. No physical unit: the "
            "model's own scale, comparable within one model only."
        )
        self.curves_canvas = PlotCanvas()
        self.l2_plot = self.curves_canvas.addPlot(
            row=0, col=0, title="L2 distance, layer l\u22121 \u2192 l"
        )
        self.turn_plot = self.curves_canvas.addPlot(row=1, col=0, title=TURN_TITLES[0])
        self.cos_plot = self.turn_plot  # the cosine is the second plot's other mode
        for plot in (self.l2_plot, self.turn_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMouseEnabled(x=False, y=False)
        self.turn_plot.setXLink(self.l2_plot)
        self.turn_plot.setLabel("bottom", "layer l")
        self.l2_plot.setLabel("left", "\u2016h\u2097 \u2212 h\u2097\u208b\u2081\u2016")
        self.turn_plot.setLabel("left", "degrees")
        self.turn_box = QComboBox()
        self.turn_box.addItems(["angle (degrees)", "cosine similarity"])
        self.turn_box.setToolTip(
            "Second plot: the angle between a token's input and output of each layer, in "
            "degrees (the ALBERT paper's Figure 1, right), or the cosine of that angle"
        )
        pen_a, pen_b, _ = segment_pens(self.palette())
        # a key above the curves instead of a legend that would sit on them
        self.curves_key = QLabel(
            f'<span style="color:{pen_a.name()}">\u2501\u25cf\u2501 all tokens</span>'
            f'&nbsp;&nbsp;<span style="color:{pen_b.name()}">\u2505\u2505 words only</span>'
        )
        self.curves_key.setToolTip(AVERAGING)
        self.curves_canvas.setToolTip(AVERAGING)
        self.curves_key.setAlignment(Qt.AlignmentFlag.AlignCenter)
        key_row = QHBoxLayout()
        key_row.setContentsMargins(0, 0, 0, 0)
        key_row.addWidget(self.curves_key, 1)
        key_row.addWidget(self.turn_box)
        curves = QWidget()
        curves_layout = QVBoxLayout(curves)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.setSpacing(0)
        curves_layout.addLayout(key_row)
        curves_layout.addWidget(self.curves_canvas, 1)

        def all_tokens(plot):
            return plot.plot(
                [], pen=pg.mkPen(pen_a, width=2), symbol="o", symbolSize=6, symbolBrush=pen_a
            )

        def words_only(plot):
            return plot.plot([], pen=pg.mkPen(pen_b, width=2, style=Qt.PenStyle.DashLine))

        self.l2_all, self.l2_words = all_tokens(self.l2_plot), words_only(self.l2_plot)
        self.angle_all, self.angle_words = all_tokens(self.turn_plot), words_only(self.turn_plot)
        self.cos_all, self.cos_words = all_tokens(self.turn_plot), words_only(self.turn_plot)
        self.curves_canvas.apply_palette()
        self._on_turn_mode(0)

        # right: PCA scatter with a layer slider
        self.pca_canvas = PlotCanvas()
        self.pca_plot = self.pca_canvas.addPlot(title="PCA of the tokens")
        self.pca_plot.setMenuEnabled(False)
        self.pca_plot.hideButtons()
        self.pca_plot.showGrid(x=True, y=True, alpha=0.2)
        self.pca_plot.setLabel("bottom", "PC1")
        self.pca_plot.setLabel("left", "PC2")
        # one scatter per token group (A, B, special, [MASK]): one brush each keeps redraws cheap
        self.scatters = [
            pg.ScatterPlotItem(size=10, pxMode=True, hoverable=True, tip=self._tip)
            for _ in range(4)
        ]
        for scatter in self.scatters:
            self.pca_plot.addItem(scatter)
        self.labels: list[pg.TextItem] = []  # the visible token labels of the scatter
        self._label_pool: list[pg.TextItem] = []
        self._labelled: list[int] = []  # token index of each visible label
        self.pca_canvas.apply_palette()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.setMaximum(0)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setToolTip("Layer of the PCA (0 = embeddings)")
        self.layer_label = QLabel("layer 0")
        self.layer_label.setMinimumWidth(70)
        self.play_button = QToolButton()
        self.play_button.setText("\u25b6")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play through the layers")
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.play_button)
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.layer_label)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.pca_canvas, 1)
        right_layout.addLayout(slider_row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.norms_per_layer = QCheckBox("each layer to its own range")
        self.norms_per_layer.setToolTip(
            "Colour each layer's norms from its own smallest to its largest: the layers of a "
            "model whose norms differ a lot between layers (ALBERT) are otherwise one colour. "
            "On by default when the embedding row would stretch one shared range more than "
            f"{OWN_RANGE_RATIO:g}\u00d7 beyond the layers' own, until you choose."
        )
        self.norms_chosen = False  # the user ticked or cleared the box: no more automatic choice
        norms = QWidget()
        norms_layout = QVBoxLayout(norms)
        norms_layout.setContentsMargins(0, 0, 0, 0)
        norms_layout.setSpacing(0)
        norms_layout.addWidget(self.norms_per_layer)
        norms_layout.addWidget(self.norms_canvas, 1)
        splitter.addWidget(norms)
        splitter.addWidget(curves)
        splitter.addWidget(right)
        for i in range(3):
            splitter.setStretchFactor(i, 1)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.animation = QVariantAnimation(self)
        self.animation.setDuration(ANIMATION_MS)
        self.animation.setEasingCurve(QEasingCurve.Type.InOutCubic)
        self.animation.setStartValue(0.0)
        self.animation.setEndValue(1.0)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_STEP_MS)

        state.probed.connect(self._on_probed)
        self.pca_plot.getViewBox().sigResized.connect(self._declutter)
        self.slider.valueChanged.connect(self._on_slider_moved)
        self.animation.valueChanged.connect(self._on_animation_step)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.play_timer.timeout.connect(self._on_play_tick)
        self.turn_box.currentIndexChanged.connect(self._on_turn_mode)
        self.norms_per_layer.toggled.connect(self._draw_norms)
        self.norms_per_layer.clicked.connect(self._on_norms_chosen)
        if state.analysis is not None:  # built after a probe: draw it now
            self._on_probed(state.analysis)

    # -- data --------------------------------------------------------------------------------
    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        first = self.analysis is None
        self.analysis = analysis
        result, stats = analysis.result, analysis.layers
        n_layers = stats.norms.shape[0] - 1
        labels, colors, bold = token_label_style(result, self.palette())
        self.norms.set_labels(
            ["emb"] + [f"L{i + 1}" for i in range(n_layers)], labels, None, colors, None, bold
        )
        if not self.norms_chosen:
            self.norms_per_layer.blockSignals(True)
            self.norms_per_layer.setChecked(range_ratio(stats.norms) > OWN_RANGE_RATIO)
            self.norms_per_layer.blockSignals(False)
        self._draw_norms()
        x = np.arange(1, n_layers + 1)
        self.l2_all.setData(x, stats.l2_mean)
        self.l2_words.setData(x, stats.l2_mean_words)
        self.cos_all.setData(x, stats.cosine_mean)
        self.cos_words.setData(x, stats.cosine_mean_words)
        self.angle_all.setData(x, stats.angle_mean_deg)
        self.angle_words.setData(x, stats.angle_mean_deg_words)
        ticks = [[(int(i), str(int(i))) for i in x]]
        for plot in (self.l2_plot, self.turn_plot):
            plot.getAxis("bottom").setTicks(ticks)
            plot.setXRange(0.7, n_layers + 0.3, padding=0)
            plot.enableAutoRange(axis="y")

        pens = token_pens(self.palette())
        self._groups = token_categories(result)
        self._names = np.array(
            [f"#{i} {tok.text}" for i, tok in enumerate(result.tokens)], dtype=object
        )
        outline = pg.mkPen(QColor(0, 0, 0, 90))
        for scatter, color in zip(self.scatters, pens, strict=True):
            scatter.setBrush(pg.mkBrush(color))
            scatter.setPen(outline)
        tokens = result.tokens
        if len(tokens) <= MAX_POINT_LABELS:
            self._labelled = list(range(len(tokens)))
        else:  # a crowd: name only the special tokens ([CLS], [SEP], [MASK]); hover for the rest
            named = self._groups >= 2  # special tokens and [MASK] (by id)
            self._labelled = [i for i in range(len(tokens)) if named[i]]
        shown = len(self._labelled)
        while len(self._label_pool) < shown:  # text items are reused from one sentence to the next
            item = pg.TextItem("", anchor=(0.5, 1.3))
            item.follow_theme = True
            item.setColor(self.palette().color(self.palette().ColorRole.WindowText))
            self.pca_plot.addItem(item)
            self._label_pool.append(item)
        for i, item in enumerate(self._label_pool):
            item.setVisible(i < shown)
            if i < shown:
                item.setText(display_token(tokens[self._labelled[i]].text))
        self.labels = self._label_pool[:shown]
        self.slider.blockSignals(True)
        self.slider.setMaximum(n_layers)
        self.layer = n_layers if first else min(self.layer, n_layers)  # start at the last layer
        self.slider.setValue(self.layer)
        self.slider.blockSignals(False)
        self.animation.stop()
        self._from_layer = self.layer
        self._place(analysis.pca[self.layer], self.layer, self.layer, 1.0)

    def _draw_norms(self, *_args) -> None:
        if self.analysis is None:
            return
        norms = self.analysis.layers.norms  # (L+1, T)
        if self.norms_per_layer.isChecked():
            low = norms.min(axis=1, keepdims=True)
            span = np.maximum(norms.max(axis=1, keepdims=True) - low, 1e-6)
            self.norms.set_matrix((norms - low) / span, levels=(0.0, 1.0))
            ratio = range_ratio(norms)
            why = (
                ""
                if self.norms_chosen
                else f" (auto: emb row stretches one scale {ratio:.0f}\u00d7)"
            )
            self.norms.setTitle(f"hidden-state L2 norm \u00b7 each layer to its own range{why}")
            return
        low, high = float(norms.min()), float(norms.max())
        self.norms.set_matrix(norms, levels=(low, max(high, low + 1e-3)))
        self.norms.setTitle("hidden-state L2 norm")

    @Slot(bool)
    def _on_norms_chosen(self, _checked: bool) -> None:
        self.norms_chosen = True
        self._draw_norms()

    @Slot(int)
    def _on_turn_mode(self, mode: int) -> None:
        """Angle in degrees (mode 0) or cosine similarity (mode 1) in the second plot."""
        for item in (self.angle_all, self.angle_words):
            item.setVisible(mode == 0)
        for item in (self.cos_all, self.cos_words):
            item.setVisible(mode == 1)
        self.turn_plot.setTitle(TURN_TITLES[mode])
        self.turn_plot.setLabel("left", "degrees" if mode == 0 else "cosine")
        self.turn_plot.enableAutoRange(axis="y")
        self.curves_canvas.apply_palette()

    def _tip(self, x: float, y: float, data: object) -> str:
        return str(data)

    # -- PCA animation -------------------------------------------------------------------------
    @Slot(int)
    def _on_slider_moved(self, value: int) -> None:
        self.animate_to(value)

    def animate_to(self, layer: int) -> None:
        """Glide the scatter from where it is now to ``layer``'s projection."""
        if self.analysis is None:
            return
        self._from_layer = self.layer
        self.layer = layer
        self._start_positions = (
            self.positions.copy() if self.positions is not None else self.analysis.pca[layer]
        )
        self.animation.stop()
        self.animation.start()

    @Slot(object)
    def _on_animation_step(self, value: object) -> None:
        if self.analysis is None:
            return
        t = float(value)
        target = self.analysis.pca[self.layer]
        start = self._start_positions
        self._place(start + (target - start) * t, self._from_layer, self.layer, t)

    def _place(self, positions: np.ndarray, from_layer: int, to_layer: int, t: float) -> None:
        analysis = self.analysis
        self.positions = np.asarray(positions, dtype=np.float32)
        for group, scatter in enumerate(self.scatters):
            mask = self._groups == group
            scatter.setData(
                pos=self.positions[mask],
                data=self._names[mask],
                brush=scatter.opts["brush"],
                pen=scatter.opts["pen"],
            )
        for item, (x, y) in zip(self.labels, self.positions[self._labelled], strict=True):
            item.setPos(float(x), float(y))
        # glide the axis ranges too, so the picture does not jump between layers
        lo = self._bounds(from_layer)[0] * (1 - t) + self._bounds(to_layer)[0] * t
        hi = self._bounds(from_layer)[1] * (1 - t) + self._bounds(to_layer)[1] * t
        self.pca_plot.setRange(
            xRange=(float(lo[0]), float(hi[0])), yRange=(float(lo[1]), float(hi[1])), padding=0.18
        )
        self._declutter()
        layer = to_layer if t >= 0.5 else from_layer
        name = "embeddings" if layer == 0 else f"layer {layer}"
        variance = analysis.pca_variance[layer]
        self.pca_plot.setTitle(f"PCA of the tokens \u2014 {name}")
        self.pca_plot.setLabel("bottom", f"PC1 ({variance[0]:.0%} of variance)")
        self.pca_plot.setLabel("left", f"PC2 ({variance[1]:.0%})")
        self.layer_label.setText(name)

    def _declutter(self, *_args) -> None:
        """Place each token label above, below, right or left of its point, wherever it does
        not sit on a label already placed (special tokens first), else hide it: close points
        must not pile their labels into an unreadable heap; hover names them all."""
        if not self.labels or self.positions is None:
            return
        self.pca_plot.getViewBox().updateMatrix()  # the range just set, not the last painted
        order = sorted(range(len(self.labels)), key=lambda i: self._groups[self._labelled[i]] < 2)
        placed = []  # scene rectangles of the labels kept
        for i in order:
            item = self.labels[i]
            for anchor in LABEL_ANCHORS:
                item.setAnchor(anchor)
                item.updateTransform(force=True)  # a hidden label's transform is never updated
                rect = item.sceneBoundingRect().adjusted(-1, -1, 1, 1)
                if not any(rect.intersects(other) for other in placed):
                    placed.append(rect)
                    item.setVisible(True)
                    break
            else:
                item.setVisible(False)

    def _bounds(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        points = self.analysis.pca[layer]
        return points.min(axis=0), points.max(axis=0)

    @Slot(bool)
    def _on_play_toggled(self, playing: bool) -> None:
        self.play_button.setText("\u23f8" if playing else "\u25b6")
        if playing:
            if self.slider.value() == self.slider.maximum():
                self.slider.setValue(0)
            self.play_timer.start()
        else:
            self.play_timer.stop()

    @Slot()
    def _on_play_tick(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
            return
        self.slider.setValue(self.slider.value() + 1)
