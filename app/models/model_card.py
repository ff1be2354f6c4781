"""The card of the selected model: what it is, its configuration, which pre-training heads it
has, and where its parameters are (``core.cost.params.count_parameters``: unique = stored,
effective = used per token, which differ for ALBERT's shared layers), as a table and as bars
that fill the card's height."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Slot
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPalette
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.probe.state import AppState
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


def short_count(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.1f}M"
    if count >= 1_000:
        return f"{count / 1e3:.0f}k"
    return str(count)


class ParameterBars(QWidget):
    """Parameters by component as horizontal bars: unique (stored) filled, effective (used per
    token) as an outline around it, so ALBERT's shared layers show as a long outline around a
    short bar. All bars share one scale, the largest effective count."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[tuple[str, int, int]] = []  # component, unique, effective
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(60)

    def set_rows(self, rows: list[tuple[str, int, int]]) -> None:
        self.rows = rows
        self.setToolTip(
            "\n".join(f"{n}: {u:,} stored, {e:,} used per token" for n, u, e in rows)
            if rows
            else ""
        )
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(240, 22 * max(3, len(self.rows)) + 24)

    def paintEvent(self, event) -> None:  # Qt API
        if not self.rows:
            return
        painter = QPainter(self)
        palette = self.palette()
        fm = QFontMetricsF(self.font())
        label_w = max(fm.horizontalAdvance(n) for n, _, _ in self.rows) + 8
        value_w = fm.horizontalAdvance("00.0M / 00.0M") + 6
        key_h = fm.height() + 4
        height = min(30.0, (self.height() - key_h) / len(self.rows))
        bar_h = min(18.0, height * 0.7)
        left, right = label_w, self.width() - value_w
        scale = max(e for _, _, e in self.rows) or 1
        fill = palette.color(QPalette.ColorRole.Highlight)
        text = palette.color(QPalette.ColorRole.WindowText)
        painter.setPen(text)
        painter.drawText(
            QRectF(0, 0, self.width(), key_h),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            "\u25a0 unique (stored)   \u25a1 effective (used per token)",
        )
        for i, (name, unique, effective) in enumerate(self.rows):
            y = key_h + i * height + (height - bar_h) / 2
            painter.setPen(text)
            painter.drawText(
                QRectF(0, y, label_w - 6, bar_h),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                name,
            )
            span = max(1.0, right - left - 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRect(QRectF(left, y, span * unique / scale, bar_h))
            if effective != unique:
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(QColor(fill).darker(130))
                painter.drawRect(QRectF(left, y, span * effective / scale, bar_h))
            painter.setPen(text)
            value = short_count(unique)
            if effective != unique:
                value += f" / {short_count(effective)}"
            painter.drawText(
                QRectF(right, y, value_w, bar_h),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                value,
            )
        painter.end()


class ModelCard(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.title = QLabel("No model selected")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.params = _table(["component", "unique", "effective", "share"])
        self.params.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.params.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.bars = ParameterBars()
        self.config = _table(["field", "value"])
        params_page = QWidget()
        params_layout = QVBoxLayout(params_page)
        params_layout.setContentsMargins(0, 0, 0, 0)
        params_layout.addWidget(self.params)
        params_layout.addWidget(self.bars, 1)
        tabs = QTabWidget()
        tabs.addTab(params_page, "Parameters")
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
            self.bars.set_rows([])
            return
        summary = entry.summary
        params = summary.params
        heads = ", ".join(HEAD_NAMES.get(h, h) for h in summary.heads) or "none (encoder only)"
        heads += summary.objective_note
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
        self.bars.set_rows([(r[0], params.unique[r[0]], params.effective[r[0]]) for r in rows])
        rows.append(["total", f"{params.total_unique:,}", f"{params.total_effective:,}", "100%"])
        _fill(self.params, rows)
        # the table as tall as its rows; the bars take the rest of the card
        header = self.params.horizontalHeader().height()
        self.params.setFixedHeight(header + 20 * len(rows) + 4)
        config = summary.config
        _fill(
            self.config,
            [
                [name, str(config[name])]
                for name in CONFIG_FIELDS
                if name in config and config[name] is not None
            ],
        )
