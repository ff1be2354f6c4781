"""What the window knows: the models in the sidebar, which one is current, and the latest probe.

:class:`AppState` is the only object that submits the Probe tab's engine jobs, each with its own
callbacks. Views observe it through its signals and never call ``core`` themselves. Probing
follows "newest wins" (``Engine.submit_latest`` on the probe channel): a queued probe that a
newer request superseded is skipped by the worker, and a result that arrives after a newer
request is dropped, so a slow sentence never overwrites a newer one. Word-level attention (the
heatmap's "words") is computed on the engine thread too, for the probe on screen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.engine import Engine, Job
from app.probe import calls as engine_calls

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.probe import ProbeResult
    from core.analysis.summary import ProbeAnalysis
    from core.loaded_model import LoadedModel

log = logging.getLogger(__name__)

PROBE, MASK, WORDS = "probe", "mask", "words"  # engine channels: newest request wins on each
CALCULATOR_KEY = "calculator:"  # models the Compare tab's calculator built (Add to models)
NO_MODEL = "no model loaded: pick one in the Models list or open a model folder (Ctrl+O)"


@dataclass
class ModelEntry:
    """One row of the model list: a demo (loaded or not) or a folder the user opened."""

    key: str  # "demo:<name>" or the folder's resolved path
    name: str
    family: str | None  # "bert" / "albert", None until known
    path: Path | None  # checkpoint folder (None for a random-initialised demo)
    demo: bool = False
    random_init: bool = False
    loaded: LoadedModel | None = None  # once loaded
    summary: engine_calls.ModelRow | None = None
    loading: bool = False
    named: bool = False  # keeps its given name once loaded (a training run's checkpoint)

    @property
    def is_loaded(self) -> bool:
        return self.loaded is not None

    @property
    def label(self) -> str:
        """The name as listed: a random-initialised model says so (a stand-in's name carries
        the mark already; a calculator-built model's does not, it names a configuration)."""
        if self.random_init and not self.name.endswith(engine_calls.RANDOM_SUFFIX):
            return self.name + engine_calls.RANDOM_SUFFIX
        return self.name

    @property
    def params(self) -> int | None:
        return self.summary.params.total_unique if self.summary else None

    @property
    def device(self) -> str | None:
        return self.summary.device if self.summary else None


def _read_family(folder: Path) -> str | None:
    """The model_type of a folder's config.json, read without importing the engine."""
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    family = data.get("model_type") if isinstance(data, dict) else None
    return family if family in ("bert", "albert") else None


def discover_demos(root: Path = engine_calls.DEMO_ROOT) -> list[ModelEntry]:
    """Every folder under ``resources/models`` with a config.json, then a random-initialised
    stand-in for each standard demo that is not there yet."""
    entries: list[ModelEntry] = []
    folders = (
        sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    )
    order = {name: i for i, name in enumerate(engine_calls.DEMO_NAMES)}
    folders.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    for folder in folders:
        entries.append(
            ModelEntry(
                key=f"demo:{folder.name}",
                name=folder.name,
                family=_read_family(folder),
                path=folder,
                demo=True,
            )
        )
    present = {e.name for e in entries}
    for name in engine_calls.DEMO_NAMES:
        if name not in present:
            entries.append(
                ModelEntry(
                    key=f"demo:{name}",
                    name=name + engine_calls.RANDOM_SUFFIX,
                    family="albert" if name.startswith("albert") else "bert",
                    path=None,
                    demo=True,
                    random_init=True,
                )
            )
    return entries


class AppState(QObject):
    started = Signal(object)  # engine_calls.EngineInfo: torch and core are imported
    models_changed = Signal()  # rows added, removed or updated
    current_changed = Signal(str)  # key of the selected model ("" for none)
    loaded = Signal(str)  # key of a model that finished loading
    load_failed = Signal(str, str)  # what was opened, the engine's message
    probe_requested = Signal(int)  # number of a newly requested probe (self.generation)
    probed = Signal(object)  # core ProbeAnalysis of the newest request (== self.analysis)
    word_level_ready = Signal(object)  # engine_calls.WordViews of the probe on screen
    probe_failed = Signal(str)
    masked = Signal(object)  # engine_calls.MaskAnswer
    mask_failed = Signal(str)
    exported = Signal(str)  # path written
    export_failed = Signal(str)
    reported = Signal(str)  # a one-line status message
    busy_changed = Signal(bool)

    def __init__(
        self,
        demo_root: Path = engine_calls.DEMO_ROOT,
        parent: QObject | None = None,
        top_k: int = 5,
        device: str | None = "cpu",
    ):
        super().__init__(parent)
        self.engine = Engine(self)
        self.engine.busy_changed.connect(self.busy_changed)
        self.info: engine_calls.EngineInfo | None = None
        self.entries: dict[str, ModelEntry] = {e.key: e for e in discover_demos(demo_root)}
        self.current_key = ""
        self.top_k = top_k
        self.device = device  # where models are loaded ("cpu"; move them to a GPU from the list)
        self.generation = 0  # probe requests so far (the newest one's number)
        self.text = ""
        self.pair: str | None = None
        # The probe on screen: core's analysis, the model and request it belongs to, and its
        # job (job.seconds is the engine time the Probe tab shows; benchmarks read finished_at).
        self.analysis: ProbeAnalysis | None = None
        self.analysis_key = ""
        self.analysis_generation = 0
        self.probe_job: Job | None = None
        self.word_level = False  # a view shows word-level attention: every probe brings it
        self.word_views: engine_calls.WordViews | None = None  # of self.analysis, once computed
        self.guesses: list[engine_calls.MaskGuesses] = []  # at each [MASK] of self.analysis
        self.sentencepiece = False  # self.analysis's tokenizer marks word starts with "\u2581"
        # the probe the views showed before the one they show now (selections carry from it)
        self.previous: ProbeResult | None = None
        self.shown: ProbeResult | None = None

    # -- engine --------------------------------------------------------------------------
    def start(self) -> None:
        """Import the engine in the worker thread (the window is already on screen)."""
        self.engine.submit(
            engine_calls.engine_info,
            on_done=self._on_engine_started,
            on_error=self._on_engine_failed,
        )

    def _on_engine_started(self, info: engine_calls.EngineInfo) -> None:
        self.info = info
        self.started.emit(info)
        note = f"; {info.gpu_note}" if info.gpu_note else ""
        self.reported.emit(f"engine ready: torch {info.torch_version}, {info.device_name}{note}")

    def _on_engine_failed(self, message: str) -> None:
        self.reported.emit(f"the engine failed to start: {message}")
        self.probe_failed.emit(message)

    def shutdown(self) -> None:
        self.engine.shutdown()

    @property
    def busy(self) -> bool:
        return self.engine.busy

    @property
    def accelerator(self) -> str | None:
        return self.info.accelerator if self.info else None

    # -- models --------------------------------------------------------------------------
    @property
    def current(self) -> ModelEntry | None:
        return self.entries.get(self.current_key)

    def entry_for_path(self, path: str | Path) -> ModelEntry | None:
        resolved = Path(path).resolve()
        for entry in self.entries.values():
            if entry.path is not None and entry.path.resolve() == resolved:
                return entry
        return None

    def open_folder(self, path: str | Path, select: bool = True) -> None:
        """Load a model folder; the list changes only once it loaded."""
        folder = Path(path)
        existing = self.entry_for_path(folder)
        if existing is not None:
            if existing.is_loaded:
                if select:
                    self.select(existing.key)
                return
            self.load(existing.key, select=select)
            return
        key, source = str(folder.resolve()), str(folder)
        self.reported.emit(f"loading {folder} ...")
        self.engine.submit(
            engine_calls.load_folder,
            str(folder),
            self.device,
            on_done=lambda result: self._on_loaded(key, result, select=select, new=True),
            on_error=lambda message: self._on_load_failed(key, source, message),
        )

    def load(self, key: str, select: bool = True) -> None:
        entry = self.entries[key]
        if entry.is_loaded:
            if select:
                self.select(key)
            return
        if entry.loading:
            if select:
                self.current_key = key
                self.current_changed.emit(key)
            return
        entry.loading = True
        if select:
            self.current_key = key
            self.current_changed.emit(key)
        self.models_changed.emit()
        if select:  # a quiet background load says nothing that could contradict the current model
            self.reported.emit(f"loading {entry.name} ...")
        source = entry.name
        callbacks = {
            "on_done": lambda result: self._on_loaded(key, result, select=select, new=False),
            "on_error": lambda message: self._on_load_failed(key, source, message),
        }
        if entry.random_init:
            self.engine.submit(engine_calls.build_stand_in, key.removeprefix("demo:"), **callbacks)
        else:
            self.engine.submit(engine_calls.load_folder, str(entry.path), self.device, **callbacks)

    def _on_loaded(
        self, key: str, result: tuple[LoadedModel, engine_calls.ModelRow], select: bool, new: bool
    ) -> None:
        loaded, summary = result
        entry = self.entries.get(key)
        if entry is None:
            if not new:
                return  # unloaded while loading
            entry = ModelEntry(key=key, name=summary.name, family=summary.family, path=Path(key))
            self.entries[key] = entry
        entry.loaded, entry.summary, entry.loading = loaded, summary, False
        entry.family = summary.family
        if not entry.named:
            entry.name = summary.name
        self.models_changed.emit()
        self.loaded.emit(entry.key)
        if select or self.current_key == entry.key:
            self.reported.emit(f"loaded {entry.name} ({summary.params.total_unique:,} parameters)")
        if (select and new) or self.current_key == entry.key:  # the user is waiting for it
            self.current_key = ""
            self.select(entry.key)

    def _on_load_failed(self, key: str, source: str, message: str) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            entry.loading = False
            self.models_changed.emit()
        self.load_failed.emit(source, message)

    def add_folder(self, path: str | Path, name: str, select: bool = False) -> str:
        """List a model folder without loading it (a training run's checkpoint, named e.g.
        "albert-run @ step 500"): it loads when picked, and a folder deleted since fails to
        load with the engine's one-line message. Returns its key."""
        folder = Path(path)
        key = str(folder.resolve())
        if key not in self.entries:
            self.entries[key] = ModelEntry(
                key=key, name=name, family=_read_family(folder), path=folder, named=True
            )
            self.models_changed.emit()
        if select:
            self.select(key)
        return key

    def add_model(
        self,
        loaded: LoadedModel,
        summary: engine_calls.ModelRow,
        key: str | None = None,
        select: bool = True,
    ) -> str:
        """List a model that is already in memory (built or trained in this session)."""
        key = key or f"memory:{loaded.name}"
        self.entries[key] = ModelEntry(
            key=key,
            name=loaded.name,
            family=summary.family,
            path=loaded.path,
            random_init=summary.random_init,
            loaded=loaded,
            summary=summary,
        )
        self.models_changed.emit()
        if select:
            self.select(key)
        return key

    def select(self, key: str) -> None:
        """Make ``key`` the current model (loading it first if needed) and re-probe."""
        if key not in self.entries:
            return
        entry = self.entries[key]
        if not entry.is_loaded:
            self.load(key, select=True)
            return
        changed = key != self.current_key
        self.current_key = key
        if changed:
            self.current_changed.emit(key)
        if self.text and (changed or self.analysis is None or self.analysis_key != key):
            self.request_probe(self.text, self.pair)

    def unload(self, key: str) -> None:
        entry = self.entries.get(key)
        if entry is None:
            return
        if entry.demo:
            entry.loaded, entry.summary, entry.loading = None, None, False
        else:
            del self.entries[key]
        self.models_changed.emit()
        self.reported.emit(f"unloaded {entry.name}")
        if key == self.current_key:
            others = [e.key for e in self.entries.values() if e.is_loaded]
            self.current_key = ""
            for channel in (PROBE, MASK, WORDS):  # nothing queued for it may land
                self.engine.invalidate(channel)
            self.analysis, self.analysis_key, self.probe_job = None, "", None
            self.word_views, self.guesses = None, []
            if others:
                self.select(others[0])
            else:
                self.previous = self.shown = None  # the views forget theirs too
                self.current_changed.emit("")

    def move(self, key: str, device: str) -> None:
        """Move a loaded model to ``device`` ("cpu", "cuda", "mps") in the worker."""
        entry = self.entries.get(key)
        if entry is None or not entry.is_loaded:
            return
        self.reported.emit(f"moving {entry.name} to {device} ...")
        self.engine.submit(
            engine_calls.move_model,
            entry.loaded,
            device,
            entry.random_init,
            on_done=lambda summary: self._on_moved(key, summary),
            on_error=self.reported.emit,
        )

    def _on_moved(self, key: str, summary: engine_calls.ModelRow) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            entry.summary = summary
            self.models_changed.emit()
            if key == self.current_key:
                self.current_changed.emit(key)
        self.reported.emit(f"moved {summary.name} to {summary.device_name}")

    # -- probing -------------------------------------------------------------------------
    def request_probe(self, text: str, pair: str | None = None) -> int:
        """Probe ``text`` (and ``pair``) with the current model; returns the request's number.

        The one way a view or the window asks for a probe."""
        self.generation += 1
        generation = self.generation
        self.text, self.pair = text, (pair or None)
        for channel in (PROBE, MASK):  # an older sentence's probe or mask never lands now
            self.engine.invalidate(channel)
        self.probe_requested.emit(generation)
        if not text.strip():
            self.probe_failed.emit("empty text: type a sentence to probe")
            return generation
        entry = self.current
        if entry is None:
            self.probe_failed.emit(NO_MODEL)
            return generation
        if not entry.is_loaded:
            return generation  # probed as soon as the model has loaded
        self._submit_probe(entry, generation)
        return generation

    def _submit_probe(self, entry: ModelEntry, generation: int) -> None:
        key = entry.key
        job: Job | None = None

        def show(outcome: engine_calls.ProbeOutcome, words: engine_calls.WordViews | None) -> None:
            analysis = outcome.analysis
            self.analysis, self.analysis_key, self.analysis_generation = analysis, key, generation
            self.probe_job, self.word_views = job, words
            self.guesses, self.sentencepiece = outcome.guesses, outcome.sentencepiece
            self.previous, self.shown = self.shown, analysis.result
            self.probed.emit(analysis)

        def done(outcome: engine_calls.ProbeOutcome) -> None:
            if key != self.current_key:
                return  # another model was chosen meanwhile
            if not self.word_level:
                show(outcome, None)
                return
            # words on: the views get the probe and its word-level attention together (on the
            # probe's channel, so a newer request drops this one as it would the probe)
            self.engine.submit_latest(
                PROBE,
                engine_calls.word_views,
                outcome.analysis,
                on_done=lambda words: show(outcome, words),
                on_error=self.probe_failed.emit,
            )

        job = self.engine.submit_latest(
            PROBE,
            engine_calls.probe_for_views,
            entry.loaded,
            self.text,
            self.pair,
            self.top_k,
            on_done=done,
            on_error=self.probe_failed.emit,
        )

    def carry(self, index: int) -> int:
        """Where token ``index`` of the previous probe is in the one on screen: the token that
        covers the same characters (``core``'s carry_selection), so a selection survives a
        model switch whose tokenizer cuts the words differently; 0 without a previous probe."""
        from core.analysis.probe import carry_selection

        if self.previous is None or self.shown is None:
            return 0
        return carry_selection(self.previous, index, self.shown)

    def set_word_level(self, on: bool) -> None:
        """Show attention between words instead of word pieces (Clark et al. 2019). Turned on,
        the probe on screen gets its word-level attention from the engine thread
        (``word_level_ready``); every later probe brings its own."""
        self.word_level = on
        analysis = self.analysis
        if not on or analysis is None or self.word_views is not None:
            return

        def done(words: engine_calls.WordViews) -> None:
            if analysis is self.analysis:
                self.word_views = words
                self.word_level_ready.emit(words)

        self.engine.submit_latest(
            WORDS, engine_calls.word_views, analysis, on_done=done, on_error=self.reported.emit
        )

    def request_mask(self, position: int) -> None:
        """Mask token ``position`` of the probed sentence and predict it ("mask and predict")."""
        analysis, entry = self.analysis, self.current
        if analysis is None or entry is None or not entry.is_loaded:
            self.mask_failed.emit("probe a sentence first")
            return
        tokens = analysis.result.tokens
        token = tokens[position].text if 0 <= position < len(tokens) else "?"
        self.engine.submit_latest(
            MASK,
            engine_calls.mask_and_predict,
            entry.loaded,
            analysis.result.text,
            analysis.result.pair,
            position,
            token,
            self.top_k,
            self.sentencepiece,
            on_done=self.masked.emit,
            on_error=self.mask_failed.emit,
        )

    def export(self, path: str | Path) -> None:
        """Write the current probe result to ``path`` (.json, .csv or .npz) in the worker."""
        if self.analysis is None:
            self.export_failed.emit("nothing to export: probe a sentence first")
            return
        from app.export import export_analysis

        def done(written: Path) -> None:
            self.exported.emit(str(written))
            self.reported.emit(f"exported {written}")

        self.engine.submit(
            export_analysis,
            self.analysis,
            Path(path),
            on_done=done,
            on_error=self.export_failed.emit,
        )
