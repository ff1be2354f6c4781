"""The main window: menus, toolbar, the model sidebar and the tabs, laid out and kept in
``QSettings``.

It wires user actions to :class:`app.probe.state.AppState` and shows what comes back; engine
errors go to a dialog (loading) or to the status bar (probing), never a crash. Its side jobs
are their own small parts: the status bar (:mod:`app.status_bar`), the export actions
(:mod:`app.export_actions`), File -> Open recent (:mod:`app.recent_models`) and the quiet
loading of the other demos after the first probe (:mod:`app.demo_preload`). Geometry, dock
layout, theme and the last sentence live in ``QSettings``; the caller passes the settings
object so tests can use a private file. The GUI thread never imports torch.
"""

from __future__ import annotations

import html
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMargins, QPoint, QRect, QSettings, QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QMoveEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QToolBar,
    QWidget,
)

from app import theme
from app.compare.compare_view import CompareView
from app.demo_preload import DemoPreloader
from app.export_actions import ExportActions
from app.models.model_card import ModelCard
from app.models.model_manager import ModelManager
from app.probe import calls as engine_calls
from app.probe.probe_view import DEFAULT_SENTENCE, ProbeView
from app.probe.state import AppState
from app.recent_models import RecentModels
from app.status_bar import WindowStatus
from app.train.train_view import TrainView, train_history_path
from app.widgets.actions import make_action

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

SIDEBAR_TABS_WIDTH = 1400  # narrower windows tab the Models list with the Model card
TOOLBAR_MIN_HEIGHT = 800  # shorter windows hide the toolbar (its actions are in the menus)
COMPARE_PAGES = {"compare": 0, "cost": 1, "calculator": 2}  # tabs that are Compare pages
FIRST_LAUNCH_SIZE = QSize(1600, 1000)  # at most, on a first launch (no saved geometry)
# A title bar and borders, until the window manager says (it knows only once the window is shown)
FRAME_ESTIMATE = QMargins(2, 32, 2, 6)


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
        self.dialogs = True  # errors open a modal dialog (a scripted run has nobody to close it)
        self.setWindowTitle("BertScope")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)

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
        self._frame_known = False  # the window manager's frame was measured after showing
        self._wanted_size = FIRST_LAUNCH_SIZE  # before clamping: refit once the frame is known
        self._fitted_size: QSize | None = None  # what the last fit gave (else a caller resized)
        self.settled = False  # the panels were arranged for the window on screen
        self._layout_restored = False  # a saved layout was restored (else arranged on show)

        self.status = WindowStatus(self.statusBar(), self.state)
        self.statusBar().insertWidget(0, self.probe.hint, 4)  # the newcomer's hint
        self.exports = ExportActions(
            self,
            settings,
            self.state,
            self.compare,
            roots=lambda: [self.tabs.currentWidget(), self.card],  # the tab on screen, the card
            status=self.status,
        )
        self.export_action = self.exports.probe
        self.export_comparison_action = self.exports.comparison
        self.export_plots_action = self.exports.plots
        self.preloader = DemoPreloader(self.state, self)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.default_state = self.saveState()
        self.apply_theme(self.theme_name)
        self._restore_settings()
        self.probe.plots_created.connect(self._on_plots_created)

        self.state.started.connect(lambda _info: self._on_models_changed())
        self.state.load_failed.connect(self._on_load_failed)
        self.state.current_changed.connect(self._on_current_changed)
        self.state.probed.connect(self._on_probed)
        self.state.models_changed.connect(self._on_models_changed)
        self.manager.open_clicked.connect(self.open_folder_dialog)
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_scheme_changed)

    # -- construction ------------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        self.open_action = make_action(
            self,
            "&Open model folder\u2026",
            self.open_folder_dialog,
            QKeySequence.StandardKey.Open,
            "Open a Hugging Face-format BERT/ALBERT folder",
        )
        self.quit_action = make_action(self, "&Quit", self.close, "Ctrl+Q", "Close BertScope")
        self.probe_action = make_action(
            self,
            "&Probe sentence",
            self._on_probe_action,
            "Ctrl+Return",
            "Run the sentence through the current model",
        )
        self.sentence_action = make_action(
            self, "Edit &sentence", self._on_focus_sentence, "Ctrl+L", "Jump to the sentence box"
        )
        self.pair_action = make_action(
            self,
            "Edit &pair sentence",
            self._on_focus_pair,
            "Ctrl+Shift+L",
            "Jump to the second-sentence box",
        )
        self.unload_action = make_action(
            self, "&Unload model", self.manager.unload_current, "Ctrl+W", "Free the selected model"
        )
        self.move_action = make_action(
            self,
            "&Move model to GPU/CPU",
            self.manager.move_current,
            "Ctrl+G",
            "Move the selected model between CPU and GPU",
        )
        self.move_action.setEnabled(False)
        self.next_model_action = make_action(
            self,
            "Next model",
            self._on_next_model,
            "Ctrl+PgDown",
            "Probe with the next model in the list",
        )
        self.previous_model_action = make_action(
            self,
            "Previous model",
            self._on_previous_model,
            "Ctrl+PgUp",
            "Probe with the previous model",
        )
        self.reset_layout_action = make_action(
            self,
            "&Reset panel layout",
            self._on_reset_layout,
            "Ctrl+0",
            "Put every panel back where it started",
        )
        self.about_action = make_action(
            self,
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
            action = make_action(
                self,
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
        self.recent = RecentModels(self.settings, self.state, self.recent_menu)
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

    def show_tab(self, name: str) -> None:
        """Bring a tab to the front: "probe", "compare", "train", or the Compare tab's "cost"
        and "calculator" pages."""
        if name in COMPARE_PAGES:
            self.tabs.setCurrentWidget(self.compare)
            self.compare.pages.setCurrentIndex(COMPARE_PAGES[name])
        else:
            self.tabs.setCurrentWidget({"probe": self.probe, "train": self.train}[name])

    def close_unattended(self) -> None:
        """Close without asking: a training run in progress stops (it saves a checkpoint)."""
        self.train.unattended_close = "stop"
        self.close()

    # -- actions -----------------------------------------------------------------------------
    @Slot()
    def open_folder_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(engine_calls.DEMO_ROOT)))
        folder = QFileDialog.getExistingDirectory(self, "Open a BERT/ALBERT model folder", start)
        if folder:
            self.settings.setValue("last_folder", str(Path(folder).parent))
            self.state.open_folder(folder)

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

    # -- layout ------------------------------------------------------------------------------
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

    # -- fitting the screen ------------------------------------------------------------------
    def available_area(self) -> QRect | None:
        """The screen area a window may cover (without panels and docks of the desktop)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def frame_margins(self) -> QMargins | None:
        """The window manager's frame around the window, or None while it is unknown (before
        the first show, and on platforms without frames)."""
        frame, inner = self.frameGeometry(), self.geometry()
        if frame == inner:
            return None
        return QMargins(
            inner.left() - frame.left(),
            inner.top() - frame.top(),
            frame.right() - inner.right(),
            frame.bottom() - inner.bottom(),
        )

    def fit_to_screen(self) -> None:
        """Size and place the window so that it and its frame lie inside the available area:
        a first launch fills it (up to FIRST_LAUNCH_SIZE), a restored geometry is clamped."""
        area = self.available_area()
        if area is None or area.width() < 200 or area.height() < 200:
            return
        known = self.frame_margins()
        margins = known if known is not None else FRAME_ESTIMATE if not self._frame_known else None
        margins = margins or QMargins()
        room = area.marginsRemoved(margins)  # where the window itself (no frame) may go
        if self._fitted_size is not None and self._fitted_size != self.size():
            self._wanted_size = self.size()  # resized since (a --size, a test): keep that size
        size = self._wanted_size.boundedTo(room.size())
        if size != self.size():
            self.resize(size)
        self._fitted_size = size
        inner = self.geometry().topLeft()
        left = min(max(inner.x(), room.left()), room.right() - size.width() + 1)
        top = min(max(inner.y(), room.top()), room.bottom() - size.height() + 1)
        if (left, top) != (inner.x(), inner.y()):  # move() places the frame: move by the shift
            self.move(self.pos() + QPoint(left, top) - inner)

    def _check_frame(self) -> None:
        """Once the frame is known: fit again with its real size, then check the panels at
        the size the window now has."""
        if self._frame_known or not self.isVisible() or self.frame_margins() is None:
            return
        self._frame_known = True
        self.fit_to_screen()
        if self.settled:
            QTimer.singleShot(0, self.settle_layout)

    def moveEvent(self, event: QMoveEvent) -> None:
        super().moveEvent(event)
        self._check_frame()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._check_frame()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            # once the window manager has applied the size: docks sized before that are sized
            # for a window that never appears
            QTimer.singleShot(0, self.settle_layout)
            self._check_frame()  # some platforms know the frame as soon as the window shows

    def settle_layout(self) -> None:
        """Arrange the panels unless a saved layout was restored that keeps each readable."""
        if not self._layout_restored or self.probe.undersized_panels():
            self.reset_layout()
        else:  # a saved layout from a shorter (or taller) screen
            self.toolbar.setVisible(self.height() >= TOOLBAR_MIN_HEIGHT)
        self.settled = True

    @Slot()
    def _on_plots_created(self) -> None:
        if self._shown_once:
            QTimer.singleShot(0, self.settle_layout)

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
    @Slot(str, str)
    def _on_load_failed(self, source: str, message: str) -> None:
        self.status.show_message(f"could not open {source}")
        if self.dialogs:
            QMessageBox.critical(self, "Cannot open model", message)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        entry = self.state.entries.get(key)
        # the application display name ("BertScope") is appended by Qt: "bert-mini — BertScope"
        self.setWindowTitle(entry.name if entry else "")
        self._on_models_changed()

    @Slot()
    def _on_models_changed(self) -> None:
        entry = self.state.current
        loaded = entry is not None and entry.is_loaded
        self.unload_action.setEnabled(loaded)
        has_gpu = self.state.accelerator is not None
        self.move_action.setEnabled(has_gpu and loaded)
        if not has_gpu:
            self.move_action.setToolTip("No GPU (CUDA or MPS) on this machine")

    @Slot(object)
    def _on_probed(self, analysis: ProbeAnalysis) -> None:
        self.settings.setValue("probe/sentence", analysis.result.text)

    # -- settings ----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry and self.restoreGeometry(geometry):
            self._wanted_size = self.size()
        else:
            self.resize(1400, 900)  # where the screen is unknown
        self.fit_to_screen()
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
        self.status.stop()
        self.state.shutdown()
        event.accept()
        app = QApplication.instance()
        if app is not None:
            app.setProperty("bertscope_closed", True)
