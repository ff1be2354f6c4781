"""The sidebar of models: the bundled demos from the start, plus folders the user opens.

Each row shows name, family, parameter count (unique, as stored) and device. Selecting a row
makes it the model the Probe view uses (loading it first, off the GUI thread). Buttons open a
folder, unload, and move a model between CPU and GPU (disabled, with a reason, when there is
no GPU). A busy bar runs while the engine works.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.models.model_card import short_count
from app.probe.calls import RANDOM_SUFFIX
from app.probe.state import AppState, ModelEntry

KEY_ROLE = Qt.ItemDataRole.UserRole
NO_GPU = "No GPU (CUDA or MPS) on this machine: models stay on the CPU"


def format_params(count: int | None) -> str:
    return "\u2014" if count is None else short_count(count)


class ModelManager(QWidget):
    open_clicked = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["model", "family", "params", "device"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        # Every column as wide as its text: an elided "bert-m…tep 50" hides which run and which
        # step; a narrow sidebar scrolls sideways instead.
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setToolTip(
            "Click a model to probe with it; drop a model folder on the window to add one"
        )
        self.open_button = QPushButton("Open\u2026")
        self.open_button.setToolTip("Open a Hugging Face-format BERT/ALBERT folder (Ctrl+O)")
        self.unload_button = QPushButton("Unload")
        self.unload_button.setToolTip("Free the selected model's memory (Ctrl+W)")
        self.move_button = QPushButton("To GPU")
        self.move_button.setToolTip(NO_GPU)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setMaximumHeight(6)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.unload_button)
        buttons.addWidget(self.move_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.busy)
        layout.addLayout(buttons)

        state.models_changed.connect(self._on_models_changed)
        state.current_changed.connect(self._on_current_changed)
        state.busy_changed.connect(self._on_busy_changed)
        state.started.connect(self._on_started)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.tree.itemActivated.connect(self._on_item_clicked)
        self.open_button.clicked.connect(self.open_clicked)
        self.unload_button.clicked.connect(self.unload_current)
        self.move_button.clicked.connect(self.move_current)
        self._on_models_changed()

    # -- rows ------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str, str]]:
        """The text of every row: (model, family, params, device)."""
        return [
            tuple(self.tree.topLevelItem(i).text(c) for c in range(4))
            for i in range(self.tree.topLevelItemCount())
        ]

    def keys(self) -> list[str]:
        return [
            self.tree.topLevelItem(i).data(0, KEY_ROLE)
            for i in range(self.tree.topLevelItemCount())
        ]

    def _row(self, entry: ModelEntry) -> QTreeWidgetItem:
        if entry.loading:
            device = "loading\u2026"
        elif entry.summary is not None:
            device = entry.summary.device
        else:
            device = "not loaded"
        family = {"bert": "BERT", "albert": "ALBERT"}.get(entry.family or "", "?")
        name = entry.label.replace(RANDOM_SUFFIX, "\n" + RANDOM_SUFFIX.strip())
        item = QTreeWidgetItem([name, family, format_params(entry.params), device])
        item.setData(0, KEY_ROLE, entry.key)
        lines = [
            str(entry.path) if entry.path else "in memory",
            entry.label,  # the whole name, whatever the column shows
        ]
        if entry.random_init:
            lines.append("random-initialised (no trained weights yet)")
        if entry.summary is not None:
            lines.append(
                f"{entry.summary.params.total_unique:,} parameters on {entry.summary.device_name}"
            )
        for col in range(4):
            item.setToolTip(col, "\n".join(lines))
        if not entry.is_loaded:
            dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            for col in range(4):
                item.setForeground(col, dim)
        return item

    @Slot()
    def _on_models_changed(self) -> None:
        self.tree.clear()
        for entry in self.state.entries.values():
            self.tree.addTopLevelItem(self._row(entry))
        self._on_current_changed(self.state.current_key)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        self.tree.blockSignals(True)
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setSelected(item.data(0, KEY_ROLE) == key)
            font = item.font(0)
            font.setBold(item.data(0, KEY_ROLE) == key)
            item.setFont(0, font)
        self.tree.blockSignals(False)
        self._update_buttons()

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        self.busy.setVisible(busy)

    @Slot(object)
    def _on_started(self, _info: object) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        entry = self.state.current
        loaded = entry is not None and entry.is_loaded
        self.unload_button.setEnabled(loaded)
        accelerator = self.state.accelerator
        if accelerator is None:
            self.move_button.setEnabled(False)
            self.move_button.setText("To GPU")
            self.move_button.setToolTip(NO_GPU)
            return
        on_gpu = loaded and entry.device is not None and not entry.device.startswith("cpu")
        self.move_button.setText("To CPU" if on_gpu else f"To {accelerator.upper()}")
        self.move_button.setToolTip("Move the selected model between CPU and GPU (Ctrl+G)")
        self.move_button.setEnabled(loaded)

    # -- actions ---------------------------------------------------------------------------
    @Slot(QTreeWidgetItem, int)
    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self.state.select(item.data(0, KEY_ROLE))

    @Slot()
    def unload_current(self) -> None:
        if self.state.current_key:
            self.state.unload(self.state.current_key)

    @Slot()
    def move_current(self) -> None:
        entry, accelerator = self.state.current, self.state.accelerator
        if entry is None or not entry.is_loaded or accelerator is None:
            return
        on_gpu = entry.device is not None and not entry.device.startswith("cpu")
        self.state.move(entry.key, "cpu" if on_gpu else accelerator)
