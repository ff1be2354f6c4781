"""The card of the selected model: what it is, its configuration, which pre-training heads it
has, and where its parameters are (``core.cost.params.count_parameters``: unique = stored,
effective = used per token, which differ for ALBERT's shared layers)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.state import AppState
from app.widgets.plot_export import install_table_menu

CONFIG_FIELDS = (
    "model_type", "vocab_size", "hidden_size", "embedding_size", "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "num_hidden_groups", "inner_group_num",
    "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
)  # fmt: skip
HEAD_NAMES = {
    "pooler": "pooler",
    "mlm": "masked LM",
    "nsp": "next sentence (NSP)",
    "sop": "sentence order (SOP)",
}


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # names elide, numbers never
    for col in range(1, len(columns)):
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    table.verticalHeader().setDefaultSectionSize(20)
    install_table_menu(table)  # right-click: export as CSV
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if c > 0:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


class ModelCard(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.title = QLabel("No model selected")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.params = _table(["component", "unique", "effective", "share"])
        self.config = _table(["field", "value"])
        tabs = QTabWidget()
        tabs.addTab(self.params, "Parameters")
        tabs.addTab(self.config, "Config")
        self.tabs = tabs
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(tabs, 1)
        state.current_changed.connect(self._on_current_changed)
        state.models_changed.connect(self._on_models_changed)

    @Slot()
    def _on_models_changed(self) -> None:
        self._on_current_changed(self.state.current_key)

    @Slot(str)
    def _on_current_changed(self, key: str) -> None:
        entry = self.state.entries.get(key)
        if entry is None or entry.summary is None:
            self.title.setText(
                "Loading\u2026" if entry is not None and entry.loading else "No model selected"
            )
            _fill(self.params, [])
            _fill(self.config, [])
            return
        summary = entry.summary
        params = summary.params
        heads = ", ".join(HEAD_NAMES.get(h, h) for h in summary.heads) or "none (encoder only)"
        where = str(entry.path) if entry.path else "built in memory"
        note = (
            "<br><i>random-initialised: predictions are noise until trained weights ship</i>"
            if summary.random_init
            else ""
        )
        self.title.setText(
            f"<b>{summary.name}</b> \u2014 {summary.family.upper()}, {params.total_unique:,} parameters "
            f"({params.total_effective:,} effective)<br>heads: {heads}<br>{where} \u00b7 "
            f"{summary.device_name}{note}"
        )
        rows = [
            [
                name,
                f"{params.unique[name]:,}",
                f"{params.effective[name]:,}",
                f"{params.share(name):.1%}",
            ]
            for name in params.unique
            if params.unique[name] or params.effective[name]
        ]
        rows.append(["total", f"{params.total_unique:,}", f"{params.total_effective:,}", "100%"])
        _fill(self.params, rows)
        config = summary.config
        _fill(
            self.config,
            [
                [name, str(config[name])]
                for name in CONFIG_FIELDS
                if name in config and config[name] is not None
            ],
        )
