"""The Train tab: pretrain BERT and ALBERT from the window and watch them learn.

Left, the form (:class:`TrainForm`) and Start / Pause / Resume / Stop. Right, the live curves
(:class:`TrainCurves`, x = tokens seen, so BERT and ALBERT share the axes), a progress bar with
elapsed time and ETA, the trainer's memory figure and its one-line error if it fails; below,
the run history (tick a run to overlay its curves), the checkpoints (each is also listed in
the Models sidebar: pick one to probe it while the run goes on) and the log's last lines.

The view renders :class:`app.train.state.TrainState` and forwards the buttons to it; the runs,
their processes and the engine jobs are the state's. Closing the window during a run asks
whether to stop it (a checkpoint is saved), keep it training in the background, or not close.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.probe.state import CALCULATOR_KEY, AppState
from app.train import calls as train_calls
from app.train.history import RunRecord
from app.train.state import TrainState
from app.train.train_curves import TrainCurves
from app.train.train_form import TrainForm
from core.errors import InputError
from core.timefmt import format_duration
from core.training import ProgressEvent
from core.training.run_status import RunStatus

log = logging.getLogger(__name__)

REDRAW_MS = 150  # curves redraw at most this often, however fast the steps come
KEY_ROLE = Qt.ItemDataRole.UserRole
# The status line when a run ended, by status (a failure shows its message instead).
ENDED = {
    RunStatus.DONE: "finished",
    RunStatus.PAUSED: "paused (checkpoint saved; Resume continues)",
    RunStatus.STOPPED: "stopped (checkpoint saved)",
    RunStatus.NEW: "not started",
}


def default_history_path() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".bertscope") / "runs.json"


def train_history_path(settings: QSettings) -> Path:
    """Run history next to an INI settings file (tests, ``--settings``), else in AppData."""
    if settings.format() == QSettings.Format.IniFormat:
        return Path(settings.fileName()).with_suffix(".runs.json")
    return default_history_path()


def format_memory(count: int | None) -> str:
    if not count:
        return "\u2014"
    return f"{count / 2**20:,.0f} MB" if count < 2**30 else f"{count / 2**30:.2f} GB"


class TrainView(QWidget):
    probe_requested = Signal(str)  # a checkpoint's model key: the window shows the Probe tab
    compare_requested = Signal(str, str)  # two model keys for the Compare tab

    def __init__(
        self,
        state: AppState,
        history_path: Path | None = None,
        runs_root: Path | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.form = TrainForm(runs_root)
        self.train_state = TrainState(
            state, history_path or default_history_path(), self.form.runs_root(), self
        )
        self._dirty: set[str] = set()

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Check the corpus, then start training")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Save a checkpoint and stop; Resume continues bit-exactly")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the paused run, or the run picked in the list")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and end the run")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(button)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left = QWidget()
        left.setMinimumWidth(300)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)  # always in sight, however short the window

        self.status = QLabel("Pick what to train and press Start.")
        self.status.setWordWrap(False)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no run")
        self.progress.setTextVisible(True)
        self.memory = QLabel("memory: \u2014")
        self.memory.setToolTip(
            "The trainer's own figure: GPU memory allocated on CUDA/MPS, the process's "
            "resident memory on the CPU"
        )
        self.curves = TrainCurves()

        self.runs = QTreeWidget()
        self.runs.setHeaderLabels(["run", "status", "step", "MLM acc.", "ppl"])
        self.runs.setToolTip("Tick a run to overlay its curves (read from its train_log.jsonl)")
        self.runs.setRootIsDecorated(False)
        self.runs.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.runs.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.checkpoints = QListWidget()
        self.checkpoints.setToolTip(
            "Checkpoints as models (also in the Models list): double-click or Probe to probe one"
        )
        self.probe_button = QPushButton("Probe")
        self.probe_button.setToolTip("Probe the picked checkpoint in the Probe tab")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip(
            "Compare two picked checkpoints (or one with the current model) in the Compare tab"
        )
        self.compare_button.setVisible(False)  # until the window has a Compare tab to show
        self.checkpoints.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(300)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log.setPlaceholderText("the trainer's log")

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        line = QHBoxLayout()
        line.addWidget(self.progress, 1)
        line.addWidget(self.memory)
        top_layout.addWidget(self.status)
        top_layout.addLayout(line)
        top_layout.addWidget(self.curves, 1)
        checkpoints_box = QWidget()
        cb_layout = QHBoxLayout(checkpoints_box)
        cb_layout.setContentsMargins(0, 0, 0, 0)
        cb_layout.addWidget(self.checkpoints, 1)
        buttons_box = QVBoxLayout()
        buttons_box.addWidget(self.probe_button)
        buttons_box.addWidget(self.compare_button)
        buttons_box.addStretch(1)
        cb_layout.addLayout(buttons_box)
        self.lists = QTabWidget()
        self.lists.setDocumentMode(True)
        self.lists.addTab(self.runs, "Runs")
        self.lists.addTab(checkpoints_box, "Checkpoints")
        for view in (self.runs, self.checkpoints):
            view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.lists)
        bottom.addWidget(self.log)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([700, 200])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 1000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._on_redraw)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.form.corpus_changed.connect(self.check_corpus)
        self.state.models_changed.connect(self._on_models_changed)
        self.runs.itemChanged.connect(self._on_run_item_changed)
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        self.checkpoints.itemDoubleClicked.connect(self._on_checkpoint_activated)
        self.probe_button.clicked.connect(self._on_probe_clicked)
        self.compare_button.clicked.connect(self._on_compare_clicked)
        ts = self.train_state
        ts.corpus_checking.connect(
            lambda: self.form.show_corpus_figures("checking the corpus\u2026")
        )
        ts.corpus_checked.connect(lambda figures: self.form.show_corpus_figures(figures.summary()))
        ts.corpus_failed.connect(lambda message: self.form.show_corpus_figures(message, True))
        ts.devices_found.connect(self._on_devices)
        ts.start_failed.connect(self._show_error)
        ts.launched.connect(self._on_launched)
        ts.run_started.connect(self._on_run_started)
        ts.event_received.connect(self._on_event)
        ts.log_received.connect(self._on_log)
        ts.run_ended.connect(self._on_run_ended)
        ts.checkpoint_listed.connect(self._on_checkpoint_listed)
        ts.reattached.connect(self._on_reattached)
        ts.changed.connect(self._update_buttons)

        self._fill_runs()
        ts.reattach()
        self._update_buttons()
        history = ts.history
        if history.problem:  # said once, here; the bad file is kept beside the history
            self.status.setText(history.problem)
            self.status.setToolTip(f"{history.path}: {history.problem}")
            self.status.setStyleSheet("color: #b9770e;")
        self._shown = False
        # What closing does without asking ("stop", "background"): set for SIGTERM and
        # scripted runs, where nobody is there to answer the prompt.
        self.unattended_close: str | None = None

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown:
            # First time on screen: ask the engine for the devices and check the corpus (not
            # at start-up, where the first probe comes first).
            self._shown = True
            self.train_state.ask_devices()
            self.check_corpus()

    @Slot()
    def check_corpus(self) -> None:
        self.train_state.check_corpus(self.form.corpus_files())

    def _on_devices(self, devices: train_calls.Devices) -> None:
        self.form.set_devices(devices.cuda, devices.mps, devices.names)

    # -- control -------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Start the runs the form describes (once their corpus passed the check)."""
        if not self.train_state.can_start:
            return
        try:
            runs = self.form.settings()
        except InputError as err:
            self._show_error(str(err))
            return
        self.status.setText("checking the corpus\u2026")
        self.status.setStyleSheet("")
        self.train_state.start(runs, parallel=self.form.parallel)

    @Slot()
    def pause(self) -> None:
        if self.train_state.running:
            self.status.setText("pausing: the trainer saves a checkpoint at the end of this step")
            self.train_state.pause()

    @Slot()
    def resume(self) -> None:
        """Continue the paused session, or the stopped run picked in the list."""
        self.train_state.resume(self.selected_record())

    @Slot()
    def stop(self) -> None:
        if self.train_state.session is not None:
            self.status.setText("stopping: the trainer saves a checkpoint at the end of this step")
            self.train_state.stop()

    # -- closing the window --------------------------------------------------------------------
    def ask_close(self) -> str:
        """Ask what to do with the runs in progress: "stop", "background" or "cancel"."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Training in progress")
        box.setText(f"Training is in progress ({', '.join(self.train_state.active_names())}).")
        box.setInformativeText(
            "Stop saves a checkpoint you can resume later. In the background the run "
            "continues after the window closes and reappears here when you open it again."
        )
        stop = box.addButton("Stop (save a checkpoint)", QMessageBox.ButtonRole.DestructiveRole)
        stop.setObjectName("stop")
        background = box.addButton(
            "Keep training in the background", QMessageBox.ButtonRole.AcceptRole
        )
        background.setObjectName("background")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setObjectName("cancel")
        box.setDefaultButton(background)
        box.exec()
        clicked = box.clickedButton()
        return clicked.objectName() if clicked is not None else "cancel"

    def confirm_close(self) -> bool:
        """Called by the window's closeEvent: False keeps the window open."""
        choice = "stop"
        if self.train_state.running:
            choice = self.unattended_close or self.ask_close()
            if choice == "cancel":
                return False
        self.train_state.close(keep_training=choice == "background")
        return True

    # -- reports -------------------------------------------------------------------------------
    def _on_launched(self, records: list[RunRecord]) -> None:
        for name in list(self.curves.runs()):
            if not self._overlaid(name):
                self.curves.remove_run(name)
        self._fill_runs()

    def _on_reattached(self, records: list[RunRecord]) -> None:
        self.status.setText(
            "re-attached to " + ", ".join(r.name for r in records) + " (training in the background)"
        )

    def _on_run_started(self, record: RunRecord) -> None:
        self.curves.show_run(record.name, self.train_state.series[record.name], record.arch)
        self.status.setText(f"{record.name}: starting\u2026")
        self.status.setStyleSheet("")
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{record.name}: starting")
        self._fill_runs()
        self._set_checked(record.name, True)
        self.redraw_timer.start()

    def _on_event(self, record: RunRecord, event: ProgressEvent) -> None:
        if event.kind in ("step", "eval"):
            self._dirty.add(record.name)
        if event.kind == "prepare":
            if event.fraction is None:
                self.progress.setRange(0, 0)
            else:
                self.progress.setRange(0, 1000)
                self.progress.setValue(round(1000 * event.fraction))
            self.progress.setFormat(f"{record.name}: {event.message or 'preparing'}")
        elif event.kind == "step":
            if self.status.text() == f"{record.name}: starting\u2026":
                self.status.setText(f"{record.name}: training")
            total = event.total_steps or 1
            self.progress.setRange(0, total)
            self.progress.setValue(event.step)
            self.progress.setFormat(
                f"{record.name}: step {event.step:,} / {total:,} \u00b7 "
                f"{format_duration(event.elapsed_s)} elapsed \u00b7 "
                f"ETA {format_duration(event.eta_s)}"
            )
            self.memory.setText(f"memory: {format_memory(event.memory_bytes)}")
        elif event.kind == "error" and event.message:
            self._show_error(f"{record.name}: {event.message}")
        if event.kind != "step" or (record.steps_done % 10 == 0):
            self._update_run_row(record)

    def _on_log(self, record: RunRecord, line: str) -> None:
        self.log.appendPlainText(f"[{record.name}] {line}")

    def _on_run_ended(self, record: RunRecord, status: RunStatus, message: str) -> None:
        self._on_redraw()
        if status == RunStatus.FAILED:
            self._show_error(f"{record.name} failed: {message}")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat(f"{record.name}: failed")
        else:
            self.status.setText(f"{record.name}: {message or ENDED.get(status, status)}")
            self.status.setStyleSheet("")
            if status == RunStatus.DONE:
                self.progress.setRange(0, 1)
                self.progress.setValue(1)
                self.progress.setFormat(f"{record.name}: done")
        self._update_run_row(record)
        self._update_buttons()
        if not self.train_state.running:
            self.redraw_timer.stop()

    def _show_error(self, message: str) -> None:
        self.status.setText(message.splitlines()[0] if message else "failed")
        self.status.setToolTip(message)
        self.status.setStyleSheet("color: #c0392b;")

    @Slot()
    def _on_redraw(self) -> None:
        for name in self._dirty:
            if name in self.curves.series:
                self.curves.update_run(name)
        self._dirty.clear()

    # -- checkpoints as models -----------------------------------------------------------------
    def _on_checkpoint_listed(self, key: str, name: str, folder: str) -> None:
        item = QListWidgetItem(name)
        item.setData(KEY_ROLE, key)
        item.setToolTip(folder)
        self.checkpoints.addItem(item)

    def checkpoint_names(self) -> list[str]:
        return [self.checkpoints.item(i).text() for i in range(self.checkpoints.count())]

    def probe_checkpoint(self, key: str) -> None:
        """Make the checkpoint the current model (loading it on the engine thread) and show the
        Probe tab, which probes its sentence with it. One whose folder was deleted since (and
        not loaded before) is said so in the status line."""
        entry = self.state.entries.get(key)
        if entry is not None and not entry.is_loaded and entry.path and not entry.path.is_dir():
            self._show_error(f"{entry.name}: its folder {entry.path} was deleted")
            return
        self.state.select(key)
        self.probe_requested.emit(key)

    def _on_checkpoint_activated(self, item: QListWidgetItem) -> None:
        self.probe_checkpoint(item.data(KEY_ROLE))

    def _on_probe_clicked(self) -> None:
        item = self.checkpoints.currentItem()
        if item is not None:
            self.probe_checkpoint(item.data(KEY_ROLE))

    def _on_models_changed(self) -> None:
        """The calculator's models (Compare tab, Add to models) become sizes in the form."""
        self.form.set_model_configs(
            {
                entry.name: entry.summary.config
                for key, entry in self.state.entries.items()
                if key.startswith(CALCULATOR_KEY) and entry.summary is not None
            }
        )

    def enable_compare(self) -> None:
        """Show the Compare button (the window connects ``compare_requested`` to its tab)."""
        self.compare_button.setVisible(True)

    def _on_compare_clicked(self) -> None:
        keys = [item.data(KEY_ROLE) for item in self.checkpoints.selectedItems()]
        if len(keys) == 1 and self.state.current_key and self.state.current_key != keys[0]:
            keys.append(self.state.current_key)
        if len(keys) >= 2:
            self.compare_requested.emit(keys[0], keys[1])

    # -- the run list --------------------------------------------------------------------------
    def _fill_runs(self) -> None:
        checked = set(self.curves.runs())
        self.runs.blockSignals(True)
        self.runs.clear()
        for record in reversed(self.train_state.history.records):
            item = QTreeWidgetItem()
            item.setData(0, KEY_ROLE, record.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                0, Qt.CheckState.Checked if record.name in checked else Qt.CheckState.Unchecked
            )
            self._row_text(item, record)
            self.runs.addTopLevelItem(item)
        self.runs.blockSignals(False)

    def _row_text(self, item: QTreeWidgetItem, record: RunRecord) -> None:
        metrics = record.metrics or {}
        acc = metrics.get("mlm_accuracy")
        ppl = metrics.get("perplexity")
        total = record.settings.get("steps", 0)
        item.setText(0, record.name)
        item.setText(1, record.status.value)
        item.setText(2, f"{record.steps_done:,}/{total:,}")
        item.setText(3, f"{acc:.1%}" if isinstance(acc, (int, float)) else "\u2014")
        item.setText(4, f"{ppl:,.1f}" if isinstance(ppl, (int, float)) else "\u2014")
        item.setToolTip(0, f"{record.out}\n{record.message}".strip())

    def _item(self, name: str) -> QTreeWidgetItem | None:
        for i in range(self.runs.topLevelItemCount()):
            item = self.runs.topLevelItem(i)
            if item.data(0, KEY_ROLE) == name:
                return item
        return None

    def _update_run_row(self, record: RunRecord) -> None:
        item = self._item(record.name)
        if item is None:
            self._fill_runs()
            return
        self.runs.blockSignals(True)
        self._row_text(item, record)
        self.runs.blockSignals(False)

    def _set_checked(self, name: str, checked: bool) -> None:
        item = self._item(name)
        if item is not None:
            self.runs.blockSignals(True)
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.runs.blockSignals(False)

    def _overlaid(self, name: str) -> bool:
        item = self._item(name)
        return item is not None and item.checkState(0) == Qt.CheckState.Checked

    def run_rows(self) -> list[tuple[str, ...]]:
        return [
            tuple(self.runs.topLevelItem(i).text(c) for c in range(5))
            for i in range(self.runs.topLevelItemCount())
        ]

    def selected_record(self) -> RunRecord | None:
        items = self.runs.selectedItems()
        return self.train_state.record(items[0].data(0, KEY_ROLE)) if items else None

    def overlay(self, name: str, on: bool = True) -> None:
        """Show (or hide) a past run's curves from its ``train_log.jsonl``."""
        record = self.train_state.record(name)
        if record is None:
            return
        if on:
            self.curves.show_run(name, self.train_state.load_series(record), record.arch)
        elif not self.train_state.live(name):
            self.curves.remove_run(name)
        self._set_checked(name, on)

    def _on_run_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.overlay(item.data(0, KEY_ROLE), item.checkState(0) == Qt.CheckState.Checked)

    @Slot()
    def _update_buttons(self) -> None:
        ts = self.train_state
        running, paused = ts.running, ts.paused
        self.start_button.setEnabled(ts.can_start)
        self.pause_button.setEnabled(running)
        self.resume_button.setEnabled(paused or ts.can_resume(self.selected_record()))
        self.stop_button.setEnabled(running or paused)
