"""What the Compare tab's calculator asks of the engine: the ALBERT paper's configurations with
their counts, the figures of the configuration in the fields (newest request wins, so typing
never queues stale work), and "Add to models", a random-initialised model of it.

The fields travel as :class:`~app.compare.calls.ConfigFields`; the engine thread makes the
configuration of them, so a field at fault comes back as ``calculation_failed``'s one line.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.compare import calls as compare_calls
from app.probe.state import CALCULATOR_KEY, AppState

CALCULATE = "calculator"  # engine channel: newest request wins


class CalculatorSession(QObject):
    paper_listed = Signal(list)  # compare_calls.PaperRow of every paper configuration
    calculated = Signal(object)  # compare_calls.CalculatorFigures of the newest request
    calculation_failed = Signal(str)
    added = Signal(str)  # key of the model added to the list
    add_failed = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.paper: list[compare_calls.PaperRow] = []

    def list_paper(self) -> None:
        """Count the paper's configurations (``paper_listed``)."""
        self.state.engine.submit(compare_calls.paper_rows, on_done=self._on_paper_rows)

    def _on_paper_rows(self, rows: list[compare_calls.PaperRow]) -> None:
        self.paper = rows
        self.paper_listed.emit(rows)

    def calculate(
        self,
        fields: compare_calls.ConfigFields,
        batch: int,
        seq: int,
        precision: str,
        optimizer: str,
    ) -> None:
        """The figures of ``fields`` at the memory settings (``calculated``)."""
        self.state.engine.submit_latest(
            CALCULATE,
            compare_calls.calculate_fields,
            fields,
            batch,
            seq,
            precision,
            optimizer,
            on_done=self.calculated.emit,
            on_error=self.calculation_failed.emit,
        )

    def add_model(self, fields: compare_calls.ConfigFields, name: str) -> None:
        """Build a random-initialised model of ``fields`` and list it as ``name`` (``added``)."""

        def done(result) -> None:
            loaded, summary = result
            key = self.state.add_model(loaded, summary, key=CALCULATOR_KEY + name, select=False)
            self.added.emit(key)

        self.state.engine.submit(
            compare_calls.build_config_model,
            fields,
            name,
            on_done=done,
            on_error=self.add_failed.emit,
        )
