"""The Compare tab: two models (default: the demo bert-mini and albert-mini; any two in the
list) probed with one sentence, side by side, and their cost.

* **Side by side**: both tokenizations aligned by characters, both attention heatmaps with one
  linked selection (layer by relative depth, head, focused token), the layer-transition curves
  (ALBERT paper, Figure 1) and per-layer head statistics of both in one plot each, and both
  models' guesses for the same [MASK].
* **Cost**: parameters, memory (predicted; measured on request), FLOPs and speed, B / A.
* **Calculator**: any configuration's parameters and memory; the ALBERT paper's ones.

Probing is an engine job per sentence ("newest wins", as in the Probe tab), asked of the
:class:`~app.compare.session.CompareSession`; everything shown is computed by ``core`` on the
engine thread and reaches the pages by the session's signals. The pages are built on first show
once the engine has started (:meth:`build`): their views call ``core``'s side-by-side helpers as
they draw, and ``core`` must never be imported on the GUI thread before the engine thread has
imported torch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.compare.calls import HTML_SUFFIXES
from app.compare.session import CompareSession
from app.probe.state import AppState
from app.widgets.sentence_verdict import SentenceVerdict

DEFAULT_COMPARE_SENTENCE = "the [MASK] of the lord came upon him , weeping bitterly ."
PAGES = ("side by side", "cost", "calculator")


def scrolling(page: QWidget) -> QScrollArea:
    """``page`` in a vertical scroll area: a short window scrolls it rather than squash its
    plots or push the window past the screen."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class CompareView(QWidget):
    built = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.session = CompareSession(state, self)
        self.box_a, self.box_b = QComboBox(), QComboBox()
        for box, tip in ((self.box_a, "Model A"), (self.box_b, "Model B (ratios are B / A)")):
            box.setToolTip(tip)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setMinimumWidth(160)
        self.swap_button = QPushButton("\u21c4")
        self.swap_button.setToolTip("Swap A and B")
        self.swap_button.setFixedWidth(34)
        self.sentence = QLineEdit()
        self.sentence.setPlaceholderText("A sentence for both models; [MASK] for a word to predict")
        self.sentence.setClearButtonEnabled(True)
        self.pair = QLineEdit()
        self.pair.setPlaceholderText("Optional second sentence")
        self.pair.setClearButtonEnabled(True)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Probe the sentence with both models (Enter)")
        self.status = QLabel("")
        inputs = QGridLayout()
        inputs.addWidget(QLabel("A"), 0, 0)
        inputs.addWidget(self.box_a, 0, 1)
        inputs.addWidget(self.swap_button, 0, 2)
        inputs.addWidget(QLabel("B"), 0, 3)
        inputs.addWidget(self.box_b, 0, 4)
        inputs.addWidget(QLabel("Sentence"), 0, 5)
        inputs.addWidget(self.sentence, 0, 6)
        inputs.addWidget(self.compare_button, 0, 7)
        inputs.addWidget(QLabel("Pair"), 1, 5)
        inputs.addWidget(self.pair, 1, 6)
        inputs.addWidget(self.status, 1, 0, 1, 5)
        self.verdict = SentenceVerdict()  # both models' NSP/SOP verdicts on a pair
        inputs.addWidget(self.verdict, 2, 0, 1, 8)  # its own row: long, and only for pairs
        inputs.addWidget(QLabel(""), 1, 7)
        inputs.setColumnStretch(6, 1)
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.strips = self.heatmaps = self.curves = self.heads = self.masked = None
        self.cost = self.calculator = None
        self._waiting = False  # for the engine to start before building
        for name in PAGES:
            label = QLabel("preparing\u2026")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.pages.addTab(label, name.capitalize())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(inputs)
        layout.addWidget(self.pages, 1)

        self._fill_boxes()
        self.sentence.returnPressed.connect(self._on_submitted)
        self.pair.returnPressed.connect(self._on_submitted)
        self.compare_button.clicked.connect(self._on_submitted)
        self.box_a.activated.connect(self._on_picked)
        self.box_b.activated.connect(self._on_picked)
        self.swap_button.clicked.connect(self._on_swap)
        state.models_changed.connect(self._fill_boxes)
        self.session.probe_requested.connect(self._on_probe_requested)
        self.session.probed.connect(self._on_probed)
        self.session.probe_failed.connect(self._on_probe_failed)

    @property
    def is_built(self) -> bool:
        return self.heatmaps is not None

    def build(self) -> None:
        """Create the plots, the cost panel and the calculator (once)."""
        if self.is_built:
            return
        from app.compare.aligned_token_strips import AlignedTokenStrips
        from app.compare.cost_panel import CostPanel
        from app.compare.head_summary_plot import HeadSummaryPlot
        from app.compare.paired_heatmaps import PairedHeatmaps
        from app.compare.paired_masked_words import PairedMaskedWords
        from app.compare.param_calculator import ParamCalculator
        from app.compare.transition_curves import TransitionCurves

        self.strips = AlignedTokenStrips()
        self.heatmaps = PairedHeatmaps()
        self.curves = TransitionCurves()
        self.heads = HeadSummaryPlot()
        self.masked = PairedMaskedWords()
        self.cost = CostPanel(self.session)
        self.calculator = ParamCalculator(self.session.calculator)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 4, 0, 0)
        side_layout.addWidget(self.strips)
        lower = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.curves, self.heads, self.masked):
            lower.addWidget(widget)
        lower.setSizes([380, 380, 360])
        upper = QSplitter(Qt.Orientation.Vertical)
        upper.addWidget(self.heatmaps)
        upper.addWidget(lower)
        upper.setSizes([430, 470])
        side_layout.addWidget(upper, 1)
        # below these heights the plots and tables would squash: the pages scroll instead
        side.setMinimumHeight(780)
        self.cost.setMinimumHeight(760)
        pages = (scrolling(side), scrolling(self.cost), scrolling(self.calculator))
        current = self.pages.currentIndex()
        for index, page in enumerate(pages):
            old = self.pages.widget(index)
            self.pages.removeTab(index)
            self.pages.insertTab(index, page, PAGES[index].capitalize())
            old.deleteLater()
        self.pages.setCurrentIndex(max(0, current))
        self.strips.token_pointed.connect(self._on_token_focused)  # hover and click
        self.heatmaps.token_focused.connect(self.strips.focus_token)
        self.calculator.added.connect(self._on_model_added)
        if self.session.bundle is not None:
            self._on_probed(self.session.bundle)
        if self.session.figures is not None:
            self.cost.show_figures(self.session.figures)
        self.built.emit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.state.info is None:  # core (torch) is still loading in the engine thread
            if not self._waiting:
                self._waiting = True
                self.state.started.connect(self._on_engine_started)
            return
        self._first_visit()

    @Slot(object)
    def _on_engine_started(self, _info) -> None:
        self.state.started.disconnect(self._on_engine_started)
        self._waiting = False
        if self.isVisible():
            self._first_visit()

    def _first_visit(self) -> None:
        """Build the pages (``core`` is imported by now) and compare the example."""
        self.build()
        if self.session.generation == 0:
            self.start()

    # -- models --------------------------------------------------------------------------------
    @Slot()
    def _fill_boxes(self) -> None:
        entries = list(self.state.entries.values())
        for box, key in ((self.box_a, self.session.key_a), (self.box_b, self.session.key_b)):
            box.blockSignals(True)
            box.clear()
            for entry in entries:
                box.addItem(entry.name, entry.key)
            box.setCurrentIndex(max(0, box.findData(key)))
            box.blockSignals(False)

    def set_models(self, key_a: str, key_b: str) -> None:
        self.session.set_models(key_a, key_b)
        self._fill_boxes()

    @Slot()
    def _on_picked(self, *_args) -> None:
        self.set_models(self.box_a.currentData(), self.box_b.currentData())

    @Slot()
    def _on_swap(self) -> None:
        self.set_models(self.session.key_b, self.session.key_a)

    @Slot(str)
    def _on_model_added(self, key: str) -> None:
        self._fill_boxes()
        self.status.setText(f"{self.state.entries[key].name} is in the model lists")

    # -- probing -------------------------------------------------------------------------------
    def start(self, text: str | None = None, pair: str | None = None) -> None:
        """Probe ``text`` (default: an example with a [MASK]) with both models."""
        self.sentence.setText(text or self.sentence.text() or DEFAULT_COMPARE_SENTENCE)
        self.pair.setText(pair or self.pair.text())
        self._on_submitted()

    @Slot()
    def _on_submitted(self) -> None:
        self.session.request_probe(self.sentence.text(), self.pair.text() or None)

    @Slot(int)
    def _on_probe_requested(self, _generation: int) -> None:
        self.status.setText("probing both\u2026")

    @Slot(object)
    def _on_probed(self, bundle) -> None:
        ra, rb = bundle.a.result, bundle.b.result
        self.verdict.show_results(ra, rb)
        self.status.setText(
            f"{len(ra.tokens)} and {len(rb.tokens)} tokens \u00b7 {bundle.seconds * 1000:.0f} ms"
        )
        if not self.is_built:
            return
        self.strips.set_bundle(bundle)
        self.heatmaps.set_bundle(bundle)
        self.curves.set_bundle(bundle)
        self.heads.set_bundle(bundle)
        self.masked.set_bundle(bundle)

    @Slot(str)
    def _on_probe_failed(self, message: str) -> None:
        self.status.setText(message if len(message) < 70 else message[:67] + "\u2026")
        self.status.setToolTip(message)

    @Slot(int, int)
    def _on_token_focused(self, side: int, index: int) -> None:
        if side < 0:  # the mouse left the strips with nothing clicked
            self.heatmaps.set_focus([], [])
            return
        partners = self.strips.partners(side, index)
        rows = ([index], partners) if side == 0 else (partners, [index])
        self.heatmaps.set_focus(*rows)

    # -- exports -------------------------------------------------------------------------------
    def plot_images(self) -> dict[str, bytes]:
        """PNG bytes of every plot of the tab, by caption (for the HTML report)."""
        from app.widgets.plot_export import plot_png

        self.build()
        captions = {
            "attention (linked layer and head)": self.heatmaps.canvas,
            "layer transitions (ALBERT paper, Figure 1)": self.curves.canvas,
            "head statistics per layer (Clark et al. 2019)": self.heads.canvas,
            "parameters and memory": self.cost.canvas,
        }
        return {caption: plot_png(canvas) for caption, canvas in captions.items()}

    def export_comparison(self, path: str | Path) -> None:
        """Write the comparison in the engine thread (``session.exported`` or
        ``export_failed``): ``.json`` (the schema of ``python -m core compare --json``),
        ``.csv`` (its tidy rows) or ``.html`` (a self-contained report with the plots, which
        render here)."""
        html = Path(path).suffix.lower() in HTML_SUFFIXES
        images = self.plot_images() if html and self.session.comparison is not None else None
        self.session.export(path, images)
