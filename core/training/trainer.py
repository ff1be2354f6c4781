"""The pretraining loop: MLM + NSP (BERT) or MLM + SOP (ALBERT), on CPU, one GPU or torchrun.

Shaped like minGPT's trainer: it knows the model only through its forward pass, and progress
leaves through :class:`ProgressEvent` objects, either pulled from :meth:`Trainer.events` (a
generator the window's worker drives) or pushed to any number of listeners by
:meth:`Trainer.run`. :meth:`Trainer.cancel` stops at the next step boundary, after saving a
resumable checkpoint.

One optimizer step = ``grad_accum`` micro-batches of ``batch_size`` sequences on each of
``world_size`` processes. The MLM loss is the mean over *all* masked positions of the step
(and the sentence loss the mean over all its sequences), whatever the split into
micro-batches and ranks: each micro-batch's summed loss is divided by the step's global
count. So two processes with batch b give the same update as one process with batch 2b, and
gradient accumulation is exactly a larger batch. Only masked positions are decoded
(``mlm_positions``): the vocabulary projection, the largest matmul of a small model, runs on
~15% of the tokens.

Precision: fp32 on CPU and MPS unless asked; on CUDA bf16 autocast where supported, else
fp16 autocast with a gradient scaler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.config import PRESETS, ModelConfig, preset
from core.data import Batch, DataPosition, PretrainingData
from core.device import describe_device, memory_in_use, resident_set_bytes, resolve_device
from core.errors import InputError, TrainingError
from core.hf_checkpoint import hf_to_engine, load_state, read_weights
from core.loaded_model import build_model
from core.precision import PRECISION_CHOICES, resolve_precision
from core.tokenizer import Tokenizer
from core.training import run_checkpoints as ckpt
from core.training.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_sum,
    barrier,
)
from core.training.loss import pretraining_loss
from core.training.optim import OPTIMIZERS, build_optimizer, build_scheduler

log = logging.getLogger(__name__)

SAVE_DTYPES = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}


# -- settings ------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything that defines a run; saved with every checkpoint (``training_args.json``)."""

    arch: str = "bert"  # "bert" (MLM + NSP) or "albert" (MLM + SOP)
    preset: str = "bert-mini"  # a core.config preset of that family
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
        self.adam_betas = tuple(self.adam_betas)

    @property
    def warmup_steps(self) -> int:
        return round(0.05 * self.steps) if self.warmup is None else self.warmup

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> None:
        """Raise :class:`InputError` (or ConfigError) for the first bad setting."""
        if self.arch not in ("bert", "albert"):
            raise InputError(f"unknown architecture {self.arch!r}; choose bert or albert")
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
        if self.save_dtype not in SAVE_DTYPES:
            raise InputError(
                f"unknown save dtype {self.save_dtype!r}; choose {', '.join(SAVE_DTYPES)}"
            )
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise InputError(f"{name.replace('_', ' ')} must be >= 0")
        if self.max_grad_norm < 0 or self.weight_decay < 0:
            raise InputError("max grad norm and weight decay must be >= 0")
        if self.max_positions is not None and self.max_positions < 1:
            raise InputError(f"max positions must be >= 1, got {self.max_positions}")
        positions = self.max_positions or PRESETS[self.preset].max_position_embeddings
        if self.seq_len > positions:
            raise InputError(
                f"sequence length {self.seq_len} is longer than the model's {positions} "
                "positions (max_position_embeddings); use a shorter --seq-len"
            )
        if self.heldout_every < 0:
            raise InputError("heldout_every must be >= 0")

    def model_config(self, tokenizer: Tokenizer) -> ModelConfig:
        """The preset sized to the tokenizer; raises if the sequence cannot fit its positions."""
        self.validate()
        changes = dict(self.config_overrides)
        # The vocabulary is the tokenizer's, unless a larger one is asked for (e.g. padded).
        changes.setdefault("vocab_size", tokenizer.vocab_size)
        if changes["vocab_size"] < tokenizer.vocab_size:
            raise InputError(
                f"vocab_size {changes['vocab_size']} is smaller than the tokenizer's "
                f"{tokenizer.vocab_size} tokens"
            )
        changes["pad_token_id"] = tokenizer.token_id("pad")
        if self.max_positions is not None:
            changes["max_position_embeddings"] = self.max_positions
        config = preset(self.preset, **changes)
        if self.seq_len > config.max_position_embeddings:
            raise InputError(
                f"sequence length {self.seq_len} is longer than the model's "
                f"{config.max_position_embeddings} positions (max_position_embeddings)"
            )
        return config


# -- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalMetrics:
    """Held-out scores. ``perplexity`` is exp(MLM loss) over the masked positions."""

    mlm_loss: float
    mlm_accuracy: float
    perplexity: float
    sentence_task: str | None  # "nsp", "sop" or None (model without that head)
    sentence_loss: float | None
    sentence_accuracy: float | None
    n_sequences: int
    n_masked: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProgressEvent:
    """One report from the loop. ``kind``: "step" (after every optimizer step), "eval",
    "checkpoint", "done" or "cancelled"; before the first step, set-up reports "prepare"
    (``message`` and ``fraction``), and the CLI reports a failure as "error" (``message``)."""

    kind: str
    step: int
    total_steps: int
    epoch: float  # passes over the training data (fractional, estimated)
    losses: dict[str, float]  # "mlm", "nsp" or "sop", "total" (of the last step)
    lr: float
    tokens_per_s: float  # non-padding tokens, all processes, recent steps
    elapsed_s: float
    eta_s: float
    memory_bytes: int | None  # accelerator memory in use, or the process RSS on CPU
    grad_norm: float | None = None
    metrics: EvalMetrics | None = None
    checkpoint: str | None = None
    tokens_seen: int = 0  # non-padding tokens consumed so far, all processes (kept on resume)
    message: str | None = None  # "prepare" and "error": one line for a person
    fraction: float | None = None  # "prepare": share of the phase done, None if unknown

    @classmethod
    def note(
        cls, kind: str, message: str, fraction: float | None = None, total_steps: int = 0
    ) -> ProgressEvent:
        """A "prepare" or "error" event: no step, losses or rates yet."""
        return cls(
            kind=kind,
            step=0,
            total_steps=total_steps,
            epoch=0.0,
            losses={},
            lr=0.0,
            tokens_per_s=0.0,
            elapsed_s=0.0,
            eta_s=0.0,
            memory_bytes=None,
            message=message,
            fraction=fraction,
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict() if self.metrics else None
        return data


@dataclass(frozen=True)
class StepStats:
    mlm_loss: float
    sentence_loss: float | None
    loss: float
    grad_norm: float
    n_tokens: int  # all processes
    n_masked: int
    n_sequences: int


@dataclass
class TrainResult:
    steps: int
    cancelled: bool
    elapsed_s: float
    tokens_seen: int
    final_losses: dict[str, float]
    metrics: EvalMetrics | None
    checkpoint: Path | None
    final_model: Path | None


Listener = Callable[[ProgressEvent], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- evaluation ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: list[Batch] | Iterator[Batch],
    device: torch.device,
    precision: str = "fp32",
    ctx: DistContext | None = None,
    task: str | None = None,
) -> EvalMetrics:
    """MLM loss/accuracy/perplexity and NSP/SOP accuracy over ``batches`` (summed over ranks)."""
    ctx = ctx or DistContext()
    was_training = model.training
    model.eval()
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    has_sentence = False
    for batch in batches:
        b = batch.to(device)
        losses = pretraining_loss(model, b, precision)
        sums[0] += losses.mlm_sum.double()
        sums[1] += (losses.mlm_logits.argmax(-1) == b.mlm_labels).sum()
        sums[2] += b.mlm_labels.numel()
        sent = losses.sentence_logits
        if sent is not None:
            has_sentence = True
            sums[3] += losses.sentence_sum.double()
            sums[4] += (sent.argmax(-1) == b.sentence_labels).sum()
        sums[5] += b.size
    all_reduce_sum(sums, ctx)
    model.train(was_training)
    mlm_loss, correct, n_masked, s_loss, s_correct, n_seq = sums.tolist()
    if n_masked == 0:
        raise InputError("the evaluation data has no masked positions (is it empty?)")
    mlm_loss /= n_masked
    return EvalMetrics(
        mlm_loss=mlm_loss,
        mlm_accuracy=correct / n_masked,
        perplexity=math.exp(min(mlm_loss, 700.0)),
        sentence_task=task if has_sentence else None,
        sentence_loss=s_loss / n_seq if has_sentence else None,
        sentence_accuracy=s_correct / n_seq if has_sentence else None,
        n_sequences=int(n_seq),
        n_masked=int(n_masked),
    )


# -- the trainer ---------------------------------------------------------------------------------
class Trainer:
    """Pretrain a fresh (or resumed) model on ``train_data``.

    ``out_dir`` None writes nothing (no checkpoints, no log). ``resume_from`` is a checkpoint
    folder written by this class; training continues from its step exactly.
    """

    def __init__(
        self,
        config: TrainConfig,
        tokenizer: Tokenizer,
        train_data: PretrainingData,
        eval_data: PretrainingData | None = None,
        out_dir: str | os.PathLike | None = None,
        device: torch.device | None = None,
        ctx: DistContext | None = None,
        resume_from: str | os.PathLike | None = None,
    ):
        config.validate()
        self.config = config
        self.tokenizer = tokenizer
        self.train_data = train_data
        self.eval_data = eval_data
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.ctx = ctx or DistContext()
        self.device = device if device is not None else resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.model_config = config.model_config(tokenizer)
        if train_data.config.seq_len != config.seq_len:
            raise InputError(
                f"data sequence length {train_data.config.seq_len} != config {config.seq_len}"
            )
        self.task = train_data.config.task
        self._listeners: list[Listener] = []
        self._cancel = threading.Event()
        self._eval_cache: list[Batch] | None = None

        seed_everything(config.seed)
        self.model = build_model(self.model_config)
        self.model.init_weights()
        if config.init_from is not None and resume_from is None:
            # Continued pretraining (e.g. BERT's second phase at a longer --seq-len): the
            # weights carry over; optimizer, schedule and data start afresh.
            self._load_weights(config.init_from)
        self.step = 0
        self.position = DataPosition()
        self.tokens_seen = 0
        self.elapsed_before = 0.0
        state = None
        if resume_from is not None:
            resume_from = Path(resume_from)
            state = ckpt.load_trainer_state(resume_from)
            self._load_weights(resume_from)
            self.step = int(state["step"])
            self.position = DataPosition(**state["position"])
            self.tokens_seen = int(state.get("tokens_seen", 0))
            self.elapsed_before = float(state.get("elapsed_s", 0.0))
            if self.step > config.steps:
                raise InputError(
                    f"{resume_from} is at step {self.step}, past the {config.steps} steps asked"
                )
        # Each rank's dropout gets its own stream; parameters are identical on every rank.
        torch.manual_seed(
            int(np.random.SeedSequence([config.seed, self.ctx.rank, 2]).generate_state(1)[0])
        )
        self.model.to(self.device)
        self.model.train()
        self.optimizer = build_optimizer(
            self.model,
            config.optimizer,
            config.lr,
            config.weight_decay,
            config.adam_betas,
            config.adam_eps,
        )
        self.scheduler = build_scheduler(self.optimizer, config.warmup_steps, config.steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            rngs = state["rng"]
            if len(rngs) != self.ctx.world_size:
                log.warning(
                    "checkpoint has RNG states for %d processes, running %d: dropout "
                    "streams will differ from an uninterrupted run",
                    len(rngs),
                    self.ctx.world_size,
                )
            ckpt.set_rng_state(rngs[self.ctx.rank % len(rngs)])
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp: nn.Module = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model
        self._batches = train_data.step_batches(
            self.position,
            config.batch_size,
            config.grad_accum,
            self.ctx.rank,
            self.ctx.world_size,
        )
        log.info(
            "training %s (%s) on %s, precision %s, %d process(es)",
            config.preset,
            config.arch,
            describe_device(self.device),
            self.precision,
            self.ctx.world_size,
        )

    def _load_weights(self, folder: str | os.PathLike) -> None:
        """Replace the fresh weights by a Hugging Face-format folder's (shapes checked)."""
        weights = hf_to_engine(read_weights(folder), self.model_config)
        load_state(self.model, weights, str(folder))

    # -- control -------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def cancel(self) -> None:
        """Stop at the next step boundary (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, micro: list[Batch]) -> StepStats:
        """Forward/backward over this rank's micro-batches, then one optimizer step."""
        ctx = self.ctx
        counts = torch.tensor(
            [
                sum(b.n_masked for b in micro),
                sum(b.size for b in micro),
                sum(b.n_tokens for b in micro),
            ],
            dtype=torch.float64,
            device=self.device,
        )
        all_reduce_sum(counts, ctx)
        n_masked, n_seq, n_tokens = (int(x) for x in counts.tolist())
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        try:
            for m, batch in enumerate(micro):
                b = batch.to(self.device)
                sync = (
                    self.ddp.no_sync()
                    if ctx.enabled and m < len(micro) - 1
                    else contextlib.nullcontext()
                )
                with sync:
                    losses = pretraining_loss(self.ddp, b, self.precision, n_masked, n_seq)
                    loss = losses.loss
                    sent = losses.sentence_sum
                    if sent is not None:
                        sums[1] += sent.detach().double()
                    sums[0] += losses.mlm_sum.detach().double()
                    # DDP averages gradients over ranks; the loss is already a global mean.
                    self.scaler.scale(loss * ctx.world_size).backward()
        except torch.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(
                f"out of memory on {describe_device(self.device)} with batch size "
                f"{self.config.batch_size} and sequence length {self.config.seq_len}: try a "
                f"smaller --batch-size or --seq-len, and --grad-accum N to keep the same "
                f"effective batch"
            ) from None
        all_reduce_sum(sums, ctx)
        mlm_loss = sums[0].item() / n_masked
        sentence_loss = sums[1].item() / n_seq if sent is not None else None
        total = mlm_loss + (sentence_loss or 0.0)
        if not math.isfinite(total):
            self.optimizer.zero_grad(set_to_none=True)
            kept = self._last_checkpoint()
            raise TrainingError(
                f"the loss became {total} at step {self.step + 1}; training stopped"
                + (f" (last good checkpoint: {kept})" if kept else " (no checkpoint written yet)")
                + "; try a lower --lr, more --warmup, or --precision fp32"
            )
        self.scaler.unscale_(self.optimizer)
        if self.config.max_grad_norm > 0:
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            )
        else:
            grad_norm = float(
                torch.linalg.vector_norm(
                    torch.stack(
                        [p.grad.norm() for p in self.model.parameters() if p.grad is not None]
                    )
                )
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return StepStats(mlm_loss, sentence_loss, total, grad_norm, n_tokens, n_masked, n_seq)

    # -- evaluation and saving -----------------------------------------------------------------
    def evaluate(self) -> EvalMetrics | None:
        if self.eval_data is None:
            return None
        if self._eval_cache is None:
            size = self.config.eval_batch_size or self.config.batch_size
            self._eval_cache = list(
                self.eval_data.eval_batches(
                    size,
                    self.config.eval_examples,
                    self.ctx.rank,
                    self.ctx.world_size,
                    seed=self.config.seed + 1234,
                )
            )
        return evaluate(
            self.model, self._eval_cache, self.device, self.precision, self.ctx, self.task
        )

    def _last_checkpoint(self) -> Path | None:
        return ckpt.latest_checkpoint(self.out_dir) if self.out_dir is not None else None

    def trainer_state(self, elapsed: float) -> dict:
        rngs = all_gather_objects(ckpt.rng_state(), self.ctx)
        return {
            "version": 1,
            "step": self.step,
            "position": asdict(self.position),
            "tokens_seen": self.tokens_seen,
            "elapsed_s": elapsed,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rngs,
        }

    def save_checkpoint(self, elapsed: float) -> Path | None:
        """Write ``checkpoint-N`` (rank 0; every rank takes part in gathering RNG states)."""
        if self.out_dir is None:
            return None
        state = self.trainer_state(elapsed)
        folder = None
        if self.ctx.is_main:
            args = {
                "train": self.config.to_dict(),
                "data": asdict(self.train_data.config),
                "world_size": self.ctx.world_size,
            }
            folder = ckpt.save_checkpoint(
                self.out_dir,
                self.step,
                self.model,
                self.model_config,
                self.tokenizer,
                state,
                args,
                self.config.keep_checkpoints,
            )
        barrier(self.ctx)
        return folder or self.out_dir / ckpt.checkpoint_name(self.step)

    def export(self, metrics: EvalMetrics | None, elapsed: float) -> Path | None:
        """``out_dir/final``: the HF-format model (``save_dtype``) and a training summary."""
        if self.out_dir is None or not self.ctx.is_main:
            return None
        summary = {
            "arch": self.config.arch,
            "preset": self.config.preset,
            "steps": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": round(elapsed, 1),
            "device": describe_device(self.device),
            "precision": self.precision,
            "world_size": self.ctx.world_size,
            "train": self.config.to_dict(),
            "eval": metrics.to_dict() if metrics else None,
        }

        def extra(tmp: Path) -> None:
            (tmp / ckpt.SUMMARY_FILE).write_text(
                json.dumps(summary, indent=2) + "\n", encoding="utf-8"
            )

        return ckpt.write_model_folder(
            self.out_dir / "final",
            self.model,
            self.model_config,
            self.tokenizer,
            extra,
            SAVE_DTYPES[self.config.save_dtype],
        )

    # -- the loop ------------------------------------------------------------------------------
    def events(self) -> Iterator[ProgressEvent]:
        """Train, yielding a :class:`ProgressEvent` after every step, evaluation and save."""
        cfg = self.config
        start = time.perf_counter()
        recent: deque[tuple[float, int]] = deque(maxlen=20)
        per_epoch = self.train_data.examples_per_epoch_estimate
        losses: dict[str, float] = {}
        lr = self.scheduler.get_last_lr()[0]
        grad_norm = None

        log_path = self.out_dir / "train_log.jsonl" if self.out_dir and self.ctx.is_main else None
        if log_path is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._trim_log(log_path)

        def elapsed() -> float:
            return self.elapsed_before + time.perf_counter() - start

        def event(kind: str, **extra) -> ProgressEvent:
            step_time = sum(t for t, _ in recent) / len(recent) if recent else 0.0
            tokens = sum(n for _, n in recent)
            rate = tokens / sum(t for t, _ in recent) if recent else 0.0
            ev = ProgressEvent(
                kind=kind,
                step=self.step,
                total_steps=cfg.steps,
                epoch=self.position.epoch + self.position.index / per_epoch,
                losses=dict(losses),
                lr=lr,
                tokens_per_s=rate,
                elapsed_s=elapsed(),
                eta_s=step_time * (cfg.steps - self.step),
                memory_bytes=memory_in_use(self.device)
                if self.device.type != "cpu"
                else resident_set_bytes(),
                grad_norm=grad_norm,
                tokens_seen=self.tokens_seen,
                **extra,
            )
            if log_path is not None:
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(ev.to_dict()) + "\n")
            return ev

        while self.step < cfg.steps:
            if self._cancel.is_set():
                folder = self.save_checkpoint(elapsed())
                yield event("cancelled", checkpoint=str(folder) if folder else None)
                return
            t0 = time.perf_counter()
            micro, position = next(self._batches)
            lr = self.scheduler.get_last_lr()[0]
            stats = self.train_step(micro)
            self.step += 1
            self.position = position
            self.tokens_seen += stats.n_tokens
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            recent.append((time.perf_counter() - t0, stats.n_tokens))
            losses = {"mlm": stats.mlm_loss, "total": stats.loss}
            if stats.sentence_loss is not None:
                losses[self.task] = stats.sentence_loss
            grad_norm = stats.grad_norm
            yield event("step")
            last = self.step == cfg.steps
            if cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                metrics = self.evaluate()
                if metrics is not None:
                    yield event("eval", metrics=metrics)
            if cfg.save_every and self.step % cfg.save_every == 0 and not last:
                folder = self.save_checkpoint(elapsed())
                if folder is not None:
                    yield event("checkpoint", checkpoint=str(folder))
        metrics = self.evaluate()
        if metrics is not None:
            yield event("eval", metrics=metrics)
        folder = self.save_checkpoint(elapsed())
        final = self.export(metrics, elapsed())
        yield event(
            "done", metrics=metrics, checkpoint=str(final or folder) if (final or folder) else None
        )

    def _trim_log(self, path: Path) -> None:
        """Drop log lines past the step we (re)start from (left by an interrupted run)."""
        if not path.is_file():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")

    def run(self) -> TrainResult:
        """Drive :meth:`events`, telling every listener; returns the outcome."""
        last: ProgressEvent | None = None
        metrics = None
        checkpoint = None
        for ev in self.events():
            last = ev
            if ev.metrics is not None:
                metrics = ev.metrics
            if ev.kind in ("checkpoint", "cancelled") and ev.checkpoint:
                checkpoint = Path(ev.checkpoint)
            for listener in list(self._listeners):
                listener(ev)
        cancelled = last is not None and last.kind == "cancelled"
        final = None
        if last is not None and last.kind == "done" and self.out_dir is not None:
            final = self.out_dir / "final" if self.ctx.is_main else None
            checkpoint = self.out_dir / ckpt.checkpoint_name(self.step)
        return TrainResult(
            steps=self.step,
            cancelled=cancelled,
            elapsed_s=last.elapsed_s if last else 0.0,
            tokens_seen=self.tokens_seen,
            final_losses=dict(last.losses) if last else {},
            metrics=metrics,
            checkpoint=checkpoint,
            final_model=final,
        )
