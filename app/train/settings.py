"""One run's settings as the window starts it: core's :class:`TrainConfig` (what to train and how,
checked where it is made) and what is not a training setting: the text files, the output folder,
a tokenizer to reuse, the CPU threads, and the calculator's model sizes.

The window restates none of TrainConfig's options: the config is written to
``RUN/train_config.json`` and the trainer reads it with ``--config-file``, so a setting means in
the window exactly what it means to the CLI (``eval_every=0``: only at the end).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from app.train.run_folder import MODEL_CONFIG_FILE, TRAIN_CONFIG_FILE
from core.atomic import write_text_atomic
from core.training.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = REPO_ROOT / "resources" / "corpus"
DEFAULT_CORPUS = CORPUS_DIR / "train.txt"
DEFAULT_HELDOUT = CORPUS_DIR / "heldout.txt"


def trainer_threads(parallel_runs: int = 1) -> int:
    """CPU threads per trainer: one core fewer than the machine has (the window keeps one),
    shared between runs that train at the same time; never below 1."""
    cores = os.cpu_count() or 2
    return max(1, (cores - 1) // max(1, parallel_runs))


@dataclass(frozen=True)
class RunSettings:
    """A run: its :class:`TrainConfig` plus the files, folder and threads it runs with.

    In the run history it is one flat dict (:meth:`to_dict`): the config's fields beside
    ``corpus``, ``eval_corpus``, ``out``, ``tokenizer``, ``threads`` and ``model_config``.
    """

    config: TrainConfig
    out: Path  # the run's folder
    corpus: tuple[str, ...] = ()
    eval_corpus: tuple[str, ...] = ()  # none: the trainer holds out part of the corpus
    tokenizer: str | None = None  # a model folder or tokenizer.json to reuse; None: train one
    threads: int = 0  # 0: trainer_threads()
    model_config: dict | None = None  # sizes from the Compare tab's calculator (config.json)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "corpus", tuple(self.corpus))
        object.__setattr__(self, "eval_corpus", tuple(self.eval_corpus))

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def config_file(self) -> Path:
        return self.out / TRAIN_CONFIG_FILE

    @property
    def model_config_file(self) -> Path:
        return self.out / MODEL_CONFIG_FILE

    def replace(self, **changes) -> RunSettings:
        return dataclasses.replace(self, **changes)

    def prepare_folder(self) -> None:
        """Make the run folder with the files the command names: the config for
        ``--config-file`` and the calculator's sizes for ``--config``."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.config.save(self.config_file)
        if self.model_config is not None:
            write_text_atomic(self.model_config_file, json.dumps(self.model_config, indent=2))

    def arguments(self, resume: bool = False) -> list[str]:
        """The ``python -m core train`` arguments (after ``-m core``). A resumed run keeps the
        settings and sizes its checkpoint saved: no ``--config-file``, no ``--config``."""
        args = ["train"]
        if not resume:
            args += ["--config-file", str(self.config_file)]
        args += ["--corpus", *self.corpus]
        if self.eval_corpus:
            args += ["--eval-corpus", *self.eval_corpus]
        args += ["--out", str(self.out)]
        if self.tokenizer:
            args += ["--tokenizer", self.tokenizer]
        args += ["--threads", str(self.threads or trainer_threads())]
        if self.model_config is not None and not resume:
            args += ["--config", str(self.model_config_file)]
        if resume:
            args.append("--resume")
        return [*args, "--events", "jsonl"]

    def command(self, resume: bool = False) -> tuple[str, list[str]]:
        """Program and arguments of the child process."""
        return sys.executable, ["-m", "core", *self.arguments(resume)]

    def to_dict(self) -> dict:
        return {
            **self.config.to_dict(),
            "corpus": list(self.corpus),
            "eval_corpus": list(self.eval_corpus),
            "out": str(self.out),
            "tokenizer": self.tokenizer,
            "threads": self.threads,
            "model_config": self.model_config,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunSettings:
        """The settings :meth:`to_dict` made (or an older window's record of the same shape);
        the config is checked again as it is made."""
        return cls(
            config=TrainConfig.from_dict(data),
            out=Path(data.get("out") or ""),
            corpus=data.get("corpus") or (),
            eval_corpus=data.get("eval_corpus") or (),
            tokenizer=data.get("tokenizer"),
            threads=int(data.get("threads") or 0),
            model_config=data.get("model_config"),
        )
