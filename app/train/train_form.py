"""The Train view's form: what to train, on which text, with which settings.

Defaults finish in a few minutes on a laptop CPU (the mini presets, 32-token sequences, 300
steps of 16 sequences) on the bundled corpus. Corpus files are added with a dialog or by
dropping them on the form; every change re-runs the corpus check (on the engine thread, by
the Train tab's state), whose figures or one-line error show under the list. Only the devices
present here can be chosen. The form fills core's :class:`TrainConfig` (:meth:`TrainForm.
settings`), so every field means what the CLI's option of that name means.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.train.settings import DEFAULT_CORPUS, DEFAULT_HELDOUT, RunSettings
from core.choices import PRECISION_CHOICES
from core.training.config import TrainConfig

FAMILIES = (
    ("BERT and ALBERT, one after the other", "both"),
    ("BERT and ALBERT at the same time", "parallel"),
    ("BERT (MLM + NSP)", "bert"),
    ("ALBERT (MLM + SOP)", "albert"),
)
SIZES = ("tiny", "mini", "small", "base", "large", "xlarge", "xxlarge")
CONFIG_PREFIX = "config:"  # a Size entry that is a calculator configuration, not a preset
ALBERT_ONLY = ("xlarge", "xxlarge")
DEVICES = ("auto", "cpu", "cuda", "mps")

TEXT_FILTER = "Text files (*.txt *.text *.md);;All files (*)"
EVAL_EXAMPLES = 256  # held-out sequences per evaluation: quick enough to do six times a run
# The Sentence objective choices: None is each family's own (NSP for BERT, SOP for ALBERT).
SENTENCE_OBJECTIVE_CHOICES = (
    ("the family's own", None),
    ("NSP", "nsp"),
    ("SOP", "sop"),
    ("none (MLM only)", "none"),
)
KEEP_EVERY_CHECKPOINT = 0  # keep_checkpoints: every checkpoint stays (each is a model)
AT_THE_END = "at the end only"  # what 0 means for eval_every and save_every (core's meaning)


def default_period(steps: int) -> int:
    """Steps between evaluations (and checkpoints) unless the user picks: six per run."""
    return max(1, steps // 6)


def default_runs_root() -> Path:
    """Where runs are written unless the user picks another folder."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".bertscope") / "runs"


class TrainForm(QWidget):
    corpus_changed = Signal()  # the corpus files changed: check them again

    def __init__(self, runs_root: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.family = QComboBox()
        for text, value in FAMILIES:
            self.family.addItem(text, value)
        self.family.setToolTip(
            "Both: the same corpus, token budget and seed for each family; one after the "
            "other unless you ask for both at once (two processes share the cores)"
        )
        self.size = QComboBox()
        for size in SIZES:
            self.size.addItem(size, size)
        self.size.setCurrentText("mini")
        self.model_configs: dict[str, dict] = {}  # calculator name -> config.json content
        self.size.setToolTip("Preset size: tiny L=2/H=128, mini L=4/H=256, small L=4/H=512, ...")

        self.corpus = QListWidget()
        self.corpus.setMaximumHeight(72)
        self.corpus.setToolTip("UTF-8 text: one sentence per line, blank line between documents")
        self.add_corpus = QPushButton("Add\u2026")
        self.remove_corpus = QPushButton("Remove")
        self.corpus_figures = QLabel("")
        self.corpus_figures.setWordWrap(True)
        self.corpus_figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heldout = QLineEdit(str(DEFAULT_HELDOUT))
        self.heldout.setPlaceholderText("none: every 50th document of the corpus")
        self.heldout_browse = QPushButton("\u2026")
        self.tokenizer = QLineEdit()
        self.tokenizer.setPlaceholderText("train a new one from the corpus")
        self.tokenizer.setToolTip("Reuse a model folder's tokenizer (or a tokenizer.json)")
        self.tokenizer_browse = QPushButton("\u2026")

        self.steps = self._spin(1, 10_000_000, 300)
        self.batch_size = self._spin(1, 4096, 16)
        self.seq_len = self._spin(8, 4096, 32)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(5e-4)
        self.warmup = self._spin(-1, 10_000_000, -1)
        self.warmup.setSpecialValueText("auto (5% of steps)")
        self.optimizer = QComboBox()
        self.optimizer.addItem("AdamW", "adamw")
        self.optimizer.addItem("LAMB (as ALBERT)", "lamb")
        self.objective = QComboBox()
        for text, value in SENTENCE_OBJECTIVE_CHOICES:
            self.objective.addItem(text, value)
        self.objective.setToolTip(
            "The sentence loss beside MLM, in either family (the ALBERT paper's Table 5): "
            "NSP (next segment or another document's), SOP (in order or swapped), or none"
        )
        self.device = QComboBox()
        for name in DEVICES:
            self.device.addItem(name, name)
        self.precision = QComboBox()
        for name in PRECISION_CHOICES:
            self.precision.addItem(name, name)
        self.precision.setToolTip(
            "auto: bf16 autocast on GPUs that support it, fp16 with a gradient scaler on "
            "older GPUs, fp32 on CPU and MPS"
        )
        self.seed = self._spin(0, 2**31 - 1, 0)
        self.eval_every = self._spin(0, 10_000_000, default_period(self.steps.value()))
        self.eval_every.setSpecialValueText(AT_THE_END)
        self.eval_every.setToolTip(
            "Steps between held-out evaluations (0: only at the end); six per run unless changed"
        )
        self.save_every = self._spin(0, 10_000_000, default_period(self.steps.value()))
        self.save_every.setSpecialValueText(AT_THE_END)
        self.save_every.setToolTip(
            "Steps between checkpoints (0: only at the end); every checkpoint is kept and "
            "listed as a model"
        )
        self._steps = self.steps.value()  # what the periods' defaults were computed for
        self.out = QLineEdit(str(runs_root or default_runs_root()))
        self.out.setToolTip("Each run writes a folder here: checkpoints, final/, train_log.jsonl")
        self.out_browse = QPushButton("\u2026")

        corpus_buttons = QHBoxLayout()
        corpus_buttons.addWidget(self.add_corpus)
        corpus_buttons.addWidget(self.remove_corpus)
        corpus_buttons.addStretch(1)
        corpus_box = QVBoxLayout()
        corpus_box.setContentsMargins(0, 0, 0, 0)
        corpus_box.addWidget(self.corpus)
        corpus_box.addLayout(corpus_buttons)
        corpus_box.addWidget(self.corpus_figures)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Train", self.family)
        form.addRow("Size", self.size)
        form.addRow("Corpus", corpus_box)
        form.addRow("Held-out", self._with_button(self.heldout, self.heldout_browse))
        form.addRow("Tokenizer", self._with_button(self.tokenizer, self.tokenizer_browse))
        form.addRow("Steps", self.steps)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Sequence length", self.seq_len)
        form.addRow("Learning rate", self.lr)
        form.addRow("Warm-up steps", self.warmup)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Sentence objective", self.objective)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("Seed", self.seed)
        form.addRow("Evaluate every", self.eval_every)
        form.addRow("Checkpoint every", self.save_every)
        form.addRow("Output folder", self._with_button(self.out, self.out_browse))
        # Narrow enough for a 1280-pixel window: fields shrink, long texts elide.
        for combo in (
            self.family,
            self.size,
            self.optimizer,
            self.objective,
            self.device,
            self.precision,
        ):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        for edit in (self.heldout, self.tokenizer, self.out):
            edit.setMinimumWidth(80)
        self.corpus.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.corpus.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addStretch(1)  # extra height below the form, not between its rows

        self.set_corpus([str(DEFAULT_CORPUS)])
        self.family.currentIndexChanged.connect(self._on_family_changed)
        self.steps.valueChanged.connect(self._on_steps_changed)
        self.add_corpus.clicked.connect(self._on_add_corpus)
        self.remove_corpus.clicked.connect(self._on_remove_corpus)
        self.heldout_browse.clicked.connect(self._on_browse_heldout)
        self.tokenizer_browse.clicked.connect(self._on_browse_tokenizer)
        self.out_browse.clicked.connect(self._on_browse_out)
        self.set_devices(cuda=False, mps=False)
        self._on_family_changed()

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setGroupSeparatorShown(True)
        return spin

    @staticmethod
    def _with_button(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return row

    # -- values ------------------------------------------------------------------------------
    @property
    def families(self) -> list[str]:
        config = self.chosen_config
        if config is not None:  # a calculator configuration belongs to one family
            return [config["model_type"]]
        value = self.family.currentData()
        return ["bert", "albert"] if value in ("both", "parallel") else [value]

    @property
    def chosen_config(self) -> dict | None:
        """The calculator configuration picked as the size, or None for a preset size."""
        data = self.size.currentData()
        return (
            self.model_configs.get(data[len(CONFIG_PREFIX) :])
            if data.startswith(CONFIG_PREFIX)
            else None
        )

    def set_model_configs(self, configs: dict[str, dict]) -> None:
        """Offer the Compare tab's calculator configurations (``Add to models``) as sizes."""
        chosen = self.size.currentData()
        self.model_configs = dict(configs)
        for row in reversed(range(self.size.count())):
            if self.size.itemData(row).startswith(CONFIG_PREFIX):
                self.size.removeItem(row)
        for name, config in self.model_configs.items():
            self.size.addItem(f"{name} ({config['model_type']})", CONFIG_PREFIX + name)
        row = self.size.findData(chosen)
        self.size.setCurrentIndex(row if row >= 0 else self.size.findData("mini"))

    @property
    def parallel(self) -> bool:
        return self.family.currentData() == "parallel"

    def corpus_files(self) -> list[str]:
        return [self.corpus.item(i).text() for i in range(self.corpus.count())]

    def set_corpus(self, paths: list[str]) -> None:
        self.corpus.clear()
        for path in paths:
            self.corpus.addItem(str(Path(path).resolve()))
        self.corpus_changed.emit()

    def add_corpus_files(self, paths: list[str]) -> None:
        present = set(self.corpus_files())
        for path in paths:
            resolved = str(Path(path).resolve())
            if resolved not in present:
                self.corpus.addItem(resolved)
                present.add(resolved)
        self.corpus_changed.emit()

    def runs_root(self) -> Path:
        """The folder new runs are written under."""
        return Path(self.out.text().strip() or default_runs_root())

    def settings(self, stamp: str | None = None) -> list[RunSettings]:
        """One run per family, each writing to its own folder. Raises
        :class:`core.errors.InputError` (one line) for settings core refuses."""
        stamp = stamp or time.strftime("%H%M%S")
        heldout = self.heldout.text().strip()
        tokenizer = self.tokenizer.text().strip() or None
        runs = []
        root = self.runs_root()
        config = self.chosen_config
        for arch in self.families:
            preset = f"{arch}-{self.size.currentData()}" if config is None else f"{arch}-mini"
            label = preset if config is None else self.size.currentData()[len(CONFIG_PREFIX) :]
            label = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
            name, n = f"{label}-{stamp}", 1
            while (root / name).exists():  # never write into an earlier run's folder
                n += 1
                name = f"{label}-{stamp}-{n}"
            train = TrainConfig(
                arch=arch,
                preset=preset,
                steps=self.steps.value(),
                batch_size=self.batch_size.value(),
                seq_len=self.seq_len.value(),
                lr=self.lr.value(),
                warmup=None if self.warmup.value() < 0 else self.warmup.value(),
                optimizer=self.optimizer.currentData(),
                sentence_objective=self.objective.currentData(),
                device=self.device.currentData(),
                precision=self.precision.currentData(),
                seed=self.seed.value(),
                eval_every=self.eval_every.value(),
                eval_examples=EVAL_EXAMPLES,
                save_every=self.save_every.value(),
                keep_checkpoints=KEEP_EVERY_CHECKPOINT,
            )
            runs.append(
                RunSettings(
                    config=train,
                    out=root / name,
                    corpus=self.corpus_files(),
                    eval_corpus=[str(Path(heldout).resolve())] if heldout else [],
                    tokenizer=str(Path(tokenizer).resolve()) if tokenizer else None,
                    model_config=config,
                )
            )
        return runs

    def set_devices(self, cuda: bool, mps: bool, names: dict[str, str] | None = None) -> None:
        """Enable only the devices present (the engine thread asked core)."""
        present = {"auto": True, "cpu": True, "cuda": cuda, "mps": mps}
        model = self.device.model()
        assert isinstance(model, QStandardItemModel)
        for row in range(self.device.count()):
            name = self.device.itemData(row)
            item = model.item(row)
            item.setEnabled(present[name])
            tip = (names or {}).get(name, "")
            item.setToolTip(tip if present[name] else f"no {name.upper()} device on this machine")
        if not present[self.device.currentData()]:
            self.device.setCurrentIndex(0)

    def device_enabled(self, name: str) -> bool:
        model = self.device.model()
        return bool(model.item(self.device.findData(name)).isEnabled())

    def show_corpus_figures(self, text: str, error: bool = False) -> None:
        self.corpus_figures.setText(text)
        self.corpus_figures.setProperty("error", error)
        self.corpus_figures.setStyleSheet("color: #c0392b;" if error else "")

    # -- slots -------------------------------------------------------------------------------
    @Slot(int)
    def _on_steps_changed(self, steps: int) -> None:
        """A period still at its default (six per run) follows the steps; one the user set
        stays as set."""
        for spin in (self.eval_every, self.save_every):
            if spin.value() == default_period(self._steps):
                spin.setValue(default_period(steps))
        self._steps = steps

    @Slot()
    def _on_family_changed(self) -> None:
        albert_only = self.families == ["albert"]
        model = self.size.model()
        assert isinstance(model, QStandardItemModel)
        for row in range(self.size.count()):
            model.item(row).setEnabled(albert_only or self.size.itemData(row) not in ALBERT_ONLY)
        if not albert_only and self.size.currentData() in ALBERT_ONLY:
            self.size.setCurrentText("large")

    @Slot()
    def _on_add_corpus(self) -> None:
        start = str(Path(self.corpus_files()[0]).parent if self.corpus_files() else Path.home())
        paths, _ = QFileDialog.getOpenFileNames(self, "Add corpus files", start, TEXT_FILTER)
        if paths:
            self.add_corpus_files(paths)

    @Slot()
    def _on_remove_corpus(self) -> None:
        for item in self.corpus.selectedItems():
            self.corpus.takeItem(self.corpus.row(item))
        self.corpus_changed.emit()

    @Slot()
    def _on_browse_heldout(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Held-out text", self.heldout.text(), TEXT_FILTER
        )
        if path:
            self.heldout.setText(path)

    @Slot()
    def _on_browse_tokenizer(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Reuse a model folder's tokenizer")
        if folder:
            self.tokenizer.setText(folder)

    @Slot()
    def _on_browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for runs", self.out.text())
        if folder:
            self.out.setText(folder)

    # -- drops: text files become corpus files -------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and Path(u.toLocalFile()).is_file() for u in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [
            u.toLocalFile()
            for u in event.mimeData().urls()
            if u.isLocalFile() and Path(u.toLocalFile()).is_file()
        ]
        if files:
            self.add_corpus_files(files)
            event.acceptProposedAction()
