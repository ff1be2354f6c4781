"""The settings of a pretraining run: one frozen :class:`TrainConfig`, checked where it is
made, saved with every checkpoint and read back on ``--resume``."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.choices import OPTIMIZERS, PRECISION_CHOICES
from core.config import (
    PRESETS,
    SENTENCE_OBJECTIVE_KEY,
    SENTENCE_OBJECTIVES,
    ModelConfig,
    family_objective,
    preset,
)
from core.errors import InputError

if TYPE_CHECKING:
    from core.tokenizer import Tokenizer

# Weights of the final export, by name; ``SAVE_DTYPES`` (name -> torch dtype, None: keep
# float32) is built on first use, so checking a TrainConfig needs no torch.
SAVE_DTYPE_NAMES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def __getattr__(name: str) -> Any:
    """``SAVE_DTYPES`` on first use (PEP 562): its dtypes are torch's."""
    if name != "SAVE_DTYPES":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import torch

    table = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
    globals()["SAVE_DTYPES"] = table
    return table


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; saved with every checkpoint (``training_args.json``).

    Checked once, when it is made (a bad value raises :class:`InputError` naming the setting),
    and immutable afterwards: derive a changed copy with ``dataclasses.replace``, which checks
    the copy again. ``config_overrides`` is copied on construction; do not mutate it.
    """

    arch: str = "bert"  # "bert" (MLM + NSP) or "albert" (MLM + SOP)
    preset: str | None = None  # a core.config preset of that family; None: ARCH-mini
    # "none" (MLM alone), "nsp" or "sop", in either family; None: the family's own
    sentence_objective: str | None = None
    steps: int = 1000  # optimizer steps
    batch_size: int = 32  # sequences per micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step
    seq_len: int = 128  # longest sequence, specials included
    lr: float = 5e-4  # peak learning rate
    warmup: int | None = None  # warm-up steps; None: 5% of steps
    optimizer: str = "adamw"  # "adamw" or "lamb"
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # gradient clipping (0 turns it off)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    device: str | None = None  # None/"auto": CUDA > MPS > CPU
    precision: str = "auto"  # "auto", "fp32", "bf16" or "fp16"
    tf32: bool = True  # fp32 matmuls in TF32 on Ampere+ GPUs (False: exact fp32, for parity)
    compile: bool = False  # torch.compile the model (worth it on GPUs; first steps compile)
    log_every: int | None = None  # steps between reads of the losses; None: 1 on CPU, 10 on GPUs
    data_workers: int | None = (
        None  # processes building batches; None: 0 on CPU/MPS, up to 4 on CUDA
    )
    seed: int = 0
    eval_every: int = 0  # steps between evaluations (0: only at the end)
    eval_examples: int | None = 1000  # cap on held-out sequences per evaluation
    eval_batch_size: int | None = None  # None: batch_size
    save_every: int = 0  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    vocab_size: int = 8000  # when the tokenizer is trained from the corpus
    max_positions: int | None = None  # override the preset's max_position_embeddings
    save_dtype: str = "float32"  # weights of the final export: float32, float16, bfloat16
    heldout_every: int = 50  # without an eval corpus, every N-th document is held out (0: none)
    init_from: str | None = None  # start from this model folder's weights (new optimizer/schedule)
    config_overrides: dict = field(default_factory=dict)  # other ModelConfig fields

    def __post_init__(self) -> None:
        if self.preset is None:  # the family's small preset, whichever family was asked for
            object.__setattr__(self, "preset", f"{self.arch}-mini")
        if self.sentence_objective is None and self.arch in ("bert", "albert"):
            object.__setattr__(self, "sentence_objective", family_objective(self.arch))
        object.__setattr__(self, "adam_betas", tuple(self.adam_betas))
        object.__setattr__(self, "config_overrides", dict(self.config_overrides))
        self._validate()

    @property
    def warmup_steps(self) -> int:
        return round(0.05 * self.steps) if self.warmup is None else self.warmup

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def _validate(self) -> None:
        """Raise :class:`InputError` for the first bad setting (called by ``__post_init__``)."""
        if self.arch not in ("bert", "albert"):
            raise InputError(f"unknown architecture {self.arch!r}; choose bert or albert")
        if self.sentence_objective not in SENTENCE_OBJECTIVES:
            raise InputError(
                f"unknown sentence objective {self.sentence_objective!r}; choose "
                + ", ".join(SENTENCE_OBJECTIVES)
            )
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if PRESETS[self.preset].model_type != self.arch:
            raise InputError(
                f"preset {self.preset!r} belongs to {PRESETS[self.preset].model_type}, "
                f"not {self.arch}; choose one of "
                + ", ".join(n for n, c in PRESETS.items() if c.model_type == self.arch)
            )
        for name in ("steps", "batch_size", "grad_accum"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(
                    f"{name.replace('_', ' ')} must be a positive integer, got {value!r}"
                )
        if not isinstance(self.seq_len, int) or self.seq_len < 8:
            raise InputError(f"sequence length must be an integer >= 8, got {self.seq_len!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"learning rate must be > 0, got {self.lr!r}")
        if self.warmup is not None and not 0 <= self.warmup < self.steps:
            raise InputError(f"warm-up must be in [0, steps={self.steps}), got {self.warmup}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; choose adamw or lamb")
        if self.precision not in PRECISION_CHOICES:
            raise InputError(
                f"unknown precision {self.precision!r}; choose {', '.join(PRECISION_CHOICES)}"
            )
        if self.save_dtype not in SAVE_DTYPE_NAMES:
            raise InputError(
                f"unknown save dtype {self.save_dtype!r}; choose {', '.join(SAVE_DTYPE_NAMES)}"
            )
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise InputError(f"{name.replace('_', ' ')} must be >= 0")
        if self.max_grad_norm < 0 or self.weight_decay < 0:
            raise InputError("max grad norm and weight decay must be >= 0")
        if self.max_positions is not None and self.max_positions < 1:
            raise InputError(f"max positions must be >= 1, got {self.max_positions}")
        positions = (
            self.max_positions
            or self.config_overrides.get("max_position_embeddings")
            or PRESETS[self.preset].max_position_embeddings
        )
        if self.seq_len > positions:
            raise InputError(
                f"sequence length {self.seq_len} is longer than the model's {positions} "
                "positions (max_position_embeddings); use a shorter --seq-len"
            )
        for name in ("log_every", "data_workers"):
            value = getattr(self, name)
            low = 1 if name == "log_every" else 0
            if value is not None and (not isinstance(value, int) or value < low):
                raise InputError(
                    f"{name.replace('_', ' ')} must be an integer >= {low}, got {value!r}"
                )
        if self.heldout_every < 0:
            raise InputError("heldout_every must be >= 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 32:
            raise InputError(f"vocab size must be an integer >= 32, got {self.vocab_size!r}")
        for name in ("eval_examples", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name.replace('_', ' ')} must be >= 1, got {value!r}")

    def model_config(self, tokenizer: Tokenizer) -> ModelConfig:
        """The preset sized to the tokenizer; raises if the sequence cannot fit its positions."""
        changes = dict(self.config_overrides)
        # The vocabulary is the tokenizer's, unless a larger one is asked for (e.g. padded).
        changes.setdefault("vocab_size", tokenizer.vocab_size)
        if changes["vocab_size"] < tokenizer.vocab_size:
            raise InputError(
                f"vocab_size {changes['vocab_size']} is smaller than the tokenizer's "
                f"{tokenizer.vocab_size} tokens"
            )
        changes["pad_token_id"] = tokenizer.token_id("pad")
        # Recorded in config.json, so a loader names the sentence head by what it learnt.
        changes["extra"] = {SENTENCE_OBJECTIVE_KEY: self.sentence_objective}
        if self.max_positions is not None:
            changes["max_position_embeddings"] = self.max_positions
        config = preset(self.preset, **changes)
        if self.seq_len > config.max_position_embeddings:
            raise InputError(
                f"sequence length {self.seq_len} is longer than the model's "
                f"{config.max_position_embeddings} positions (max_position_embeddings)"
            )
        return config

    # JSON: a run's settings as a file (``train --config-file``; the window writes one per run).
    # Imports are local, so this module's import block stays as light as it is.
    def to_json(self) -> str:
        """Every setting as a JSON object; :meth:`from_json` gives back an equal config."""
        import json

        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "train config") -> TrainConfig:
        """The config of :meth:`to_json`'s text. Unlike :meth:`from_dict` (a checkpoint's saved
        settings, from whichever version wrote them), a key that is not a setting is refused:
        in a file someone wrote, it is a typo that would otherwise be silently ignored. Absent
        keys take their defaults; the values are checked as always."""
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{source}: malformed JSON ({err})") from None
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(
                f"{source}: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; the settings are {', '.join(names)}"
            )
        try:
            return cls(**data)
        except (InputError, TypeError, ValueError) as err:
            raise InputError(f"{source}: {err}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path`` atomically (temporary file + rename)."""
        from core.atomic import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a file :meth:`save` wrote (or a person did); errors name the file."""
        from pathlib import Path

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except OSError as err:
            raise InputError(f"{path}: cannot read it ({err.strerror or err})") from None
        return cls.from_json(text, source=str(path))


# Fields a run takes from its tokenizer or family, never from a sizes file.
_NOT_SIZES = frozenset({"model_type", "vocab_size", "pad_token_id", "extra"})


def model_sizes_from_file(path: str | os.PathLike, arch: str) -> dict:
    """The sizes of a ``config.json`` (e.g. one the Compare tab's calculator made) as
    ``TrainConfig.config_overrides`` for a run of ``arch``: every ModelConfig field but the
    family and the vocabulary, which the run's tokenizer decides."""
    config = ModelConfig.load(path)
    if config.model_type != arch:
        raise InputError(f"{path}: a {config.model_type} configuration, but --arch is {arch}")
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _NOT_SIZES
    }
