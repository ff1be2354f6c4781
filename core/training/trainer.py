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
count (:func:`core.training.loss.pretraining_loss`). So, with dropout 0, two processes with
batch b give the same update as one process with batch 2b, and gradient accumulation is
exactly a larger batch. With dropout on, each micro-batch and each process draws its own
masks (every rank has its own generator), so the updates agree in expectation only. Only
masked positions are decoded (``mlm_positions``): the vocabulary projection, the largest
matmul of a small model, runs on ~15% of the tokens.

Reads: a launched step's losses, gradient norm and (under torchrun) global counts stay on the
device; every ``log_every`` steps (and before an evaluation, a save or the end) all pending
steps are read back in one transfer and reported (:class:`PendingReads`), so on a GPU the
host queues steps ahead instead of waiting for each. Batches come prepared for the device
(:func:`core.training.batch_loader.host_batch`: flat masked-position indices, no mask when
nothing is padded) so a step itself never asks the GPU for a number.

Precision: fp32 on CPU and MPS unless asked; on CUDA bf16 autocast where supported, else
fp16 autocast with a gradient scaler (:mod:`core.precision`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
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
from core.device import (
    T,
    describe_device,
    memory_in_use,
    move_module,
    oom_advice,
    oom_guarded,
    resident_set_bytes,
    resolve_device,
)
from core.errors import InputError, TrainingError
from core.precision import resolve_precision, set_tf32
from core.training import run_checkpoints as ckpt
from core.training.batch_loader import StepBatchLoader, default_workers, host_preparation
from core.training.config import SAVE_DTYPES, TrainConfig
from core.training.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_host,
    all_reduce_sum,
    comm_device,
)
from core.training.events import EvalMetrics, ProgressEvent, TrainResult
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


@dataclass(frozen=True)
class _Launched:
    """A step whose numbers are still on the device; they are read back (all pending steps in
    one transfer) at the next log boundary, so the GPU never waits for the host in between."""

    step: int
    lr: float
    position: DataPosition  # after the step
    has_sentence: bool
    # float32: MLM loss sum, sentence loss sum, gradient norm; under torchrun (float64) also
    # the step's global masked, sequence and token counts, summed on the device.
    numbers: torch.Tensor
    counts: tuple[int, int, int] | None  # (masked, sequences, tokens) known on the host


class StepClock:
    """Durations of steps marked as they start. On CUDA, events recorded in the stream and read
    when the steps are read (no synchronisation per step, and the GPU's own time, idle gaps
    included); elsewhere the wall clock (on the CPU the work ran when it was launched; on MPS
    the read at the log boundary waits for the queued work, so an interval's total holds)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, marks: list) -> list[float]:
        """The time from each mark to the next (one fewer than the marks)."""
        if self.cuda:
            marks[-1].synchronize()
            return [a.elapsed_time(b) / 1e3 for a, b in itertools.pairwise(marks)]
        return [b - a for a, b in itertools.pairwise(marks)]


@dataclass(frozen=True)
class StepStats:
    mlm_loss: float
    sentence_loss: float | None
    loss: float
    grad_norm: float | None  # None on a step the fp16 scaler skipped (inf/NaN gradients)
    n_tokens: int  # all processes
    n_masked: int
    n_sequences: int


# A listener may return a completed copy of the event (e.g. with ``checkpoint`` filled in).
Listener = Callable[[ProgressEvent], "ProgressEvent | None"]
LossFn = Callable[..., Losses]


# What a run's evaluation adds to its seed, so the held-out masks and pairs are not those of
# the training data of the same seed; ``python -m core eval`` of a run's folder uses the same.
EVAL_SEED_OFFSET = 1234


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- evaluation ----------------------------------------------------------------------------------
def evaluate(
    model: nn.Module,
    batches: list[Batch] | Iterator[Batch],
    device: torch.device,
    precision: str = "fp32",
    ctx: DistContext | None = None,
    task: str | None = None,
) -> EvalMetrics:
    """MLM loss/accuracy/perplexity and NSP/SOP accuracy over ``batches`` (summed over ranks).
    Out of memory is a one-line :class:`TrainingError`."""
    return oom_guarded(
        lambda: _evaluate(model, batches, device, precision, ctx or DistContext(), task),
        device,
        lambda: oom_advice(device, "evaluation", None, None),
    )


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    batches: list[Batch] | Iterator[Batch],
    device: torch.device,
    precision: str,
    ctx: DistContext,
    task: str | None,
) -> EvalMetrics:
    was_training = model.training
    model.eval()
    # Per batch, on the device in float32 (MPS has no float64): MLM loss sum, MLM correct,
    # sentence loss sum, sentence correct. Summed across batches on the host in float64, once.
    rows: list[torch.Tensor] = []
    n_masked = n_seq = 0
    has_sentence = False
    try:
        for batch in batches:
            b = batch.to(device)
            losses = pretraining_loss(model, b, precision)
            sent = losses.sentence_logits
            zero = losses.mlm_sum.new_zeros(())
            rows.append(
                torch.stack(
                    [
                        losses.mlm_sum.float(),
                        (losses.mlm_logits.argmax(-1) == b.mlm_labels).sum().float(),
                        losses.sentence_sum.float() if sent is not None else zero,
                        (sent.argmax(-1) == b.sentence_labels).sum().float()
                        if sent is not None
                        else zero,
                    ]
                )
            )
            has_sentence = has_sentence or sent is not None
            n_masked += b.n_masked
            n_seq += b.size
            del losses, sent
    finally:
        model.train(was_training)
    # One transfer to the host; there, Python floats (double precision) hold the totals.
    columns = torch.stack(rows).cpu().T.tolist() if rows else [[]] * 4
    local = [math.fsum(column) for column in columns] + [n_masked, n_seq, int(has_sentence)]
    totals = all_reduce_host(local, ctx, device)
    mlm_loss, correct, s_loss, s_correct, n_masked, n_seq, any_sentence = totals
    has_sentence = any_sentence > 0
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


# -- deferred reads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Shown:
    """What the loop's events report: the newest step read back (the launched ones run ahead)."""

    step: int
    lr: float
    position: DataPosition  # after the step
    tokens_seen: int
    losses: dict[str, float]
    grad_norm: float | None


class PendingReads:
    """The steps launched on the device whose numbers are not read yet, and what was read last.

    Reading a step's losses makes the host wait for the device. The loop instead launches steps
    ahead and reads every pending one back in one transfer when ``log_every`` are pending or
    something needs the numbers (an evaluation, a save, the end, a stop), so a GPU never idles
    between steps. A step's time runs from its :class:`StepClock` mark to the next one's; the
    last 20 steps read back give the rate and the time left that events show."""

    def __init__(self, device: torch.device, log_every: int, shown: _Shown):
        self.log_every = log_every
        self.shown = shown
        self.steps: list[_Launched] = []  # launched, not yet read back, in order
        self._clock = StepClock(device)
        self._marks: list = []  # clock marks at the start of each pending step
        self._recent: deque[tuple[float, int]] = deque(maxlen=20)  # (seconds, tokens) per step

    def start(self) -> None:
        """Mark the start of the next step."""
        self._marks.append(self._clock.mark())

    def add(self, launched: _Launched) -> None:
        self.steps.append(launched)

    @property
    def full(self) -> bool:
        """Whether a log interval's steps are pending."""
        return len(self.steps) >= self.log_every

    def read_back(self, stats: list[StepStats], task: str | None) -> Iterator[_Shown]:
        """What each pending step's event shows, in order, now that its numbers (``stats``)
        are read; nothing is pending afterwards."""
        seconds = self._clock.seconds([*self._marks, self._clock.mark()])
        for one, st, took in zip(self.steps, stats, seconds, strict=True):
            self._recent.append((took, st.n_tokens))
            losses = {"mlm": st.mlm_loss, "total": st.loss}
            if st.sentence_loss is not None:
                losses[task] = st.sentence_loss
            tokens_seen = self.shown.tokens_seen + st.n_tokens
            self.shown = _Shown(one.step, one.lr, one.position, tokens_seen, losses, st.grad_norm)
            yield self.shown
        self.steps.clear()
        self._marks.clear()

    @property
    def step_time(self) -> float:
        """Mean seconds per step, over the recent steps read back."""
        return sum(t for t, _ in self._recent) / len(self._recent) if self._recent else 0.0

    @property
    def tokens_per_s(self) -> float:
        if not self._recent:
            return 0.0
        return sum(n for _, n in self._recent) / sum(t for t, _ in self._recent)


# -- set-up --------------------------------------------------------------------------------------
def _optimization(
    model: nn.Module, settings: TrainConfig, device: torch.device, precision: str
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, torch.amp.GradScaler]:
    """The optimizer, its learning-rate schedule and the gradient scaler (on under fp16 only)."""
    optimizer = build_optimizer(
        model,
        settings.optimizer,
        settings.lr,
        settings.weight_decay,
        settings.adam_betas,
        settings.adam_eps,
    )
    scheduler = build_scheduler(optimizer, settings.warmup_steps, settings.steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return optimizer, scheduler, scaler


def _forward_module(
    model: nn.Module, compile: bool, ctx: DistContext, device: torch.device
) -> nn.Module:
    """What the loss calls: ``model`` in DistributedDataParallel under torchrun, compiled when
    asked (batches then have fixed shapes (B, seq_len)). The module, and its weights the
    listeners save, stays ``model``."""
    forward = model
    if ctx.enabled:
        ids = [device.index] if device.type == "cuda" else None
        forward = DistributedDataParallel(model, device_ids=ids)
    if compile:
        forward = torch.compile(forward)
    return forward


def _step_loader(
    data: PretrainingData,
    position: DataPosition,
    settings: TrainConfig,
    ctx: DistContext,
    device: torch.device,
    prepare: Callable[[Batch], Batch] | None,
) -> StepBatchLoader:
    """This rank's steps from ``position`` on, built ahead by ``settings.data_workers`` batch
    workers (None: the device's default) and, on CUDA, pinned for asynchronous copies."""
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # where the loader's pin-memory thread pins
    workers = settings.data_workers
    if workers is None:
        workers = default_workers(device, ctx.world_size)
    return StepBatchLoader(
        data,
        position,
        settings.batch_size,
        settings.grad_accum,
        ctx.rank,
        ctx.world_size,
        workers=workers,
        pin_memory=device.type == "cuda",
        prepare=prepare,
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
        move_module(self.model, self.device)
        self.model.train()
        self.optimizer, self.scheduler, self.scaler = _optimization(
            self.model, settings, self.device, self.precision
        )
        if state is not None:
            self.load_state_dict(state)
        set_tf32(self.device, settings.tf32)
        self.ddp = _forward_module(self.model, settings.compile, self.ctx, self.device)
        # Steps between reads of the losses: each read waits for the GPU to finish.
        self.log_every = settings.log_every or (1 if self.device.type == "cpu" else 10)
        self._prepare = host_preparation(
            self.device, settings.compile, settings.seq_len, train_data.config.predictions_cap
        )
        self._batches = _step_loader(
            train_data, self.position, settings, self.ctx, self.device, self._prepare
        )
        log.info(
            "training %s on %s, precision %s, %d process(es), %d batch worker(s), "
            "losses read every %d step(s)",
            type(model).__name__,
            describe_device(self.device),
            self.precision,
            self.ctx.world_size,
            self._batches.workers,
            self.log_every,
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
        rngs = all_gather_objects(ckpt.rng_state(self.device), self.ctx)
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
                "resuming a %d-process run with %d processes: it continues from the same data "
                "position, but the global batch is now %d sequences and the dropout draws "
                "differ, so it will not reproduce an uninterrupted run exactly",
                len(rngs),
                self.ctx.world_size,
                self.config.batch_size * self.config.grad_accum * self.ctx.world_size,
            )
        ckpt.set_rng_state(rngs[self.ctx.rank % len(rngs)], self.device)

    # -- control -------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event, after the listeners added before it."""
        self._listeners.append(listener)

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
            # Writing a checkpoint or the export (weights cast to fp16/bf16) can run out of GPU
            # memory too: the same one line as a step's.
            what = "saving the model" if ev.kind in ("checkpoint", "cancelled", "done") else ev.kind
            answer = oom_guarded(
                lambda listener=listener, ev=ev: listener(ev),
                self.device,
                lambda what=what: oom_advice(self.device, what, None, None),
            )
            if isinstance(answer, ProgressEvent):
                if answer.checkpoint and not ev.checkpoint:
                    self.last_checkpoint = Path(answer.checkpoint)
                ev = answer
        return ev

    # -- one step ------------------------------------------------------------------------------
    def agree_to_stop(self) -> bool:
        """Whether any rank was asked to stop (Ctrl-C, the window's Stop), agreed by all: under
        torchrun a sum over ranks read on the host, so every rank takes the same decision at
        the same step (a rank stopping alone would enter the checkpoint's gather while the
        others start the next step, and both would hang). Called where no step is pending."""
        asked = int(self._cancel.is_set())
        if not self.ctx.enabled:
            return asked > 0
        return all_reduce_host([asked], self.ctx, self.device)[0] > 0

    def train_step(self, micro: list[Batch]) -> StepStats:
        """Forward/backward over this rank's micro-batches (as the data pipeline made them),
        then one optimizer step, its numbers read back at once. The loop (:meth:`events`) reads
        them at log intervals instead. Running out of memory anywhere in it (activations, the
        first step's optimizer states) is a one-line :class:`TrainingError`, raised after the
        memory is released."""

        def step() -> StepStats:
            launched = self._launch(micro, self.step + 1, self.scheduler.get_last_lr()[0])
            (stats,) = self._read([launched])
            self._apply()
            return stats

        return self._guarded(step)

    def _guarded(self, fn: Callable[[], T]) -> T:
        return oom_guarded(
            fn,
            self.device,
            lambda: oom_advice(
                self.device, "a training step", self.config.batch_size, self.config.seq_len
            ),
            cleanup=lambda: self.optimizer.zero_grad(set_to_none=True),
        )

    def _launch(
        self, micro: list[Batch], step: int, lr: float, position: DataPosition | None = None
    ) -> _Launched:
        """Forward/backward and gradient clipping, queued on the device with no read back: the
        step's global counts are summed on the device under torchrun, and the losses and the
        gradient norm stay there (:class:`_Launched`)."""
        ctx = self.ctx
        local = (
            sum(b.n_masked for b in micro),
            sum(b.size for b in micro),
            sum(b.n_tokens for b in micro),
        )
        counts: tuple[int, int, int] | None = local
        n_masked, n_seq = local[0], local[1]
        if ctx.enabled:
            summed = torch.tensor(local, dtype=torch.int64)
            summed = summed.to(comm_device(ctx, self.device), non_blocking=True)
            all_reduce_sum(summed, ctx)  # on the training device: NCCL on CUDA, gloo on CPU
            n_masked, n_seq, counts = summed[0], summed[1], None
        # float32 on the device: MPS has no float64, and a step's few sums need no more.
        sums = torch.zeros(2, dtype=torch.float32, device=self.device)
        has_sentence = False
        for m, batch in enumerate(micro):
            b = batch.to(self.device)
            sync = (
                self.ddp.no_sync()
                if ctx.enabled and m < len(micro) - 1
                else contextlib.nullcontext()
            )
            with sync:
                losses = self.loss_fn(self.ddp, b, self.precision, n_masked, n_seq)
                if losses.sentence_sum is not None:
                    sums[1] += losses.sentence_sum.detach().float()
                    has_sentence = True
                sums[0] += losses.mlm_sum.detach().float()
                # DDP averages gradients over ranks; the loss is already a global mean.
                self.scaler.scale(losses.loss * ctx.world_size).backward()
            del losses
        all_reduce_sum(sums, ctx)
        self.scaler.unscale_(self.optimizer)
        if self.config.max_grad_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.config.max_grad_norm
            )
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in self.model.parameters() if p.grad is not None])
            )
        numbers = torch.cat([sums, norm.float().reshape(1)])
        if counts is None:  # float64 holds the counts exactly (no float64 on MPS: no torchrun)
            numbers = torch.cat([numbers.double(), summed.double()])
        return _Launched(step, lr, position or self.position, has_sentence, numbers, counts)

    def _read(self, launched: list[_Launched]) -> list[StepStats]:
        """The launched steps' numbers, in one device-to-host transfer. A non-finite loss stops
        training with one line naming its step (nothing is saved after it)."""
        rows = torch.stack([one.numbers for one in launched]).tolist()
        stats = []
        for one, row in zip(launched, rows, strict=True):
            mlm_sum, sent_sum, grad_norm = row[:3]
            n_masked, n_seq, n_tokens = one.counts or (int(x) for x in row[3:])
            mlm_loss = mlm_sum / n_masked
            sentence_loss = sent_sum / n_seq if one.has_sentence else None
            total = mlm_loss + (sentence_loss or 0.0)
            if not math.isfinite(total):
                self.optimizer.zero_grad(set_to_none=True)
                kept = self.last_checkpoint
                raise TrainingError(
                    f"the loss became {total} at step {one.step}; training stopped"
                    + (
                        f" (last good checkpoint: {kept})"
                        if kept
                        else " (no checkpoint written yet)"
                    )
                    + "; try a lower --lr, more --warmup, or --precision fp32"
                )
            finite_norm = grad_norm if math.isfinite(grad_norm) else None
            stats.append(
                StepStats(mlm_loss, sentence_loss, total, finite_norm, n_tokens, n_masked, n_seq)
            )
        return stats

    def _apply(self) -> None:
        """The optimizer step (skipped by the fp16 scaler on inf/NaN gradients) and schedule."""
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self) -> EvalMetrics | None:
        if self.eval_data is None:
            return None
        if self._eval_cache is None:
            size = self.config.eval_batch_size or self.config.batch_size
            prepare = self._prepare or (lambda batch: batch)
            batches = self.eval_data.eval_batches(
                size,
                self.config.eval_examples,
                self.ctx.rank,
                self.ctx.world_size,
                seed=self.config.seed + EVAL_SEED_OFFSET,
            )
            self._eval_cache = [prepare(batch) for batch in batches]
        return oom_guarded(
            lambda: _evaluate(
                self.model, self._eval_cache, self.device, self.precision, self.ctx, self.task
            ),
            self.device,
            lambda: oom_advice(
                self.device,
                "evaluation",
                self.config.eval_batch_size or self.config.batch_size,
                self.config.seq_len,
            ),
        )

    # -- the loop ------------------------------------------------------------------------------
    def events(self) -> Iterator[ProgressEvent]:
        """Train, yielding a :class:`ProgressEvent` for every step (in bursts, as their numbers
        are read back: :class:`PendingReads`), evaluation and save, each one already seen by
        the listeners."""
        try:
            yield from self._events()
        finally:
            close = getattr(self._batches, "close", None)
            if close is not None:  # stop building batches ahead
                close()

    def _events(self) -> Iterator[ProgressEvent]:
        cfg = self.config
        self._started = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        shown = _Shown(self.step, lr, self.position, self.tokens_seen, {}, None)
        reads = PendingReads(self.device, self.log_every, shown)
        while self.step < cfg.steps:
            # Under torchrun the ranks agree only where nothing is pending (a collective read);
            # a single process looks at its own flag before every step.
            if (not reads.steps or not self.ctx.enabled) and self.agree_to_stop():
                if reads.steps:
                    yield from self._step_events(reads, self._read(reads.steps))
                yield self._event("cancelled", reads)
                return
            reads.start()
            micro, position = next(self._batches)  # not consumed if we stop: position stays
            step = self.step + 1
            evaluates, saves = (
                self._due_after(step, cfg.eval_every),
                self._due_after(step, cfg.save_every),
            )
            needed = step == cfg.steps or evaluates or saves
            stats = self._guarded(
                functools.partial(self._loop_step, micro, step, position, reads, needed)
            )
            self.step, self.position = step, position
            if stats is None:
                continue
            yield from self._step_events(reads, stats)
            if evaluates:
                metrics = self.evaluate()
                if metrics is not None:
                    yield self._event("eval", reads, metrics=metrics)
            if saves:
                saved = self._event("checkpoint", reads)
                if saved.checkpoint is not None:  # None: no listener writes checkpoints
                    yield saved
        metrics = self.evaluate()
        if metrics is not None:
            yield self._event("eval", reads, metrics=metrics)
        yield self._event("done", reads, metrics=metrics)

    def _loop_step(
        self,
        micro: list[Batch],
        step: int,
        position: DataPosition,
        reads: PendingReads,
        needed: bool,
    ) -> list[StepStats] | None:
        """Launch step ``step``; read it back with every pending step when a log interval is
        full or its numbers are ``needed`` (before the optimizer step, so that a non-finite
        loss stops before it is applied); then apply it. The numbers read, or None."""
        reads.add(self._launch(micro, step, self.scheduler.get_last_lr()[0], position))
        stats = self._read(reads.steps) if needed or reads.full else None
        self._apply()
        return stats

    def _due_after(self, step: int, every: int | None) -> bool:
        """Whether something done ``every`` steps (evaluation, a save) comes after ``step``;
        never after the last, whose evaluation and save the end makes anyway."""
        return bool(every) and step % every == 0 and step < self.config.steps

    def _step_events(self, reads: PendingReads, stats: list[StepStats]) -> Iterator[ProgressEvent]:
        """The "step" events of the pending steps, now that their numbers are read; the
        tokens a checkpoint records are those of the steps read."""
        for shown in reads.read_back(stats, self.task):
            self.tokens_seen = shown.tokens_seen
            yield self._event("step", reads)

    def _event(self, kind: str, reads: PendingReads, **extra) -> ProgressEvent:
        """A ``kind`` event of the newest step read back, passed through the listeners."""
        shown, steps = reads.shown, self.config.steps
        ev = ProgressEvent(
            kind=kind,
            step=shown.step,
            total_steps=steps,
            epoch=shown.position.epoch + shown.position.index / self._examples_per_epoch,
            losses=dict(shown.losses),
            lr=shown.lr,
            tokens_per_s=reads.tokens_per_s,
            elapsed_s=self.elapsed_s,
            eta_s=reads.step_time * (steps - shown.step),
            memory_bytes=memory_in_use(self.device)
            if self.device.type != "cpu"
            else resident_set_bytes(),
            grad_norm=shown.grad_norm,
            tokens_seen=shown.tokens_seen,
            **extra,
        )
        return self._dispatch(ev)

    @functools.cached_property
    def _examples_per_epoch(self) -> int:
        """The epoch estimate's denominator, computed once (it sums over the corpus)."""
        return self.train_data.examples_per_epoch_estimate

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
