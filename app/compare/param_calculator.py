"""The parameter calculator: an editable BERT/ALBERT configuration whose parameter breakdown,
memory and FLOPs update as you type, the ALBERT paper's configurations one click away (the
published count beside ours, with the relative difference), and "Add to models", which builds
a random-initialised model of the configuration into the model list so it can be probed,
compared and trained.

All figures are ``core.cost.calculator.calculate`` (counted on the meta device: no weights are
allocated, so BERT-large costs milliseconds), run on the engine thread like every torch call
(newest request wins); the fields are validated here at once, and the model for "Add to
models" is built on the engine thread too.
"""

from __future__ import annotations

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

from app.compare import calls as compare_calls
from app.probe.state import CALCULATOR_KEY, AppState
from app.widgets.plot_export import install_table_menu

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


def _right(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class ParamCalculator(QWidget):
    calculated = Signal(object)  # core.cost.calculator.Calculation
    paper_filled = Signal()  # the paper's configurations are counted and listed
    added = Signal(str)  # key of the model added to the list

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.calculation = None
        self.error = ""
        self._loading = False
        self.generation = 0  # newest calculation request (newest wins)
        self.paper_rows: list = []
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

        self._fill_paper()
        self.load_paper_config(2)  # ALBERT-base
        for spin in (*self.spins.values(), self.batch, self.seq):
            spin.valueChanged.connect(self._on_edited)
        for box in (self.family, self.sharing, self.precision, self.optimizer):
            box.currentIndexChanged.connect(self._on_edited)
        self.paper.cellClicked.connect(lambda row, _col: self.load_paper_config(row))
        self.add_button.clicked.connect(self._on_add)

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

    def config(self):
        """The configuration on screen (``ConfigError`` names the field at fault)."""
        from core.cost.calculator import make_config

        v = self.values()
        return make_config(
            self.family.currentText(), v["vocab"], v["embedding"], v["hidden"], v["layers"],
            v["heads"], v["ffn"], self.sharing.currentText(), v["groups"], v["inner"],
            v["positions"],
        )  # fmt: skip

    def set_config(self, config) -> None:
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
        from core.cost.calculator import PAPER_CONFIGS

        paper = PAPER_CONFIGS[row]
        self.loaded_label = f"{paper.label} ({paper.table})"
        self.status.setText(self.loaded_label)
        self.set_config(paper.config)
        self.selected_row = row
        self.paper.selectRow(row)

    def _fill_paper(self) -> None:
        """Count the paper's configurations in the engine thread, then fill the table."""
        self.state.engine.submit(compare_calls.paper_rows, on_done=self._on_paper_rows)

    def _on_paper_rows(self, rows: list) -> None:
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
        if self.selected_row is not None and self.loaded_label:
            self.paper.selectRow(self.selected_row)
        self.paper_filled.emit()

    # -- results -------------------------------------------------------------------------------
    @Slot()
    def _on_edited(self, *_args) -> None:
        if not self._loading:
            self.loaded_label = ""  # edited: no longer the paper's configuration
            self.recalculate()

    def recalculate(self) -> int:
        """Recompute everything from the fields in the engine thread (newest wins); a bad
        field shows its one-line message at once. Returns the request's generation."""
        from core.errors import BertScopeError

        albert = self.family.currentText() == "albert"
        all_shared = self.sharing.currentText() == "all"
        self.spins["embedding"].setEnabled(albert)
        self.sharing.setEnabled(albert)
        for name in ("groups", "inner"):
            self.spins[name].setEnabled(albert and all_shared)
        self.generation += 1
        generation = self.generation
        try:
            config = self.config()  # validation only: plain Python, no torch
        except BertScopeError as err:
            self._on_failed(generation, str(err))
            return generation
        self.state.engine.submit(
            compare_calls.calculate_config,
            config,
            self.batch.value(),
            self.seq.value(),
            self.precision.currentText(),
            self.optimizer.currentText(),
            on_done=lambda calc: self._on_calculated(generation, calc),
            on_error=lambda message: self._on_failed(generation, message),
            is_stale=lambda: generation != self.generation,
        )
        return generation

    def _on_failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        self.error = message
        self.status.setText(message)
        self.add_button.setEnabled(False)

    def _on_calculated(self, generation: int, calc) -> None:
        self.error = ""
        self.add_button.setEnabled(True)
        if self.status.text() and not self.status.text().startswith(("added", "building")):
            self.status.setText(self.loaded_label)
        self.calculation = calc
        self._show(calc)
        self.calculated.emit(calc)

    def _show(self, calc) -> None:
        from core.cost.params import evaluate_formula
        from core.cost.tradeoff import MEMORY_GROUPS, format_value, memory_groups

        p = calc.params
        self.total.setText(
            f"{p.total_unique:,} parameters stored ({p.backbone_unique / 1e6:,.1f}M backbone "
            f"without heads), {p.total_effective:,} per token; embeddings "
            f"{p.embedding_share:.1%} of the stored count"
        )
        self.breakdown.setRowCount(len(p.components) + 1)
        for row, comp in enumerate(p.components):
            form = comp.formula
            try:
                check = evaluate_formula(form, p.symbols)
                tip = f"{form} = {check:,} with " + ", ".join(
                    f"{k}={v:,}" for k, v in p.symbols.items()
                )
            except Exception:  # a formula with words in it ("0 (BERT: ...)")
                tip = form
            cells = [
                QTableWidgetItem(comp.component),
                _right(f"{comp.unique:,}"),
                _right(f"{comp.effective:,}"),
                QTableWidgetItem(form),
            ]
            for col, item in enumerate(cells):
                item.setToolTip(tip + "\nsource: core.cost.params.param_report")
                self.breakdown.setItem(row, col, item)
        last = len(p.components)
        for col, text in enumerate(
            ["total", f"{p.total_unique:,}", f"{p.total_effective:,}", "sum of the components"]
        ):
            item = _right(text) if col in (1, 2) else QTableWidgetItem(text)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            self.breakdown.setItem(last, col, item)
        rows = []
        for label, est in (("training", calc.training), ("inference", calc.inference)):
            present = {i.name: i.formula for i in est.items}
            for group, value in memory_groups(est).items():
                if value:
                    form = "; ".join(present[n] for n in MEMORY_GROUPS[group] if n in present)
                    rows.append((f"{label}: {group}", format_value(value, "bytes"), form))
            rows.append(
                (f"{label}: peak", format_value(est.total, "bytes"), est.item("peak").formula)
            )
        rows.append(
            ("forward FLOPs / token", format_value(calc.flops.forward_per_token, "FLOPs"),
             "sum of " + " + ".join(calc.flops.formulas[k] for k in calc.flops.terms))
        )  # fmt: skip
        rows.append(
            ("training FLOPs / token", format_value(calc.flops.training_per_token, "FLOPs"),
             calc.flops.formulas["training"])
        )  # fmt: skip
        self.memory.setRowCount(len(rows))
        est = calc.training
        settings = f"B={est.batch}, T={est.seq}, {est.precision}, {est.optimizer}"
        for row, (label, value, formula) in enumerate(rows):
            tip = f"{formula or label}\nsource: core.cost ({settings})"
            for col, item in enumerate(
                [QTableWidgetItem(label), _right(value), QTableWidgetItem(formula)]
            ):
                item.setToolTip(tip)
                self.memory.setItem(row, col, item)

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
        from core.errors import BertScopeError

        try:
            config = self.config()
        except BertScopeError as err:
            self.status.setText(str(err))
            return
        name = self.model_name()
        self.add_button.setEnabled(False)
        self.status.setText(f"building {name}\u2026")

        def done(result) -> None:
            loaded, summary = result
            key = self.state.add_model(loaded, summary, key=CALCULATOR_KEY + name, select=False)
            self.add_button.setEnabled(True)
            self.status.setText(f"added {name} to the models (random init)")
            self.added.emit(key)

        def failed(message: str) -> None:
            self.add_button.setEnabled(True)
            self.status.setText(message)

        self.state.engine.submit(
            compare_calls.build_config_model, config, name, on_done=done, on_error=failed
        )
