"""The Train tab: pretrain BERT and ALBERT from the window and watch them learn.

Left, the form (:class:`TrainForm`) and Start / Pause / Resume / Stop. Right, the live curves
(:class:`TrainCurves`, x = tokens seen, so BERT and ALBERT share the axes), a progress bar with
elapsed time and ETA, the trainer's memory figure and its one-line error if it fails; below,
the run history (tick a run to overlay its curves), the checkpoints (each is also listed in
the Models sidebar: pick one to probe it while the run goes on) and the log's last lines.

Training runs in child processes (:mod:`app.train.runs`); the engine thread only checks the
corpus and names the devices. Closing the window during a run asks whether to stop it (a
checkpoint is saved), keep it training in the background, or not close.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
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
from app.train.runs import (
    EVENTS_FILE,
    TRAIN_LOG,
    RunHistory,
    RunRecord,
    RunSeries,
    TrainSession,
    group_alive,
    read_events,
)
from app.train.train_curves import TrainCurves
from app.train.train_form import TrainForm

log = logging.getLogger(__name__)

REDRAW_MS = 150  # curves redraw at most this often, however fast the steps come
KEY_ROLE = Qt.ItemDataRole.UserRole
CLOSE_CHOICES = ("stop", "background", "cancel")


def default_history_path() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".bertscope") / "runs.json"


def train_history_path(settings: QSettings) -> Path:
    """Run history next to an INI settings file (tests, ``--settings``), else in AppData."""
    if settings.format() == QSettings.Format.IniFormat:
        return Path(settings.fileName()).with_suffix(".runs.json")
    return default_history_path()


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # NaN
        return "--:--"
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_memory(count: int | None) -> str:
    if not count:
        return "\u2014"
    return f"{count / 2**20:,.0f} MB" if count < 2**30 else f"{count / 2**30:.2f} GB"


class TrainView(QWidget):
    probe_requested = Signal(str)  # a checkpoint's model key: the window shows the Probe tab
    compare_requested = Signal(str, str)  # two model keys for the Compare tab
    corpus_checked = Signal(object)  # train_calls.CorpusFigures
    corpus_failed = Signal(str)
    run_started = Signal(object)  # RunRecord
    run_ended = Signal(object, str, str)  # RunRecord, outcome, one-line message
    checkpoint_listed = Signal(str, str)  # model key, name

    def __init__(
        self,
        state: AppState,
        history_path: Path | None = None,
        runs_root: Path | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.session: TrainSession | None = None
        self.sessions: list[TrainSession] = []  # this one and re-attached background ones
        self.series: dict[str, RunSeries] = {}
        self.figures: train_calls.CorpusFigures | None = None
        self._check_generation = 0
        self._pending_start = False
        self._dirty: set[str] = set()

        self.form = TrainForm(runs_root)
        # A damaged history is rebuilt from the run folders, the runs root's among them.
        self.history = RunHistory(
            history_path or default_history_path(), search=[self.form.runs_root()]
        )
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

        self.history.refresh()
        self._fill_runs()
        self._reattach()
        self._update_buttons()
        if self.history.problem:  # said once, here; the bad file is kept beside the history
            self.status.setText(self.history.problem)
            self.status.setToolTip(f"{self.history.path}: {self.history.problem}")
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
            self.state.engine.submit(train_calls.available_devices, on_done=self._on_devices)
            self.check_corpus()

    # -- engine calls --------------------------------------------------------------------------
    @Slot()
    def check_corpus(self) -> None:
        """Run core's corpus check (and counts) on the engine thread; newest wins."""
        self._check_generation += 1
        generation = self._check_generation
        files = self.form.corpus_files()
        self.form.show_corpus_figures("checking the corpus\u2026")
        self.figures = None

        def stale() -> bool:
            return generation != self._check_generation

        # newest wins for results and errors alike (the files changed since: check again)
        self.state.engine.submit(
            train_calls.check_corpus,
            files,
            on_done=lambda figures: None if stale() else self._on_corpus_checked(figures),
            on_error=lambda message: None if stale() else self._on_corpus_failed(message),
            is_stale=stale,
        )

    def _on_corpus_checked(self, figures: train_calls.CorpusFigures) -> None:
        self.figures = figures
        self.form.show_corpus_figures(figures.summary())
        self.corpus_checked.emit(figures)
        if self._pending_start:
            self._pending_start = False
            self._launch()

    def _on_corpus_failed(self, message: str) -> None:
        self.form.show_corpus_figures(message, error=True)
        if self._pending_start:
            self._pending_start = False
            self._show_error(message)
            self._update_buttons()
        self.corpus_failed.emit(message)

    def _on_devices(self, devices: train_calls.Devices) -> None:
        self.form.set_devices(devices.cuda, devices.mps, devices.names)

    # -- control -------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Check the corpus (again), then start the runs the form describes."""
        if self.session is not None and (self.session.running or self.session.paused):
            return
        self._pending_start = True
        self.start_button.setEnabled(False)
        self.status.setText("checking the corpus\u2026")
        self.status.setStyleSheet("")
        self.check_corpus()

    def _launch(self) -> None:
        settings = self.form.settings()
        records = [RunRecord(name=Path(s.out).name, settings=s.to_dict()) for s in settings]
        for record in records:
            self.history.add(record)
        for name in list(self.curves.runs()):
            if not self._overlaid(name):
                self.curves.remove_run(name)
        self._start_session(records, parallel=self.form.parallel)

    def _start_session(self, records: list[RunRecord], parallel: bool = False) -> TrainSession:
        session = TrainSession(self.history, records, parallel, self)
        session.run_started.connect(self._on_run_started)
        session.event_received.connect(self._on_event)
        session.log_received.connect(self._on_log)
        session.run_ended.connect(self._on_run_ended)
        session.state_changed.connect(self._update_buttons)
        self.session = session
        self.sessions.append(session)
        self._fill_runs()
        session.start()
        return session

    @Slot()
    def pause(self) -> None:
        if self.session is not None and self.session.running:
            self.status.setText("pausing: the trainer saves a checkpoint at the end of this step")
            self.session.pause()

    @Slot()
    def resume(self) -> None:
        """Continue the paused session, or the stopped run picked in the list."""
        if self.session is not None and self.session.paused and not self.session.running:
            self.session.resume()
            return
        record = self.selected_record()
        if record is None or not record.resumable or self._live(record.name):
            return
        self.series[record.name] = RunSeries.from_events(read_events(record.out / TRAIN_LOG))
        self._start_session([record])

    @Slot()
    def stop(self) -> None:
        if self.session is not None:
            self.status.setText("stopping: the trainer saves a checkpoint at the end of this step")
            self.session.stop()

    @property
    def running(self) -> bool:
        return any(s.running for s in self.sessions)

    # -- closing the window --------------------------------------------------------------------
    def ask_close(self) -> str:
        """Ask what to do with the runs in progress: "stop", "background" or "cancel"."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Training in progress")
        names = ", ".join(r.name for s in self.sessions for r in s.active)
        box.setText(f"Training is in progress ({names}).")
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
        if not self.running:
            self._stop_followers()
            return True
        choice = self.unattended_close or self.ask_close()
        if choice == "cancel":
            return False
        if choice == "stop":
            for session in self.sessions:
                session.stop()
            for session in self.sessions:
                session.wait()
            QApplication.processEvents()  # deliver the ends (history saved)
        else:
            for session in self.sessions:
                session.detach()
        self._stop_followers()
        self.history.save()
        return True

    def _stop_followers(self) -> None:
        for session in self.sessions:
            for runner in session.runners.values():
                timer = getattr(runner, "timer", None)
                if timer is not None:
                    timer.stop()

    # -- runs training in the background -------------------------------------------------------
    def _reattach(self) -> None:
        """Follow the runs a previous window left training in the background."""
        by_pid: dict[int, list[RunRecord]] = {}
        for record in self.history.records:
            if record.status == "background" and group_alive(record.pid):
                by_pid.setdefault(int(record.pid), []).append(record)
        for records in by_pid.values():
            session = TrainSession(self.history, records, False, self)
            session.run_started.connect(self._on_run_started)
            session.event_received.connect(self._on_event)
            session.log_received.connect(self._on_log)
            session.run_ended.connect(self._on_run_ended)
            session.state_changed.connect(self._update_buttons)
            self.sessions.append(session)
            self.session = session
            for record in records:
                events_path = record.out / EVENTS_FILE
                offset = events_path.stat().st_size if events_path.is_file() else 0
                self.series[record.name] = RunSeries.from_events(
                    read_events(record.out / TRAIN_LOG)
                )
                session.follow(record, offset)
            self.status.setText(
                "re-attached to " + ", ".join(r.name for r in records) + " (training in the "
                "background)"
            )

    # -- reports -------------------------------------------------------------------------------
    def _on_run_started(self, record: RunRecord) -> None:
        series = self.series.setdefault(record.name, RunSeries())
        self.curves.show_run(record.name, series, record.arch)
        for step, folder in record.checkpoints():
            self._list_checkpoint(record, folder, step)
        self.status.setText(f"{record.name}: starting\u2026")
        self.status.setStyleSheet("")
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{record.name}: starting")
        self._fill_runs()
        self._set_checked(record.name, True)
        self.redraw_timer.start()
        self.run_started.emit(record)

    def _on_event(self, record: RunRecord, event: dict) -> None:
        kind = event.get("kind")
        series = self.series.setdefault(record.name, RunSeries())
        series.add(event)
        if kind in ("step", "eval"):
            self._dirty.add(record.name)
        if kind == "prepare":
            fraction = event.get("fraction")
            message = event.get("message") or "preparing"
            if fraction is None:
                self.progress.setRange(0, 0)
            else:
                self.progress.setRange(0, 1000)
                self.progress.setValue(round(1000 * float(fraction)))
            self.progress.setFormat(f"{record.name}: {message}")
        elif kind == "step":
            if self.status.text() == f"{record.name}: starting\u2026":
                self.status.setText(f"{record.name}: training")
            total = int(event.get("total_steps") or 1)
            step = int(event.get("step") or 0)
            self.progress.setRange(0, total)
            self.progress.setValue(step)
            self.progress.setFormat(
                f"{record.name}: step {step:,} / {total:,} \u00b7 "
                f"{format_duration(event.get('elapsed_s'))} elapsed \u00b7 "
                f"ETA {format_duration(event.get('eta_s'))}"
            )
            self.memory.setText(f"memory: {format_memory(event.get('memory_bytes'))}")
        elif kind == "checkpoint" and event.get("checkpoint"):
            self._list_checkpoint(record, Path(event["checkpoint"]), int(event.get("step", 0)))
        elif kind == "done" and event.get("checkpoint"):
            self._list_checkpoint(record, Path(event["checkpoint"]), None)
        elif kind == "error" and event.get("message"):
            self._show_error(f"{record.name}: {event['message']}")
        if kind != "step" or (record.steps_done % 10 == 0):
            self._update_run_row(record)

    def _on_log(self, record: RunRecord, line: str) -> None:
        self.log.appendPlainText(f"[{record.name}] {line}")

    def _on_run_ended(self, record: RunRecord, outcome: str, message: str) -> None:
        self._on_redraw()
        if outcome == "failed":
            self._show_error(f"{record.name} failed: {message}")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat(f"{record.name}: failed")
        else:
            what = {
                "done": "finished",
                "paused": "paused (checkpoint saved; Resume continues)",
                "stopped": "stopped (checkpoint saved)",
                "new": "not started",
            }.get(outcome, outcome)
            self.status.setText(f"{record.name}: {message or what}")
            self.status.setStyleSheet("")
            if outcome == "done":
                self.progress.setRange(0, 1)
                self.progress.setValue(1)
                self.progress.setFormat(f"{record.name}: done")
        self._update_run_row(record)
        self._update_buttons()
        if not self.running:
            self.redraw_timer.stop()
        self.run_ended.emit(record, outcome, message)

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
    def _list_checkpoint(self, record: RunRecord, folder: Path, step: int | None) -> None:
        name = f"{record.name} @ step {step}" if step is not None else f"{record.name} final"
        if not folder.is_dir():
            return
        key = self.state.add_folder(folder, name)
        for i in range(self.checkpoints.count()):
            if self.checkpoints.item(i).data(KEY_ROLE) == key:
                return
        item = QListWidgetItem(name)
        item.setData(KEY_ROLE, key)
        item.setToolTip(str(folder))
        self.checkpoints.addItem(item)
        self.checkpoint_listed.emit(key, name)

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
    def _live(self, name: str) -> bool:
        return any(name in s.runners and s.runners[name].running for s in self.sessions)

    def _fill_runs(self) -> None:
        checked = set(self.curves.runs())
        self.runs.blockSignals(True)
        self.runs.clear()
        for record in reversed(self.history.records):
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
        item.setText(1, record.status)
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
        if not items:
            return None
        name = items[0].data(0, KEY_ROLE)
        return next((r for r in self.history.records if r.name == name), None)

    def overlay(self, name: str, on: bool = True) -> None:
        """Show (or hide) a past run's curves from its ``train_log.jsonl``."""
        record = next((r for r in self.history.records if r.name == name), None)
        if record is None:
            return
        if on:
            if not self._live(name):
                self.series[name] = RunSeries.from_events(read_events(record.out / TRAIN_LOG))
            self.curves.show_run(name, self.series[name], record.arch)
        elif not self._live(name):
            self.curves.remove_run(name)
        self._set_checked(name, on)

    def _on_run_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.overlay(item.data(0, KEY_ROLE), item.checkState(0) == Qt.CheckState.Checked)

    @Slot()
    def _update_buttons(self) -> None:
        session = self.session
        running = self.running
        paused = session is not None and session.paused and not session.running
        record = self.selected_record()
        can_resume_pick = (
            record is not None and record.resumable and not self._live(record.name) and not running
        )
        self.start_button.setEnabled(not running and not paused and not self._pending_start)
        self.pause_button.setEnabled(running)
        self.resume_button.setEnabled(paused or can_resume_pick)
        self.stop_button.setEnabled(running or paused)
