"""File -> Export: the probe result (JSON, CSV, NPZ), the Compare tab's comparison (JSON as
``compare --json``, CSV, an HTML report) and every plot and table of the tab on screen.

The probe result and the comparison are written on the engine thread (``AppState.export``,
``CompareSession.export``); plots render, and so are written, on the GUI thread. The folder
last exported to is remembered in ``QSettings``; failures open a dialog, successes say so in
the status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.compare.compare_view import CompareView
from app.probe.state import AppState
from app.status_bar import WindowStatus
from app.widgets.actions import make_action
from app.widgets.plot_export import export_all

EXPORT_FILTERS = "JSON (*.json);;CSV, one row per attention weight (*.csv);;NumPy arrays (*.npz)"
COMPARISON_FILTERS = (
    "HTML report (*.html);;JSON, as compare --json (*.json);;CSV, tidy rows (*.csv)"
)


class ExportActions(QObject):
    """The three export actions of ``window``, their dialogs and what they report."""

    def __init__(
        self,
        window: QWidget,
        settings: QSettings,
        state: AppState,
        compare: CompareView,
        roots: Callable[[], list[QWidget]],
        status: WindowStatus,
    ):
        super().__init__(window)
        self.window, self.settings, self.state = window, settings, state
        self.compare, self.roots, self.status = compare, roots, status
        self.probe = make_action(
            window,
            "&Export probe result\u2026",
            self.export_probe_dialog,
            "Ctrl+E",
            "Save the probed sentence's tokens, attention and predictions as JSON, CSV or NPZ",
        )
        self.probe.setEnabled(False)
        self.comparison = make_action(
            window,
            "Export &comparison\u2026",
            self.export_comparison_dialog,
            "Ctrl+Shift+E",
            "Save the Compare tab's comparison as JSON (as compare --json), CSV or an HTML report",
        )
        self.plots = make_action(
            window,
            "Export plots and &tables\u2026",
            self.export_plots_dialog,
            None,
            "Save every plot of the current tab as PNG and SVG and every table as CSV",
        )
        state.probed.connect(lambda _analysis: self.probe.setEnabled(True))
        state.current_changed.connect(self._on_current_changed)
        state.export_failed.connect(self._on_failed)
        compare.session.exported.connect(lambda _path: self._report(1))
        compare.session.export_failed.connect(self._on_failed)

    def _start(self, name: str) -> Path:
        return Path(str(self.settings.value("last_export_dir", Path.home()))) / name

    def _remember(self, path: str) -> None:
        self.settings.setValue("last_export_dir", str(Path(path).parent))

    @Slot()
    def export_probe_dialog(self) -> None:
        analysis = self.state.analysis
        if analysis is None:
            return
        stem = f"{analysis.result.model_name.split(' ')[0]}-probe"
        path, chosen = QFileDialog.getSaveFileName(
            self.window, "Export probe result", str(self._start(f"{stem}.json")), EXPORT_FILTERS
        )
        if not path:
            return
        if not Path(path).suffix:
            chosen = chosen.lower()
            path += ".csv" if "csv" in chosen else ".npz" if "npz" in chosen else ".json"
        self._remember(path)
        self.state.export(path)

    @Slot()
    def export_comparison_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self.window,
            "Export comparison",
            str(self._start("comparison.html")),
            COMPARISON_FILTERS,
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".json" if "json" in chosen.lower() else ".csv" if "csv" in chosen else ".html"
        self._remember(path)
        self.compare.export_comparison(path)

    @Slot()
    def export_plots_dialog(self) -> None:
        start = str(self.settings.value("last_export_dir", Path.home()))
        folder = QFileDialog.getExistingDirectory(self.window, "Export plots and tables to", start)
        if not folder:
            return
        self.settings.setValue("last_export_dir", folder)
        try:
            written = export_all(self.roots(), folder)
        except (OSError, ValueError) as err:
            self._on_failed(str(err))
            return
        self._report(len(written))

    def _report(self, count: int) -> None:
        self.status.show_message(f"exported {count} file{'s' if count != 1 else ''}")

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        if not self.state.entries.get(key):
            self.probe.setEnabled(False)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        QMessageBox.warning(self.window, "Export failed", message)
