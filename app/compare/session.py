"""What the Compare tab knows: the two models picked, the sentence, both probes, and the cost
comparison (predicted at once, measured on request); the calculator's work is its
:class:`~app.compare.calculator_session.CalculatorSession`.

Probing follows the Probe tab's "newest wins" (``Engine.submit_latest`` on its channel): a
queued probe that a newer request superseded is skipped and a late result is dropped. The
predicted figures come from ``core``'s memory, FLOPs and parameter *models*, which only read
the two configurations (meta device, milliseconds): an engine job per settings change, newest
wins. The measurement is an engine job too (a generator: progress after each step,
cancellable); changing a setting cancels it. Exporting the comparison writes on the engine
thread as well. Every result reaches the views by signal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.compare import calls as compare_calls
from app.compare.calculator_session import CalculatorSession
from app.engine import Job
from app.probe.state import AppState, ModelEntry

if TYPE_CHECKING:  # pragma: no cover
    from core.cost.compare import Comparison

DEFAULT_PAIR = ("bert-mini", "albert-mini")
PROBE, COST = "compare-probe", "compare-cost"  # engine channels: newest request wins on each


class CompareSession(QObject):
    models_changed = Signal(str, str)  # keys of model A and model B
    probe_requested = Signal(int)  # number of the request (self.generation)
    probed = Signal(object)  # compare_calls.CompareBundle of the newest request
    probe_failed = Signal(str)
    costed = Signal(object)  # compare_calls.CostFigures (predicted; measured once measured)
    cost_failed = Signal(str)
    measure_progress = Signal(object)  # core.cost.tradeoff.MeasureProgress
    measured = Signal(object)  # Comparison with measurements
    measure_failed = Signal(str)
    measure_cancelled = Signal()
    exported = Signal(str)  # path written
    export_failed = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.key_a, self.key_b = self._default_keys()
        self.calculator = CalculatorSession(state, self)
        self.generation = 0  # probe requests so far (0: the tab has compared nothing yet)
        self.text = ""
        self.pair: str | None = None
        self.bundle: compare_calls.CompareBundle | None = None
        self.figures: compare_calls.CostFigures | None = None  # the cost panel's, from core
        self.batch, self.seq, self.precision, self.optimizer = 8, 0, "fp32", "adamw"  # seq 0: fit
        self.measure_job: Job | None = None
        self.last_probe_job: Job | None = None
        self._pending_probe = False
        state.loaded.connect(self._on_model_loaded)
        state.load_failed.connect(self._on_load_failed)

    # -- models ------------------------------------------------------------------------------
    def _default_keys(self) -> tuple[str, str]:
        keys = list(self.state.entries)
        wanted = [f"demo:{name}" for name in DEFAULT_PAIR]
        if all(k in self.state.entries for k in wanted):
            return wanted[0], wanted[1]
        keys += keys  # fewer than two models: compare one with itself
        return (keys[0], keys[1]) if keys else ("", "")

    @property
    def comparison(self) -> Comparison | None:
        """The core.cost.compare.Comparison on screen (None before both models were costed)."""
        return self.figures.comparison if self.figures is not None else None

    @property
    def entries(self) -> tuple[ModelEntry | None, ModelEntry | None]:
        return self.state.entries.get(self.key_a), self.state.entries.get(self.key_b)

    def set_models(self, key_a: str, key_b: str) -> None:
        """Compare ``key_a`` with ``key_b`` (loaded first if needed); re-probes and re-costs."""
        if (key_a, key_b) == (self.key_a, self.key_b):
            return
        self.key_a, self.key_b = key_a, key_b
        self.cancel_measure()
        self.models_changed.emit(key_a, key_b)
        if self.text:
            self.request_probe(self.text, self.pair)

    def _ensure_loaded(self) -> bool:
        """True when both models are in memory; otherwise ask the state to load them."""
        ready = True
        for entry in self.entries:
            if entry is None:
                return False
            if not entry.is_loaded:
                ready = False
                if not entry.loading:
                    self.state.load(entry.key, select=False)
        return ready

    def _on_model_loaded(self, key: str) -> None:
        if key in (self.key_a, self.key_b) and self._pending_probe:
            self._submit_probe()

    def _on_load_failed(self, _source: str, message: str) -> None:
        if self._pending_probe:
            self._pending_probe = False
            self.probe_failed.emit(message)

    # -- probing -------------------------------------------------------------------------------
    def request_probe(self, text: str, pair: str | None = None) -> int:
        """Probe ``text`` (and ``pair``) with both models; returns the request's number."""
        self.generation += 1
        self.text, self.pair = text, (pair or None)
        self.state.engine.invalidate(PROBE)  # an older sentence's probe never lands now
        self._pending_probe = False
        self.probe_requested.emit(self.generation)
        if not text.strip():
            self.probe_failed.emit("empty text: type a sentence to compare")
            return self.generation
        if None in self.entries:
            self.probe_failed.emit("pick two models to compare")
            return self.generation
        self._submit_probe()
        return self.generation

    def _submit_probe(self) -> None:
        if not self._ensure_loaded():
            self._pending_probe = True  # submitted when the models have loaded
            return
        self._pending_probe = False
        a, b = (e.loaded for e in self.entries)
        job: Job | None = None

        def done(bundle: compare_calls.CompareBundle) -> None:
            self.bundle = bundle
            self.last_probe_job = job
            self.probed.emit(bundle)
            self.update_cost()

        job = self.state.engine.submit_latest(
            PROBE,
            compare_calls.run_compare_probe,
            a,
            b,
            self.text,
            self.pair,
            self.state.top_k,
            on_done=done,
            on_error=self.probe_failed.emit,
        )

    # -- cost --------------------------------------------------------------------------------
    def set_cost_settings(self, batch: int, seq: int, precision: str, optimizer: str) -> None:
        """Batch, sequence length (0: the longest both models allow, up to 128), precision and
        optimizer of the memory figures; the predicted ones update at once."""
        changed = (batch, seq, precision, optimizer) != (
            self.batch,
            self.seq,
            self.precision,
            self.optimizer,
        )
        self.batch, self.seq, self.precision, self.optimizer = batch, seq, precision, optimizer
        if changed:
            self.cancel_measure()
            self.update_cost()

    def update_cost(self) -> None:
        """Recompute the predicted comparison of the two loaded models (meta-device counts) in
        the engine thread, newest request wins."""
        a, b = self.entries
        if a is None or b is None or not a.is_loaded or not b.is_loaded:
            return
        bundle = self.bundle
        layers = (bundle.a.layers, bundle.b.layers) if bundle is not None else (None, None)
        tokens = (
            (bundle.a.result.token_strings, bundle.b.result.token_strings)
            if bundle is not None
            else (None, None)
        )
        self.state.engine.submit_latest(
            COST,
            compare_calls.predict_cost,
            a.loaded,
            b.loaded,
            self.text,
            self.batch,
            self.seq or None,
            self.precision,
            self.optimizer,
            layers,
            tokens,
            on_done=self._on_costed,
            on_error=self.cost_failed.emit,
        )

    def _on_costed(self, figures: compare_calls.CostFigures) -> None:
        self.figures = figures
        self.costed.emit(figures)

    def measure(self, runs: int = 5) -> Job | None:
        """Measure both models' memory and latency on the engine thread."""
        a, b = self.entries
        if self.comparison is None or a is None or b is None or not (a.is_loaded and b.is_loaded):
            self.measure_failed.emit("load both models first")
            return None
        self.cancel_measure()
        settings = self._settings_key()

        job: Job | None = None

        def forget() -> None:
            if self.measure_job is job:
                self.measure_job = None

        def done(figures: compare_calls.CostFigures) -> None:
            forget()
            if settings == self._settings_key():  # the settings did not change meanwhile
                self.figures = figures
                self.measured.emit(figures.comparison)
                self.costed.emit(figures)

        def failed(message: str) -> None:
            forget()
            self.measure_failed.emit(message)

        def cancelled() -> None:
            forget()
            self.measure_cancelled.emit()

        job = self.measure_job = self.state.engine.submit(
            compare_calls.run_measure,
            self.comparison,
            a.loaded,
            b.loaded,
            runs,
            on_done=done,
            on_error=failed,
            on_progress=self.measure_progress.emit,
            on_cancelled=cancelled,
        )
        return self.measure_job

    def _settings_key(self) -> tuple:
        return (self.key_a, self.key_b, self.batch, self.seq, self.precision, self.optimizer)

    def cancel_measure(self) -> None:
        if self.measure_job is not None:
            self.measure_job.cancel()

    # -- export ------------------------------------------------------------------------------
    def export(self, path: str | Path, images: dict[str, bytes] | None = None) -> None:
        """Write the comparison on screen to ``path`` (.json, .csv or .html with ``images``,
        the plots as PNG bytes by caption) in the engine thread."""
        if self.comparison is None:
            self.export_failed.emit("nothing to export: compare a sentence first")
            return
        self.state.engine.submit(
            compare_calls.export_comparison,
            self.comparison,
            Path(path),
            images,
            on_done=lambda written: self.exported.emit(str(written)),
            on_error=self.export_failed.emit,
        )
