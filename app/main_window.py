"""The main window: menus, toolbar, status bar, the model sidebar and the Probe tab.

It wires user actions to :class:`app.probe.state.AppState` and shows what comes back: engine errors
in a dialog (loading, exporting) or in the status bar (probing), never as a crash. Geometry,
dock layout, theme, recent models and the last sentence live in ``QSettings``; the caller
passes the settings object so tests can use a private file.
"""

from __future__ import annotations

import html
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QToolBar,
    QWidget,
)

from app import theme
from app.compare.compare_view import CompareView
from app.models.model_card import ModelCard
from app.models.model_manager import ModelManager
from app.probe import calls as engine_calls
from app.probe.probe_view import DEFAULT_SENTENCE, ProbeView
from app.probe.state import AppState
from app.train.train_view import TrainView, train_history_path

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

MAX_RECENT = 8
MESSAGE_MS = 8000  # status-bar messages clear themselves after this long
SIDEBAR_TABS_WIDTH = 1400  # narrower windows tab the Models list with the Model card
TOOLBAR_MIN_HEIGHT = 800  # shorter windows hide the toolbar (its actions are in the menus)
MEMORY_POLL_MS = 2000
EXPORT_FILTERS = "JSON (*.json);;CSV, one row per attention weight (*.csv);;NumPy arrays (*.npz)"


def resident_memory() -> tuple[int, str]:
    """Resident memory of this process in bytes, and what the figure is ("RSS" or "peak")."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "RSS"
    except (OSError, ValueError, IndexError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), "peak"


def accelerator_memory(device: str) -> tuple[int, int] | None:
    """GPU memory on ``device`` in bytes: (allocated by tensors, reserved by torch's caching
    allocator, the part of ``nvidia-smi``'s figure that is ours less the CUDA context); None on
    CPU. Polled only for a model on a GPU, so torch is already imported by the engine thread."""
    import torch

    from core.device import memory_in_use, memory_reserved

    where = torch.device(device)
    allocated, reserved = memory_in_use(where), memory_reserved(where)
    if allocated is None or reserved is None:
        return None
    return allocated, reserved


def format_bytes(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover


def folder_of(url: QUrl) -> Path | None:
    """A dropped URL as a model folder: a local directory, or the folder of a dropped file."""
    if not url.isLocalFile():
        return None
    path = Path(url.toLocalFile())
    if path.is_dir():
        return path
    return path.parent if path.is_file() else None


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: QSettings,
        demo_root: Path = engine_calls.DEMO_ROOT,
        defer_plots: bool = False,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.settings = settings
        self.state = AppState(demo_root, parent=self)
        self.theme_name = str(settings.value("theme", "system"))
        self.setWindowTitle("BertScope")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._preloaded = False

        self.probe = ProbeView(self.state)
        if not defer_plots:
            self.probe.build_plots()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.probe, "Probe")
        self.compare = CompareView(self.state)  # its plots are built when first shown
        self.tabs.addTab(self.compare, "Compare")
        self.train = TrainView(self.state, history_path=train_history_path(settings))
        self.tabs.addTab(self.train, "Train")
        self.train.probe_requested.connect(lambda _key: self.tabs.setCurrentWidget(self.probe))
        self.train.enable_compare()
        self.train.compare_requested.connect(self._on_compare_requested)
        self.setCentralWidget(self.tabs)

        self.manager = ModelManager(self.state)
        self.card = ModelCard(self.state)
        self.models_dock = self._dock(
            "models", "Models", self.manager, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.card_dock = self._dock(
            "card", "Model card", self.card, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.splitDockWidget(self.models_dock, self.card_dock, Qt.Orientation.Vertical)
        self._shown_once = False
        self._layout_restored = False  # a saved layout was restored (else arranged on show)

        self.message = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        self.device_label = QLabel("Device: starting engine\u2026")
        self.memory_label = QLabel("")
        status = self.statusBar()
        status.addWidget(self.message, 1)
        status.addPermanentWidget(self.busy)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.memory_label)
        self.message_timer = QTimer(self)
        self.message_timer.setSingleShot(True)
        self.message_timer.setInterval(MESSAGE_MS)
        self.message_timer.timeout.connect(lambda: self.message.setText(""))
        self.memory_timer = QTimer(self)
        self.memory_timer.setInterval(MEMORY_POLL_MS)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.default_state = self.saveState()
        self.apply_theme(self.theme_name)
        self._restore_settings()
        self.probe.plots_created.connect(self._on_plots_created)

        self.state.started.connect(self._on_started)
        self.state.busy_changed.connect(self._on_busy_changed)
        self.state.load_failed.connect(self._on_load_failed)
        self.state.loaded.connect(self._on_loaded)
        self.state.current_changed.connect(self._on_current_changed)
        self.state.probed.connect(self._on_probed)
        self.state.probe_failed.connect(self._on_probe_failed)
        self.state.mask_failed.connect(self._on_mask_failed)
        self.state.export_failed.connect(self._on_export_failed)
        self.state.reported.connect(self._on_reported)
        self.state.models_changed.connect(self._on_models_changed)
        self.manager.open_clicked.connect(self.open_folder_dialog)
        self.memory_timer.timeout.connect(self._on_memory_tick)
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_scheme_changed)
        self.memory_timer.start()
        self._on_memory_tick()

    # -- construction ------------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(
        self, text: str, slot, shortcut: str | QKeySequence | None = None, tip: str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action(
            "&Open model folder\u2026",
            self.open_folder_dialog,
            QKeySequence.StandardKey.Open,
            "Open a Hugging Face-format BERT/ALBERT folder",
        )
        self.export_action = self._action(
            "&Export probe result\u2026",
            self.export_dialog,
            "Ctrl+E",
            "Save the probed sentence's tokens, attention and predictions as JSON, CSV or NPZ",
        )
        self.export_action.setEnabled(False)
        self.export_comparison_action = self._action(
            "Export &comparison\u2026",
            self.export_comparison_dialog,
            "Ctrl+Shift+E",
            "Save the Compare tab's comparison as JSON (as compare --json), CSV or an HTML report",
        )
        self.export_plots_action = self._action(
            "Export plots and &tables\u2026",
            self.export_plots_dialog,
            None,
            "Save every plot of the current tab as PNG and SVG and every table as CSV",
        )
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q", "Close BertScope")
        self.probe_action = self._action(
            "&Probe sentence",
            self._on_probe_action,
            "Ctrl+Return",
            "Run the sentence through the current model",
        )
        self.sentence_action = self._action(
            "Edit &sentence", self._on_focus_sentence, "Ctrl+L", "Jump to the sentence box"
        )
        self.pair_action = self._action(
            "Edit &pair sentence",
            self._on_focus_pair,
            "Ctrl+Shift+L",
            "Jump to the second-sentence box",
        )
        self.unload_action = self._action(
            "&Unload model", self.manager.unload_current, "Ctrl+W", "Free the selected model"
        )
        self.move_action = self._action(
            "&Move model to GPU/CPU",
            self.manager.move_current,
            "Ctrl+G",
            "Move the selected model between CPU and GPU",
        )
        self.move_action.setEnabled(False)
        self.next_model_action = self._action(
            "Next model",
            self._on_next_model,
            "Ctrl+PgDown",
            "Probe with the next model in the list",
        )
        self.previous_model_action = self._action(
            "Previous model", self._on_previous_model, "Ctrl+PgUp", "Probe with the previous model"
        )
        self.reset_layout_action = self._action(
            "&Reset panel layout",
            self._on_reset_layout,
            "Ctrl+0",
            "Put every panel back where it started",
        )
        self.about_action = self._action(
            "&About BertScope",
            self.show_about,
            QKeySequence.StandardKey.HelpContents,
            "Versions of BertScope, torch and Qt, and the device",
        )
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, keys in (
            ("system", "Ctrl+Shift+1"),
            ("light", "Ctrl+Shift+2"),
            ("dark", "Ctrl+Shift+3"),
        ):
            action = self._action(
                f"{name.capitalize()} theme",
                lambda _=False, n=name: self.apply_theme(n),
                keys,
                f"Use the {name} colour theme",
            )
            action.setCheckable(True)
            self.theme_group.addAction(action)
            self.theme_actions[name] = action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.export_comparison_action)
        file_menu.addAction(self.export_plots_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        model_menu = bar.addMenu("&Model")
        for action in (
            self.probe_action,
            self.sentence_action,
            self.pair_action,
            None,
            self.next_model_action,
            self.previous_model_action,
            None,
            self.move_action,
            self.unload_action,
        ):
            if action is None:
                model_menu.addSeparator()
            else:
                model_menu.addAction(action)

        view_menu = bar.addMenu("&View")
        self.panel_actions: list[QAction] = []
        docks = [self.models_dock, self.card_dock, *self.probe.docks.values()]
        for i, dock in enumerate(docks, start=1):
            action = dock.toggleViewAction()
            action.setShortcut(QKeySequence(f"Ctrl+{i}"))
            view_menu.addAction(action)
            self.addAction(action)
            self.panel_actions.append(action)
        view_menu.addAction(self.reset_layout_action)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        for action in self.theme_actions.values():
            theme_menu.addAction(action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)
        self._rebuild_recent_menu()

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main toolbar", self)
        toolbar.setObjectName("toolbar-main")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (
            self.open_action,
            self.export_action,
            None,
            self.probe_action,
            None,
            self.move_action,
            self.unload_action,
        ):
            if action is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.toolbar = toolbar

    # -- start-up ----------------------------------------------------------------------------
    def start(
        self, model: str | None = None, text: str | None = None, pair: str | None = None
    ) -> None:
        """Start the engine, load ``model`` (a folder or demo name; default: the first demo) and
        probe ``text`` (default: the last sentence, or an example with a [MASK])."""
        self.state.start()
        if text is None:
            text = str(self.settings.value("probe/sentence", "") or DEFAULT_SENTENCE)
        self.probe.sentence.setText(text)
        self.probe.pair.setText(pair or "")
        if model and Path(model).is_dir():
            self.state.text, self.state.pair = text, (pair or None)  # probed once it loaded
            self.state.open_folder(model)
            return
        keys = list(self.state.entries)
        wanted = [k for k in keys if model and self.state.entries[k].name.split(" (")[0] == model]
        if wanted or keys:
            self.state.load((wanted or keys)[0])
        self.state.request_probe(text, pair)

    # -- actions -----------------------------------------------------------------------------
    @Slot()
    def open_folder_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(engine_calls.DEMO_ROOT)))
        folder = QFileDialog.getExistingDirectory(self, "Open a BERT/ALBERT model folder", start)
        if folder:
            self.settings.setValue("last_folder", str(Path(folder).parent))
            self.state.open_folder(folder)

    @Slot()
    def export_dialog(self) -> None:
        analysis = self.state.analysis
        if analysis is None:
            return
        stem = f"{analysis.result.model_name.split(' ')[0]}-probe"
        start = str(Path(str(self.settings.value("last_export_dir", Path.home()))) / f"{stem}.json")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export probe result", start, EXPORT_FILTERS
        )
        if not path:
            return
        if not Path(path).suffix:
            path += (
                ".csv"
                if "csv" in chosen.lower()
                else ".npz"
                if "npz" in chosen.lower()
                else ".json"
            )
        self.settings.setValue("last_export_dir", str(Path(path).parent))
        self.state.export(path)

    @Slot()
    def export_comparison_dialog(self) -> None:
        start = Path(str(self.settings.value("last_export_dir", Path.home()))) / "comparison.html"
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export comparison",
            str(start),
            "HTML report (*.html);;JSON, as compare --json (*.json);;CSV, tidy rows (*.csv)",
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".json" if "json" in chosen.lower() else ".csv" if "csv" in chosen else ".html"
        self.settings.setValue("last_export_dir", str(Path(path).parent))
        self._export(lambda: self.compare.export_comparison(path))

    @Slot()
    def export_plots_dialog(self) -> None:
        start = str(self.settings.value("last_export_dir", Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Export plots and tables to", start)
        if folder:
            from app.widgets.plot_export import export_all

            self.settings.setValue("last_export_dir", folder)
            roots = [self.tabs.currentWidget(), self.card]  # the tab on screen and the model card
            self._export(lambda: export_all(roots, folder))

    def _export(self, write) -> None:
        """Run a GUI-side export (plots render on this thread); errors go to a dialog."""
        from core.errors import BertScopeError

        try:
            written = write()
        except (BertScopeError, OSError, ValueError) as err:
            QMessageBox.warning(self, "Export failed", str(err))
            return
        count = len(written) if isinstance(written, list) else 1
        self.message.setText(f"exported {count} file{'s' if count != 1 else ''}")

    @Slot()
    def show_about(self) -> None:
        QMessageBox.about(self, "About BertScope", self.about_text())

    def about_text(self) -> str:
        from importlib import metadata

        import numpy
        import pyqtgraph
        import PySide6
        from PySide6.QtCore import qVersion

        try:
            version = metadata.version("bertscope")
        except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
            version = "development"
        info = self.state.info
        torch = info.torch_version if info else "loading\u2026"
        entry = self.state.current
        device = (
            entry.summary.device_name
            if entry and entry.summary
            else (info.device_name if info else "?")
        )
        return (
            f"<h3>BertScope {version}</h3>"
            "<p>A lab for small BERT and ALBERT models: load, probe, compare.</p>"
            f"<p>torch {torch}<br>Qt {qVersion()} (PySide6 {PySide6.__version__})<br>"
            f"pyqtgraph {pyqtgraph.__version__} \u00b7 numpy {numpy.__version__}<br>"
            f"Python {platform.python_version()}<br>"
            f"Device in use: {device}</p>"
            + (f"<p>{html.escape(info.gpu_note)}</p>" if info and info.gpu_note else "")
        )

    def apply_theme(self, name: str) -> None:
        self.theme_name = name if name in theme.THEMES else "system"
        theme.apply_theme(self.theme_name)
        self.theme_actions[self.theme_name].setChecked(True)

    @Slot()
    def _on_system_scheme_changed(self, *_args) -> None:
        if self.theme_name == "system":
            self.apply_theme("system")

    def _on_probe_action(self) -> None:
        self.state.request_probe(self.probe.sentence.text(), self.probe.pair.text() or None)

    def _on_focus_sentence(self) -> None:
        self.probe.sentence.setFocus()
        self.probe.sentence.selectAll()

    def _on_focus_pair(self) -> None:
        self.probe.pair.setFocus()
        self.probe.pair.selectAll()

    def _step_model(self, step: int) -> None:
        keys = list(self.state.entries)
        if not keys:
            return
        index = keys.index(self.state.current_key) if self.state.current_key in keys else -step
        self.state.select(keys[(index + step) % len(keys)])

    def _on_next_model(self) -> None:
        self._step_model(1)

    def _on_previous_model(self) -> None:
        self._step_model(-1)

    def _on_reset_layout(self) -> None:
        self.reset_layout()

    def reset_layout(self) -> None:
        """Every panel back in place, sized for the window as it is now."""
        self.restoreState(self.default_state)
        self.probe.restore_layout(self.probe.default_layout)
        for dock in (self.models_dock, self.card_dock, *self.probe.docks.values()):
            dock.setVisible(True)
            dock.setFloating(False)
        self.arrange()

    def arrange(self) -> None:
        """Size the sidebar and the Probe panels for the current window size. Below
        SIDEBAR_TABS_WIDTH the Models list and the Model card share one tab group."""
        width, height = self.width(), self.height()
        # every toolbar action is in the menus: on a short screen the plots get its height
        self.toolbar.setVisible(height >= TOOLBAR_MIN_HEIGHT)
        if width < SIDEBAR_TABS_WIDTH:
            self.tabifyDockWidget(self.models_dock, self.card_dock)
            self.models_dock.raise_()
        self.resizeDocks(
            [self.models_dock], [min(330, int(width * 0.22))], Qt.Orientation.Horizontal
        )
        if width >= SIDEBAR_TABS_WIDTH:
            self.resizeDocks(
                [self.models_dock, self.card_dock],
                [int(height * 0.22), int(height * 0.6)],
                Qt.Orientation.Vertical,
            )
        self.probe.arrange(width, height)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            # once the window manager has applied the size: docks sized before that are sized
            # for a window that never appears
            QTimer.singleShot(0, self.settle_layout)

    def settle_layout(self) -> None:
        """Arrange the panels unless a saved layout was restored that keeps each readable."""
        if not self._layout_restored or self.probe.undersized_panels():
            self.reset_layout()
        else:  # a saved layout from a shorter (or taller) screen
            self.toolbar.setVisible(self.height() >= TOOLBAR_MIN_HEIGHT)

    @Slot()
    def _on_plots_created(self) -> None:
        if self._shown_once:
            QTimer.singleShot(0, self.settle_layout)

    # -- recent models -----------------------------------------------------------------------
    def recent_models(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: Path) -> None:
        recent = [p for p in self.recent_models() if Path(p) != path]
        recent.insert(0, str(path))
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_models()
        for i, path in enumerate(recent):
            action = self.recent_menu.addAction(f"&{i + 1} {path}")
            action.triggered.connect(lambda _=False, p=path: self.state.open_folder(p))
        if not recent:
            empty = self.recent_menu.addAction("(none yet)")
            empty.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear list")
            clear.triggered.connect(self._on_clear_recent)

    def _on_clear_recent(self) -> None:
        self.settings.setValue("recent", [])
        self._rebuild_recent_menu()

    # -- drag and drop -----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(folder_of(url) is not None for url in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [f for f in (folder_of(url) for url in event.mimeData().urls()) if f is not None]
        for folder in folders:
            self.state.open_folder(folder)
        if folders:
            event.acceptProposedAction()

    # -- state signals -----------------------------------------------------------------------
    @Slot(object)
    def _on_started(self, info: engine_calls.EngineInfo) -> None:
        self._update_device_label()
        self._update_move_action()

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        self.busy.setVisible(busy)

    @Slot(str, str)
    def _on_load_failed(self, source: str, message: str) -> None:
        self.show_message(f"could not open {source}")
        QMessageBox.critical(self, "Cannot open model", message)

    @Slot(str)
    def _on_loaded(self, key: str) -> None:
        entry = self.state.entries.get(key)
        if entry is not None and entry.path is not None and not entry.demo:
            self._remember(entry.path)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        entry = self.state.entries.get(key)
        # the application display name ("BertScope") is appended by Qt: "bert-mini — BertScope"
        self.setWindowTitle(entry.name if entry else "")
        if entry is None or entry.name not in self.message.text():
            self.show_message("")  # a message about another model would contradict this one
        self._update_device_label()
        self._update_move_action()
        self.unload_action.setEnabled(entry is not None and entry.is_loaded)
        if entry is None:
            self.export_action.setEnabled(False)

    @Slot()
    def _on_models_changed(self) -> None:
        self._update_device_label()
        self._update_move_action()
        entry = self.state.current
        self.unload_action.setEnabled(entry is not None and entry.is_loaded)

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        self.export_action.setEnabled(True)
        self.settings.setValue("probe/sentence", analysis.result.text)
        if not self._preloaded:
            # The first sentence is on screen: now load the other demo models quietly.
            self._preloaded = True
            for key, entry in list(self.state.entries.items()):
                if (
                    entry.demo
                    and not entry.random_init
                    and not entry.is_loaded
                    and not entry.loading
                ):
                    self.state.load(key, select=False)

    @Slot(str)
    def _on_probe_failed(self, message: str) -> None:
        self.show_message(message)

    @Slot(str)
    def _on_mask_failed(self, message: str) -> None:
        self.show_message(message)

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Export failed", message)

    @Slot(str)
    def _on_reported(self, message: str) -> None:
        self.show_message(message)

    def show_message(self, text: str) -> None:
        """A status-bar message that clears itself after MESSAGE_MS."""
        self.message.setText(text)
        self.message.setToolTip(text)
        if text:
            self.message_timer.start()
        else:
            self.message_timer.stop()

    def _update_device_label(self) -> None:
        entry = self.state.current
        if entry is not None and entry.summary is not None:
            self.device_label.setText(f"Device: {entry.summary.device_name}")
        elif self.state.info is not None:
            self.device_label.setText(f"Device: {self.state.info.device_name}")

    def _update_move_action(self) -> None:
        entry = self.state.current
        has_gpu = self.state.accelerator is not None
        self.move_action.setEnabled(has_gpu and entry is not None and entry.is_loaded)
        if not has_gpu:
            self.move_action.setToolTip("No GPU (CUDA or MPS) on this machine")

    @Slot()
    def _on_memory_tick(self) -> None:
        rss, kind = resident_memory()
        text = f"Memory: {format_bytes(rss)} {kind}"
        entry = self.state.current
        if entry is not None and entry.device and not entry.device.startswith("cpu"):
            used = accelerator_memory(entry.device)
            if used is not None:
                allocated, reserved = used
                text += (
                    f" \u00b7 {entry.device}: {format_bytes(allocated)} allocated, "
                    f"{format_bytes(reserved)} reserved"
                )
        self.memory_label.setText(text)

    # -- settings ----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry:
            self.restoreGeometry(geometry)
        else:
            screen = QGuiApplication.primaryScreen()
            available = screen.availableGeometry() if screen else None
            if available is not None and available.width() >= 1000:
                self.resize(min(1600, available.width()), min(1000, available.height()))
            else:
                self.resize(1400, 900)
        window_state = self.settings.value("window/state")
        restored = bool(window_state) and self.restoreState(window_state)
        docks = self.settings.value("probe/docks")
        self._layout_restored = restored and bool(docks and self.probe.restore_layout(docks))

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("probe/docks", self.probe.save_layout())
        self.settings.setValue("theme", self.theme_name)
        self.settings.sync()

    def _on_compare_requested(self, key_a: str, key_b: str) -> None:
        """The Train tab's Compare: two checkpoints (or a checkpoint and the current model)."""
        self.compare.set_models(key_a, key_b)
        self.tabs.setCurrentWidget(self.compare)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.train.confirm_close():  # a run in progress: stop, background or cancel
            event.ignore()
            return
        self.save_settings()
        self.memory_timer.stop()
        self.state.shutdown()
        event.accept()
        app = QApplication.instance()
        if app is not None:
            app.setProperty("bertscope_closed", True)
