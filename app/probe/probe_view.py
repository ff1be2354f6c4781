"""The Probe tab: sentence boxes, token strip, and the attention and layer views as docks.

Enter in either box (or the Probe button) asks the state for a probe; the views update when the
result arrives. The panels are dock widgets inside the tab, so they can be rearranged, tabbed,
floated or hidden (View menu); their layout is remembered between runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSize, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDockWidget,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from app.probe.masked_words import MaskedWords
from app.probe.state import AppState
from app.probe.token_strip import TokenStrip
from app.widgets.dim_overlay import DimOverlay
from app.widgets.sentence_verdict import SentenceVerdict

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

NEWCOMER_HINT = (
    "New here? Type a sentence, press Enter \u00b7 click a head in the Head grid \u00b7 "
    "right-click a token to mask it \u00b7 try the Compare tab"
)
DEFAULT_SENTENCE = "the [MASK] of the lord came upon him ."
PANELS = (  # name, title, where
    ("grid", "Head grid", Qt.DockWidgetArea.RightDockWidgetArea),
    ("masked", "Masked words", Qt.DockWidgetArea.RightDockWidgetArea),
    ("focus", "Token focus", Qt.DockWidgetArea.BottomDockWidgetArea),
    ("layers", "Layer outputs", Qt.DockWidgetArea.BottomDockWidgetArea),
    ("statistics", "Head statistics", Qt.DockWidgetArea.BottomDockWidgetArea),
)
# The smallest size at which each panel is still readable (every grid, bar and axis title
# visible): docks never shrink below it, and a saved layout that would is discarded.
MIN_SIZES = {
    "heatmap": QSize(340, 230),
    "grid": QSize(220, 180),
    "masked": QSize(220, 150),
    "focus": QSize(240, 200),
    "layers": QSize(480, 200),
    "statistics": QSize(420, 200),
}
NARROW_WIDTH = 1500
PLOT_VIEWS = ("heatmap", "grid", "statistics", "focus", "layers")  # the pyqtgraph views
FIRST_VIEWS = ("heatmap", "grid")  # with Masked words (plain Qt): what a first probe shows
STRIP_MAX_HEIGHT = (
    66  # two rows of token chips  # below this window width the bottom panels share one tab group
)


def cramped_controls(panel: QWidget) -> list[str]:
    """The panel's labels, buttons and choosers too narrow for their text (a squeezed
    "Colours" reads "Colour"): a panel can hold its minimum size while its controls do not."""
    cramped = []
    for label in panel.findChildren(QLabel):
        shown = label.isVisibleTo(panel) and not label.wordWrap() and label.text()
        if shown and label.width() < label.minimumSizeHint().width():
            cramped.append(label.text())
    for kind in (QAbstractButton, QComboBox):
        for control in panel.findChildren(kind):
            if not control.isVisibleTo(panel):
                continue
            text = control.currentText() if isinstance(control, QComboBox) else control.text()
            metrics = control.fontMetrics()
            # the text, and a square for the check box's box or the chooser's arrow
            if text and control.width() < metrics.horizontalAdvance(text) + metrics.height():
                cramped.append(text)
    return cramped


class HintLabel(QLabel):
    """One line of text, elided to the room it gets (the full text in its tooltip), never
    widening its parent."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(text, parent)
        self.full_text = text
        self.setToolTip(text)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setStyleSheet("QLabel { color: palette(placeholder-text); }")

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        elided = self.fontMetrics().elidedText(
            self.full_text, Qt.TextElideMode.ElideRight, max(0, self.width() - 4)
        )
        self.setText(elided)


class ProbeView(QWidget):
    plots_created = Signal()  # the pyqtgraph views replaced their "loading" labels

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
        self.verdict = SentenceVerdict()  # the NSP/SOP head's verdict on a pair
        inputs.addWidget(self.verdict, 1, 3)
        inputs.setColumnStretch(1, 1)

        self.strip = TokenStrip(state)
        self.strip_area = QScrollArea()
        self.strip_area.setWidget(self.strip)
        self.strip_area.setWidgetResizable(True)
        self.strip_area.setFrameShape(QFrame.Shape.NoFrame)
        self.strip_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip_area.setFixedHeight(34)

        self.masked = MaskedWords(state)
        self.masked.setMinimumSize(MIN_SIZES["masked"])
        self.heatmap = self.grid = self.focus = self.statistics = self.layers = None
        self.area = QMainWindow()
        self.area.setWindowFlags(Qt.WindowType.Widget)
        self.area.setDockNestingEnabled(True)
        self.area.setCentralWidget(self._loading_label("heatmap"))
        self.docks: dict[str, QDockWidget] = {}
        for name, title, where in PANELS:
            dock = QDockWidget(title, self.area)
            dock.setObjectName(f"probe-{name}")
            dock.setWidget(self.masked if name == "masked" else self._loading_label(name))
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
        # one line for a newcomer, gone once they probe, click a token or open a head; the
        # window puts it in its status bar, so the panels lose no height for it
        self.hint = HintLabel(NEWCOMER_HINT)
        layout.addWidget(self.strip_area)
        # shown while the panels hold the result of an earlier input than the boxes now ask for
        self.stale_banner = QLabel("")
        self.stale_banner.setWordWrap(True)
        self.stale_banner.setStyleSheet(
            "QLabel { background: #f6d365; color: #3a2c00; padding: 3px 8px; border-radius: 3px; }"
        )
        self.stale_banner.setVisible(False)
        layout.addWidget(self.stale_banner)
        layout.addWidget(self.area, 1)
        self.dimmer = DimOverlay(self.area)  # over the panels while they are out of date

        self.sentence.returnPressed.connect(self._on_submitted)
        self.pair.returnPressed.connect(self._on_submitted)
        self.probe_button.clicked.connect(self._on_submitted)
        self.strip.mask_requested.connect(state.request_mask)
        self.strip.token_selected.connect(self.dismiss_hint)
        self.strip.laid_out.connect(self._on_strip_laid_out)
        state.probe_requested.connect(self._on_probe_requested)
        state.probed.connect(self._on_probed)
        state.probe_failed.connect(self._on_probe_failed)

    @property
    def plots_built(self) -> bool:
        return all(getattr(self, name) is not None for name in PLOT_VIEWS)

    def _loading_label(self, name: str) -> QLabel:
        label = QLabel("preparing plots\u2026")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setEnabled(False)
        label.setMinimumSize(MIN_SIZES[name])  # the layout is settled before the plots exist
        return label

    def panels(self) -> dict[str, QWidget]:
        """Every panel's widget by name, the central heatmap included."""
        widgets = {name: dock.widget() for name, dock in self.docks.items()}
        return {"heatmap": self.area.centralWidget(), **widgets}

    def build_plots(self, names: tuple[str, ...] = PLOT_VIEWS) -> None:
        """Create the pyqtgraph views named in ``names`` (each once) in place of their
        "preparing plots" labels. Deferred by the launcher until the window is on screen, and
        split there: the heatmap and head grid before the first probe, the rest right after
        it (every view draws ``state.analysis`` when it is built)."""
        from app.probe.attention_heatmap import AttentionHeatmap
        from app.probe.head_grid import HeadGrid
        from app.probe.head_statistics import HeadStatistics
        from app.probe.layer_outputs import LayerOutputs
        from app.probe.token_focus import TokenFocus

        classes = {
            "heatmap": AttentionHeatmap,
            "grid": HeadGrid,
            "statistics": HeadStatistics,
            "focus": TokenFocus,
            "layers": LayerOutputs,
        }
        new = [name for name in PLOT_VIEWS if name in names and getattr(self, name) is None]
        if not new:
            return
        for name in new:
            view = classes[name](self.state)
            view.setMinimumSize(MIN_SIZES[name])
            setattr(self, name, view)
            if name == "heatmap":
                old = self.area.centralWidget()
                self.area.setCentralWidget(view)
            else:
                old = self.docks[name].widget()
                self.docks[name].setWidget(view)
            old.deleteLater()
        if "heatmap" in new:
            self.strip.span_selected.connect(self.heatmap.zoom_to)
            self.strip.token_selected.connect(self.heatmap.outline_token)
            self.heatmap.outline_token(self.strip.selected_index)
        if "grid" in new:
            self.grid.selected.connect(self.dismiss_hint)
        if self.heatmap is not None and self.grid is not None and {"heatmap", "grid"} & set(new):
            self.grid.selected.connect(self.heatmap.select)
            self.heatmap.selected.connect(self.grid.highlight)
            self.heatmap.scale_changed.connect(self.grid.set_display)
            self.grid.set_display(self.heatmap.scale, self.heatmap.word_level)
            self.grid.highlight(self.heatmap.layer, self.heatmap.head)
        if self.heatmap is not None and self.focus is not None and {"heatmap", "focus"} & set(new):
            self.strip.token_selected.connect(self.focus.show_token)
            self.heatmap.scale_changed.connect(self.focus.set_display)
            self.focus.set_display(self.heatmap.scale, self.heatmap.word_level)
            if self.strip.selected_index is not None:
                self.focus.show_token(self.strip.selected_index)
        self.plots_created.emit()

    def arrange(self, window_width: int, window_height: int) -> None:
        """Give the docks sensible sizes for a main window of the given size: heatmap | head
        grid | masked words on top, token focus | layer outputs (tabbed with head statistics)
        below; below NARROW_WIDTH the three bottom panels share one tab group, so each gets
        the whole width instead of a third of it. Sizes come from the area itself once it is
        on screen (the window's own size includes toolbars and the sidebar)."""
        narrow = window_width < NARROW_WIDTH
        if narrow:
            self.area.tabifyDockWidget(self.docks["layers"], self.docks["focus"])
            self.docks["layers"].raise_()
        if self.area.isVisible() and self.area.width() > 100:
            width, height = self.area.width(), self.area.height()
        else:
            width, height = max(600, window_width - 340), max(400, window_height - 170)
        bottom = max(MIN_SIZES["layers"].height() + 30, int(height * 0.44))
        self.area.resizeDocks([self.docks["focus"]], [bottom], Qt.Orientation.Vertical)
        grid = max(MIN_SIZES["grid"].width(), int(width * 0.3))
        masked = max(MIN_SIZES["masked"].width(), int(width * 0.22))
        self.area.resizeDocks(
            [self.docks["grid"], self.docks["masked"]], [grid, masked], Qt.Orientation.Horizontal
        )
        if not narrow:
            self.area.resizeDocks(
                [self.docks["focus"], self.docks["layers"]],
                [int(width * 0.28), int(width * 0.72)],
                Qt.Orientation.Horizontal,
            )
        self._hide_stale_tab_bars()

    def tab_groups(self) -> list[set[str]]:
        """The titles of each group of tabbed panels, as the docks say they are grouped now."""
        groups = []
        for dock in self.docks.values():
            group = {
                dock.windowTitle(),
                *(d.windowTitle() for d in self.area.tabifiedDockWidgets(dock)),
            }
            if len(group) > 1 and group not in groups:
                groups.append(group)
        return groups

    def _hide_stale_tab_bars(self) -> None:
        """Hide the tab bars that restoring the default layout and regrouping the bottom
        panels left behind: Qt keeps them on screen, with their old tabs, beside the bar it
        made last for the group, until a later layout pass ("Layer outputs | Head statistics"
        twice at start-up)."""
        groups, shown = self.tab_groups(), []
        for bar in reversed(self.area.findChildren(QTabBar)):  # the newest bar first
            tabs = {bar.tabText(i) for i in range(bar.count())}
            if not bar.isVisibleTo(self.area):
                continue
            if tabs in groups and tabs not in shown:
                shown.append(tabs)
            else:
                bar.hide()

    def undersized_panels(self) -> list[str]:
        """Panels on screen smaller than their readable minimum, or with controls too narrow
        for their text, at the size they have now (tabbed-away ones don't count)."""
        small = []
        for name, widget in self.panels().items():
            dock = self.docks.get(name)
            if dock is not None and (dock.isFloating() or not dock.isVisible()):
                continue
            if not widget.isVisible():
                continue
            wanted = MIN_SIZES[name]
            too_small = widget.width() < wanted.width() or widget.height() < wanted.height()
            if too_small or cramped_controls(widget):
                small.append(name)
        return small

    def save_layout(self) -> QByteArray:
        return self.area.saveState()

    def restore_layout(self, state: QByteArray) -> bool:
        return bool(state) and self.area.restoreState(state)

    @Slot(int)
    def _on_strip_laid_out(self, height: int) -> None:
        # up to two rows of chips, then scroll: a long input must not push the panels down
        two_rows = int(2 * self.strip.row_height()) + 2
        self.strip_area.setFixedHeight(max(34, min(height + 4, two_rows)))

    @Slot()
    def dismiss_hint(self, *_args) -> None:
        """The newcomer has acted: give the hint's line to the panels."""
        self.hint.setVisible(False)

    @Slot()
    def _on_submitted(self) -> None:
        self.dismiss_hint()
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
        self.verdict.show_results(result)
        if self.heatmap is not None:  # the strip has carried its selection to the new tokens
            self.heatmap.focus_token = self.strip.selected_index
        self.set_stale(None)

    @property
    def is_stale(self) -> bool:
        return self.stale_banner.isVisibleTo(self)

    def set_stale(self, message: str | None) -> None:
        """Mark the panels out of date (dimmed, with a banner saying why), or clear the mark."""
        if message is None:
            self.stale_banner.setVisible(False)
            self.dimmer.cover(False)
            return
        analysis = self.state.analysis
        shown = f"{analysis.result.text!r}" if analysis is not None else "nothing"
        self.stale_banner.setText(
            f"\u26a0 Out of date: the last probe failed ({message}). The panels still show "
            f"{shown}; they update with the next probe that succeeds."
        )
        self.stale_banner.setVisible(True)
        self.dimmer.cover(True)

    @Slot(str)
    def _on_probe_failed(self, message: str) -> None:
        self.status.setText(message if len(message) < 60 else message[:57] + "\u2026")
        self.status.setToolTip(message)
        if self.state.analysis is not None:
            self.set_stale(message)
