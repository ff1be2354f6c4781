"""The Probe tab: sentence boxes, token strip, and the attention and layer views as docks.

Enter in either box (or the Probe button) asks the state for a probe; the views update when the
result arrives. The panels are dock widgets inside the tab, so they can be rearranged, tabbed,
floated or hidden (View menu); their layout is remembered between runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt, Slot
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.state import AppState
from app.views.masked_words import MaskedWords
from app.views.token_strip import TokenStrip

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

DEFAULT_SENTENCE = "the [MASK] of the lord came upon him ."
PANELS = (  # name, title, where
    ("grid", "Head grid", Qt.DockWidgetArea.RightDockWidgetArea),
    ("masked", "Masked words", Qt.DockWidgetArea.RightDockWidgetArea),
    ("focus", "Token focus", Qt.DockWidgetArea.BottomDockWidgetArea),
    ("layers", "Layer outputs", Qt.DockWidgetArea.BottomDockWidgetArea),
    ("statistics", "Head statistics", Qt.DockWidgetArea.BottomDockWidgetArea),
)


class ProbeView(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.sentence = QLineEdit()
        self.sentence.setPlaceholderText(
            "Type a sentence and press Enter \u2014 write [MASK] for a word to predict"
        )
        self.sentence.setClearButtonEnabled(True)
        self.pair = QLineEdit()
        self.pair.setPlaceholderText("Optional second sentence (a pair: [CLS] A [SEP] B [SEP])")
        self.pair.setClearButtonEnabled(True)
        self.probe_button = QPushButton("Probe")
        self.probe_button.setToolTip("Run the sentence through the model (Enter, or Ctrl+Return)")
        self.status = QLabel("")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        inputs = QGridLayout()
        inputs.addWidget(QLabel("Sentence"), 0, 0)
        inputs.addWidget(self.sentence, 0, 1)
        inputs.addWidget(self.probe_button, 0, 2)
        inputs.addWidget(QLabel("Pair"), 1, 0)
        inputs.addWidget(self.pair, 1, 1)
        inputs.addWidget(self.status, 1, 2)
        inputs.setColumnStretch(1, 1)

        self.strip = TokenStrip(state)
        self.strip_area = QScrollArea()
        self.strip_area.setWidget(self.strip)
        self.strip_area.setWidgetResizable(True)
        self.strip_area.setFrameShape(QFrame.Shape.NoFrame)
        self.strip_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip_area.setFixedHeight(34)

        self.masked = MaskedWords(state)
        self.heatmap = self.grid = self.focus = self.statistics = self.layers = None
        self.area = QMainWindow()
        self.area.setWindowFlags(Qt.WindowType.Widget)
        self.area.setDockNestingEnabled(True)
        self.area.setCentralWidget(self._loading_label())
        self.docks: dict[str, QDockWidget] = {}
        for name, title, where in PANELS:
            dock = QDockWidget(title, self.area)
            dock.setObjectName(f"probe-{name}")
            dock.setWidget(self.masked if name == "masked" else self._loading_label())
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                | QDockWidget.DockWidgetFeature.DockWidgetClosable
            )
            self.area.addDockWidget(where, dock)
            self.docks[name] = dock
        self.area.splitDockWidget(
            self.docks["grid"], self.docks["masked"], Qt.Orientation.Horizontal
        )
        self.area.splitDockWidget(
            self.docks["focus"], self.docks["layers"], Qt.Orientation.Horizontal
        )
        self.area.tabifyDockWidget(self.docks["layers"], self.docks["statistics"])
        self.docks["layers"].raise_()
        self.default_layout = self.area.saveState()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(inputs)
        layout.addWidget(self.strip_area)
        layout.addWidget(self.area, 1)

        self.sentence.returnPressed.connect(self._on_submitted)
        self.pair.returnPressed.connect(self._on_submitted)
        self.probe_button.clicked.connect(self._on_submitted)
        self.strip.mask_requested.connect(state.request_mask)
        self.strip.laid_out.connect(self._on_strip_laid_out)
        state.probe_requested.connect(self._on_probe_requested)
        state.probed.connect(self._on_probed)
        state.probe_failed.connect(self._on_probe_failed)

    @property
    def plots_built(self) -> bool:
        return self.heatmap is not None

    def _loading_label(self) -> QLabel:
        label = QLabel("preparing plots\u2026")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setEnabled(False)
        return label

    def build_plots(self) -> None:
        """Create the pyqtgraph views. Deferred by the launcher until the window is on screen,
        because importing pyqtgraph takes most of a second."""
        if self.plots_built:
            return
        from app.views.attention_heatmap import AttentionHeatmap
        from app.views.head_grid import HeadGrid
        from app.views.head_statistics import HeadStatistics
        from app.views.layer_outputs import LayerOutputs
        from app.views.token_focus import TokenFocus

        state = self.state
        self.heatmap = AttentionHeatmap(state)
        self.grid = HeadGrid(state)
        self.statistics = HeadStatistics(state)
        self.focus = TokenFocus(state)
        self.layers = LayerOutputs(state)
        old = self.area.centralWidget()
        self.area.setCentralWidget(self.heatmap)
        old.deleteLater()
        for name, view in (
            ("grid", self.grid),
            ("statistics", self.statistics),
            ("focus", self.focus),
            ("layers", self.layers),
        ):
            old = self.docks[name].widget()
            self.docks[name].setWidget(view)
            old.deleteLater()
        self.strip.token_selected.connect(self.focus.show_token)
        self.grid.selected.connect(self.heatmap.select)
        self.heatmap.selected.connect(self.grid.highlight)
        self.grid.highlight(self.heatmap.layer, self.heatmap.head)  # each drew state.analysis

    def arrange(self, window_width: int, window_height: int) -> None:
        """Give the docks sensible sizes for a main window of the given size: heatmap | head
        grid | masked words on top, token focus | layer outputs below."""
        width, height = max(600, window_width - 340), max(400, window_height - 170)
        self.area.resizeDocks(
            [self.docks["grid"], self.docks["masked"]],
            [int(width * 0.33), int(width * 0.24)],
            Qt.Orientation.Horizontal,
        )
        self.area.resizeDocks([self.docks["focus"]], [int(height * 0.42)], Qt.Orientation.Vertical)
        self.area.resizeDocks(
            [self.docks["focus"], self.docks["layers"]],
            [int(width * 0.28), int(width * 0.72)],
            Qt.Orientation.Horizontal,
        )

    def save_layout(self) -> QByteArray:
        return self.area.saveState()

    def restore_layout(self, state: QByteArray) -> bool:
        return bool(state) and self.area.restoreState(state)

    @Slot(int)
    def _on_strip_laid_out(self, height: int) -> None:
        self.strip_area.setFixedHeight(max(34, min(height + 4, 100)))  # up to ~3 rows, then scroll

    @Slot()
    def _on_submitted(self) -> None:
        self.state.request_probe(self.sentence.text(), self.pair.text() or None)

    @Slot(int)
    def _on_probe_requested(self, _generation: int) -> None:
        self.status.setText("probing\u2026")

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        result = analysis.result
        extra = " (truncated)" if result.truncated else ""
        job = self.state.probe_job
        seconds = job.seconds if job is not None else 0.0  # engine time: probe + statistics
        self.status.setText(f"{len(result.tokens)} tokens{extra} \u00b7 {seconds * 1000:.0f} ms")
        self.status.setToolTip(f"{result.model_name}: {result.text!r}")

    @Slot(str)
    def _on_probe_failed(self, message: str) -> None:
        self.status.setText(message if len(message) < 60 else message[:57] + "\u2026")
        self.status.setToolTip(message)
