"""The parameter calculator: an editable BERT/ALBERT configuration whose parameter breakdown,
memory and FLOPs update as you type, the ALBERT paper's configurations one click away (the
published count beside ours, with the relative difference), and "Add to models", which builds
a random-initialised model of the configuration into the model list so it can be probed,
compared and trained.

All figures are ``core.cost.calculator.calculate`` (counted on the meta device: no weights are
allocated, so BERT-large costs milliseconds), asked of the engine thread through the
:class:`~app.compare.calculator_session.CalculatorSession` (newest request wins), which also
checks the fields (a field at fault comes back as one line) and builds the model for "Add to
models"; this view places the text it gets back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.compare.calculator_session import CalculatorSession
from app.compare.calls import CalculatorFigures, ConfigFields, PaperRow, TableLine
from app.widgets.plot_export import install_table_menu

if TYPE_CHECKING:  # pragma: no cover
    from core.config import ModelConfig

FIELDS = (  # attribute, label, minimum, maximum, tooltip
    ("vocab", "V (vocabulary)", 1, 1_000_000, "rows of the word-embedding table"),
    ("embedding", "E (embedding width)", 1, 65536, "ALBERT's factorized embedding width"),
    ("hidden", "H (hidden size)", 1, 65536, "width of every encoder layer"),
    ("layers", "layers", 1, 512, "encoder layers (ALBERT: outer layers)"),
    ("heads", "heads", 1, 1024, "attention heads per layer; H must divide by it"),
    ("ffn", "feed-forward size", 1, 262144, "feed-forward width, 4H in both papers"),
    ("groups", "groups", 1, 512, "ALBERT, sharing all: groups of layers with their own weights"),
    ("inner", "inner layers", 1, 64, "ALBERT, sharing all: layers inside a group"),
    ("positions", "positions", 1, 65536, "longest sequence (position embeddings)"),
)
SHARING = ("all", "attention", "ffn", "none")
DEFAULT_ROW = 2  # the paper configuration the fields open with: ALBERT-base


def _right(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _fill(table: QTableWidget, lines: list[TableLine], right: tuple[int, ...]) -> None:
    """Put ``lines`` into ``table``, the columns in ``right`` right-aligned."""
    table.setRowCount(len(lines))
    for row, line in enumerate(lines):
        for col, text in enumerate(line.cells):
            item = _right(text) if col in right else QTableWidgetItem(text)
            if line.tip:
                item.setToolTip(line.tip)
            if line.bold:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            table.setItem(row, col, item)


class ParamCalculator(QWidget):
    calculated = Signal(object)  # core.cost.calculator.Calculation
    paper_filled = Signal()  # the paper's configurations are counted and listed
    added = Signal(str)  # key of the model added to the list

    def __init__(self, session: CalculatorSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.calculation = None  # core.cost.calculator.Calculation on screen
        self.error = ""
        self._loading = False
        self._adding = ""  # name of the model being built for "Add to models"
        self.paper_rows: list[PaperRow] = []
        self.loaded_label = ""  # which paper configuration the fields hold, if any
        self.selected_row: int | None = None
        self.family = QComboBox()
        self.family.addItems(["albert", "bert"])
        self.sharing = QComboBox()
        self.sharing.addItems(SHARING)
        self.sharing.setToolTip(
            "ALBERT cross-layer sharing (paper Table 4): all, attention only, FFN only, none"
        )
        self.spins: dict[str, QSpinBox] = {}
        form = QFormLayout()
        form.addRow("family", self.family)
        for name, label, low, high, tip in FIELDS:
            spin = QSpinBox()
            spin.setRange(low, high)
            spin.setGroupSeparatorShown(True)
            spin.setToolTip(tip)
            spin.setKeyboardTracking(True)  # update as you type
            self.spins[name] = spin
            form.addRow(label, spin)
        form.addRow("sharing", self.sharing)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(8)
        self.seq = QSpinBox()
        self.seq.setRange(1, 65536)
        self.seq.setValue(128)
        self.precision = QComboBox()
        self.precision.addItems(["fp32", "bf16", "fp16"])
        self.optimizer = QComboBox()
        self.optimizer.addItems(["adamw", "lamb"])
        form.addRow("batch (memory)", self.batch)
        form.addRow("length (memory)", self.seq)
        form.addRow("precision", self.precision)
        form.addRow("optimizer", self.optimizer)
        self.add_button = QPushButton("Add to models")
        self.add_button.setToolTip(
            "Build a random-initialised model of this configuration into the model list"
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        config_box = QGroupBox("Configuration")
        config_layout = QVBoxLayout(config_box)
        config_layout.addLayout(form)
        config_layout.addWidget(self.add_button)
        config_layout.addWidget(self.status)
        config_layout.addStretch(1)

        self.total = QLabel("")
        font = QFont(self.total.font())
        font.setBold(True)
        self.total.setFont(font)
        self.total.setWordWrap(True)
        self.breakdown = self._table(
            "calculator-breakdown", ["component", "unique", "effective", "formula (unique)"]
        )
        self.memory = self._table("calculator-memory", ["figure", "value", "formula"])
        self.paper = self._table(
            "calculator-paper", ["configuration", "table", "published", "ours", "difference"]
        )
        self.paper.setToolTip("Click a row to load that configuration")
        self.footnote = QLabel("")
        self.footnote.setWordWrap(True)
        results = QGridLayout()
        results.addWidget(self.total, 0, 0, 1, 2)
        results.addWidget(self.breakdown, 1, 0)
        results.addWidget(self.memory, 1, 1)
        results.addWidget(
            QLabel("ALBERT paper configurations (Lan et al. 2020, Tables 1 and 4)"), 2, 0, 1, 2
        )
        results.addWidget(self.paper, 3, 0, 1, 2)
        results.addWidget(self.footnote, 4, 0, 1, 2)
        results.setRowStretch(1, 3)
        results.setRowStretch(3, 4)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(config_box)
        layout.addLayout(results, 1)

        for spin in (*self.spins.values(), self.batch, self.seq):
            spin.valueChanged.connect(self._on_edited)
        for box in (self.family, self.sharing, self.precision, self.optimizer):
            box.currentIndexChanged.connect(self._on_edited)
        self.paper.cellClicked.connect(lambda row, _col: self.load_paper_config(row))
        self.add_button.clicked.connect(self._on_add)
        session.paper_listed.connect(self._on_paper_rows)
        session.calculated.connect(self._on_calculated)
        session.calculation_failed.connect(self._on_failed)
        session.added.connect(self._on_added)
        session.add_failed.connect(self._on_add_failed)
        if session.paper:
            self._on_paper_rows(session.paper)
        else:
            session.list_paper()  # then the fields open on DEFAULT_ROW

    def _table(self, name: str, header: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(header))
        table.setObjectName(name)
        table.setHorizontalHeaderLabels(header)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setAlternatingRowColors(True)
        hh = table.horizontalHeader()
        for col in range(len(header) - 1):
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hh.setStretchLastSection(True)
        install_table_menu(table)
        return table

    # -- configuration -------------------------------------------------------------------------
    def values(self) -> dict:
        return {name: spin.value() for name, spin in self.spins.items()}

    def fields(self) -> ConfigFields:
        """The configuration's fields as typed (the engine thread checks them)."""
        v = self.values()
        return ConfigFields(
            self.family.currentText(), v["vocab"], v["embedding"], v["hidden"], v["layers"],
            v["heads"], v["ffn"], self.sharing.currentText(), v["groups"], v["inner"],
            v["positions"],
        )  # fmt: skip

    def config(self) -> ModelConfig | None:
        """The configuration of the figures on screen (None before the first calculation)."""
        return self.calculation.config if self.calculation is not None else None

    def set_config(self, config: ModelConfig) -> None:
        """Put ``config`` into the fields (one recalculation, not one per field)."""
        self._loading = True
        try:
            self.family.setCurrentText(config.model_type)
            values = {
                "vocab": config.vocab_size,
                "embedding": config.embedding_dim,
                "hidden": config.hidden_size,
                "layers": config.num_hidden_layers,
                "heads": config.num_attention_heads,
                "ffn": config.intermediate_size,
                "groups": config.num_hidden_groups,
                "inner": config.inner_group_num,
                "positions": config.max_position_embeddings,
            }
            for name, value in values.items():
                self.spins[name].setValue(value)
            self.sharing.setCurrentText(config.sharing)
        finally:
            self._loading = False
        self.recalculate()

    def load_paper_config(self, row: int) -> None:
        paper = self.paper_rows[row]
        self.loaded_label = f"{paper.label} ({paper.table})"
        self.status.setText(self.loaded_label)
        self.set_config(paper.config)
        self.selected_row = row
        self.paper.selectRow(row)

    @Slot(list)
    def _on_paper_rows(self, rows: list[PaperRow]) -> None:
        self.paper.setRowCount(len(rows))
        notes = []
        for r, row in enumerate(rows):
            cells = [
                QTableWidgetItem(row.label + (" *" if row.note else "")),
                QTableWidgetItem(row.table),
                _right(f"{row.published / 1e6:,.0f}M"),
                _right(f"{row.ours / 1e6:,.1f}M"),
                _right(f"{row.difference:+.1%}"),
            ]
            for col, item in enumerate(cells):
                if row.note:
                    item.setToolTip(row.note)
                self.paper.setItem(r, col, item)
            if row.note:
                notes.append(f"* {row.note}")
        self.footnote.setText(
            "Counts are the backbone (encoder + pooler, no pre-training heads), as the paper "
            "prints them. " + " ".join(notes)
        )
        self.paper_rows = rows
        if self.selected_row is None and self.calculation is None:
            self.load_paper_config(DEFAULT_ROW)
        elif self.selected_row is not None and self.loaded_label:
            self.paper.selectRow(self.selected_row)
        self.paper_filled.emit()

    # -- results -------------------------------------------------------------------------------
    @Slot()
    def _on_edited(self, *_args) -> None:
        if not self._loading:
            self.loaded_label = ""  # edited: no longer the paper's configuration
            self.recalculate()

    def recalculate(self) -> None:
        """Recompute everything from the fields in the engine thread (newest wins); a bad field
        comes back as its one-line message."""
        albert = self.family.currentText() == "albert"
        all_shared = self.sharing.currentText() == "all"
        self.spins["embedding"].setEnabled(albert)
        self.sharing.setEnabled(albert)
        for name in ("groups", "inner"):
            self.spins[name].setEnabled(albert and all_shared)
        self.session.calculate(
            self.fields(),
            self.batch.value(),
            self.seq.value(),
            self.precision.currentText(),
            self.optimizer.currentText(),
        )

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error = message
        self.status.setText(message)
        self.add_button.setEnabled(False)

    @Slot(object)
    def _on_calculated(self, figures: CalculatorFigures) -> None:
        self.error = ""
        self.add_button.setEnabled(True)
        if self.status.text() and not self.status.text().startswith(("added", "building")):
            self.status.setText(self.loaded_label)
        self.calculation = figures.calculation
        self.total.setText(figures.total)
        _fill(self.breakdown, figures.breakdown, right=(1, 2))
        _fill(self.memory, figures.memory, right=(1,))
        self.calculated.emit(figures.calculation)

    # -- add to models -------------------------------------------------------------------------
    def model_name(self) -> str:
        v = self.values()
        family = self.family.currentText()
        name = f"{family}-H{v['hidden']}-L{v['layers']}"
        if family == "albert":
            name += f"-E{v['embedding']}-{self.sharing.currentText()}"
        return name

    @Slot()
    def _on_add(self) -> None:
        name = self.model_name()
        self.add_button.setEnabled(False)
        self.status.setText(f"building {name}\u2026")
        self._adding = name
        self.session.add_model(self.fields(), name)

    @Slot(str)
    def _on_added(self, key: str) -> None:
        self.add_button.setEnabled(True)
        self.status.setText(f"added {self._adding} to the models (random init)")
        self.added.emit(key)

    @Slot(str)
    def _on_add_failed(self, message: str) -> None:
        self.add_button.setEnabled(True)
        self.status.setText(message)
