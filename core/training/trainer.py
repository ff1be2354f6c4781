"""The pretraining loop: MLM + NSP (BERT) or MLM + SOP (ALBERT), on CPU, one GPU or torchrun.

Shaped like minGPT's trainer: it is handed a built model, its data and a loss function
(:func:`core.training.setup.prepare_training` builds them from settings and files), and it only
steps, evaluates, schedules and reports. Progress leaves through :class:`ProgressEvent`
objects, pulled from :meth:`Trainer.events` (a generator the window's worker drives) or
pushed by :meth:`Trainer.run`; every event goes through the listeners first, in the order they
were added. Writing checkpoints, the Hugging Face export (``final/``) and ``train_log.jsonl``
are such listeners (:mod:`core.training.listeners`), attached by ``prepare_training``: a
listener may answer an event with a completed copy (the checkpoint writer fills in
``checkpoint``), which later listeners and the consumer of :meth:`events` then see.
:meth:`Trainer.cancel` stops at the next step boundary with a "cancelled" event, on which
the checkpoint listener saves a resumable checkpoint (:meth:`Trainer.state_dict`).

One optimizer step = ``grad_accum`` micro-batches of ``batch_size`` sequences on each of
``world_size`` processes. The MLM loss is the mean over *all* masked positions of the step
(and the sentence loss the mean over all its sequences), whatever the split into
micro-batches and ranks: each micro-batch's summed loss is divided by the step's global
count (:func:`core.training.loss.pretraining_loss`). So two processes with batch b give the
same update as one process with batch 2b, and gradient accumulation is exactly a larger
batch. Only masked positions are decoded (``mlm_positions``): the vocabulary projection, the
largest matmul of a small model, runs on ~15% of the tokens.

Precision: fp32 on CPU and MPS unless asked; on CUDA bf16 autocast where supported, else
fp16 autocast with a gradient scaler (:mod:`core.precision`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.data import Batch, DataPosition, PretrainingData
from core.device import describe_device, memory_in_use, resident_set_bytes, resolve_device
from core.errors import InputError, TrainingError
from core.precision import resolve_precision
from core.training import run_checkpoints as ckpt
from core.training.config import SAVE_DTYPES, TrainConfig
from core.training.distributed import DistContext, all_gather_objects, all_reduce_sum
from core.training.loss import Losses, pretraining_loss
from core.training.optim import build_optimizer, build_scheduler

__all__ = [
    "SAVE_DTYPES",
    "EvalMetrics",
    "ProgressEvent",
    "StepStats",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate",
]

log = logging.getLogger(__name__)


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


# A listener may return a completed copy of the event (e.g. with ``checkpoint`` filled in).
Listener = Callable[[ProgressEvent], "ProgressEvent | None"]
LossFn = Callable[..., Losses]


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
    """Pretrain ``model`` (built and initialised, on the CPU) on ``train_data``.

    ``settings`` gives the optimisation and run settings (steps, batch, learning rate and
    schedule, clipping, precision, evaluation cadence); ``loss_fn(model, batch, precision,
    mlm_count, sentence_count)`` returns :class:`Losses`. ``state`` is a :meth:`state_dict`
    read back from a checkpoint (the model's weights already loaded): training continues from
    its step exactly. The trainer writes no files; listeners do.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: PretrainingData,
        settings: TrainConfig,
        loss_fn: LossFn = pretraining_loss,
        eval_data: PretrainingData | None = None,
        device: torch.device | None = None,
        ctx: DistContext | None = None,
        state: dict | None = None,
    ):
        self.config = settings
        self.model = model
        self.loss_fn = loss_fn
        self.train_data = train_data
        self.eval_data = eval_data
        self.ctx = ctx or DistContext()
        self.device = device if device is not None else resolve_device(settings.device)
        self.precision = resolve_precision(settings.precision, self.device)
        if train_data.config.seq_len != settings.seq_len:
            raise InputError(
                f"data sequence length {train_data.config.seq_len} != config {settings.seq_len}"
            )
        self.task = train_data.config.task
        self._listeners: list[Listener] = []
        self._cancel = threading.Event()
        self._eval_cache: list[Batch] | None = None
        self._started: float | None = None
        self.step = 0
        self.position = DataPosition()
        self.tokens_seen = 0
        self.elapsed_before = 0.0
        self.last_checkpoint: Path | None = None  # newest resumable checkpoint a listener wrote
        if state is not None:
            self.step = int(state["step"])
            self.position = DataPosition(**state["position"])
            self.tokens_seen = int(state.get("tokens_seen", 0))
            self.elapsed_before = float(state.get("elapsed_s", 0.0))
        # Each rank's dropout gets its own stream; parameters are identical on every rank.
        torch.manual_seed(
            int(np.random.SeedSequence([settings.seed, self.ctx.rank, 2]).generate_state(1)[0])
        )
        self.model.to(self.device)
        self.model.train()
        self.optimizer = build_optimizer(
            self.model,
            settings.optimizer,
            settings.lr,
            settings.weight_decay,
            settings.adam_betas,
            settings.adam_eps,
        )
        self.scheduler = build_scheduler(self.optimizer, settings.warmup_steps, settings.steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        if state is not None:
            self.load_state_dict(state)
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp: nn.Module = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model
        self._batches = train_data.step_batches(
            self.position,
            settings.batch_size,
            settings.grad_accum,
            self.ctx.rank,
            self.ctx.world_size,
        )
        log.info(
            "training %s on %s, precision %s, %d process(es)",
            type(model).__name__,
            describe_device(self.device),
            self.precision,
            self.ctx.world_size,
        )

    # -- state ---------------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Training time so far, earlier runs of a resumed training included."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.elapsed_before + running

    def state_dict(self) -> dict:
        """What resuming needs besides the weights: step, data position, optimizer, schedule,
        gradient scaler and every process's random generators. A collective under torchrun
        (the RNG states are gathered), so every rank must call it."""
        rngs = all_gather_objects(ckpt.rng_state(), self.ctx)
        return {
            "version": 1,
            "step": self.step,
            "position": asdict(self.position),
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed_s,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rngs,
        }

    def load_state_dict(self, state: dict) -> None:
        """Optimizer, schedule, scaler and this rank's RNG from a :meth:`state_dict`."""
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

    # -- control -------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event, after the listeners added before it."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def cancel(self) -> None:
        """Stop at the next step boundary (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _dispatch(self, ev: ProgressEvent) -> ProgressEvent:
        """Pass ``ev`` through the listeners; a listener's returned copy replaces it. The
        first listener to fill in ``checkpoint`` wrote the resumable checkpoint (a later one,
        the export, may point it at ``final/`` instead)."""
        for listener in list(self._listeners):
            answer = listener(ev)
            if isinstance(answer, ProgressEvent):
                if answer.checkpoint and not ev.checkpoint:
                    self.last_checkpoint = Path(answer.checkpoint)
                ev = answer
        return ev

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
                    losses = self.loss_fn(self.ddp, b, self.precision, n_masked, n_seq)
                    sent = losses.sentence_sum
                    if sent is not None:
                        sums[1] += sent.detach().double()
                    sums[0] += losses.mlm_sum.detach().double()
                    # DDP averages gradients over ranks; the loss is already a global mean.
                    self.scaler.scale(losses.loss * ctx.world_size).backward()
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
            kept = self.last_checkpoint
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

    # -- evaluation ----------------------------------------------------------------------------
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

    # -- the loop ------------------------------------------------------------------------------
    def events(self) -> Iterator[ProgressEvent]:
        """Train, yielding a :class:`ProgressEvent` after every step, evaluation and save
        (each one already seen by the listeners)."""
        cfg = self.config
        self._started = time.perf_counter()
        recent: deque[tuple[float, int]] = deque(maxlen=20)
        per_epoch = self.train_data.examples_per_epoch_estimate
        losses: dict[str, float] = {}
        lr = self.scheduler.get_last_lr()[0]
        grad_norm = None

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
                elapsed_s=self.elapsed_s,
                eta_s=step_time * (cfg.steps - self.step),
                memory_bytes=memory_in_use(self.device)
                if self.device.type != "cpu"
                else resident_set_bytes(),
                grad_norm=grad_norm,
                tokens_seen=self.tokens_seen,
                **extra,
            )
            return self._dispatch(ev)

        while self.step < cfg.steps:
            if self._cancel.is_set():
                yield event("cancelled")
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
                saved = event("checkpoint")
                if saved.checkpoint is not None:  # None: no listener writes checkpoints
                    yield saved
        metrics = self.evaluate()
        if metrics is not None:
            yield event("eval", metrics=metrics)
        yield event("done", metrics=metrics)

    def run(self) -> TrainResult:
        """Drive :meth:`events` to the end; returns the outcome."""
        last: ProgressEvent | None = None
        metrics = None
        for ev in self.events():
            last = ev
            if ev.metrics is not None:
                metrics = ev.metrics
        done = last is not None and last.kind == "done"
        final = None
        if done and last.checkpoint and Path(last.checkpoint) != self.last_checkpoint:
            final = Path(last.checkpoint)
        return TrainResult(
            steps=self.step,
            cancelled=last is not None and last.kind == "cancelled",
            elapsed_s=last.elapsed_s if last else 0.0,
            tokens_seen=self.tokens_seen,
            final_losses=dict(last.losses) if last else {},
            metrics=metrics,
            checkpoint=self.last_checkpoint,
            final_model=final,
        )
