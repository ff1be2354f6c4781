"""Measured memory and latency of real forward/backward steps, to hold the memory model and the
FLOP counts against.

Memory, CUDA: ``torch.cuda.max_memory_allocated`` around one training step (forward, loss,
backward, optimizer step), after a warm-up step has created the optimizer states. The device
may hold other tensors (another loaded model, a cached batch): the allocation before the step
is the baseline, and the figure is this model's own tensors alive before the step (weights,
optimizer states, inputs) plus the peak's rise above that baseline, the same sum as on CPU.

Memory, CPU: the CPU allocator keeps no peak counter, so we count ourselves. A
``TorchDispatchMode`` sees every ATen op of the step (forward, the autograd engine's backward
ops, the optimizer's foreach ops); each output storage not seen before is a new allocation and
adds its ``nbytes``; a ``weakref.finalize`` on the storage subtracts it when it is freed. Peak
live bytes + the bytes alive before the step (weights, optimizer states, inputs) is the same
quantity ``max_memory_allocated`` reports on CUDA, minus allocator rounding and minus scratch
buffers a kernel allocates internally without returning them (e.g. inside oneDNN matmuls).
Separately, ``torch.autograd.graph.saved_tensors_hooks`` sums the distinct storages autograd
saves for backward: the measured counterpart of the model's activation figure.

Latency: median wall time of several forward passes (eval, no grad) after warm-up.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import weakref
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from core.config import ModelConfig
from core.cost.settings import check_settings, masked_count
from core.errors import InputError
from core.loaded_model import build_model
from core.precision import autocast
from core.training import Losses, build_optimizer, pretraining_loss


@dataclass(frozen=True)
class SyntheticBatch:
    input_ids: torch.Tensor  # (B, T)
    token_type_ids: torch.Tensor  # (B, T): first half A, second half B
    mlm_positions: torch.Tensor  # (B, T) bool, exactly masked_count(B, T) True
    mlm_labels: torch.Tensor  # (N,)
    sentence_labels: torch.Tensor  # (B,) NSP/SOP labels
    attention_mask: torch.Tensor | None = None  # no padding: every position attends


def synthetic_batch(
    config: ModelConfig, batch: int, seq: int, device: torch.device, seed: int = 0
) -> SyntheticBatch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch, seq), generator=g)
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, seq // 2 :] = 1
    n = masked_count(batch, seq)
    flat = torch.zeros(batch * seq, dtype=torch.bool)
    flat[torch.randperm(batch * seq, generator=g)[:n]] = True
    labels = torch.randint(5, config.vocab_size, (n,), generator=g)
    pair = torch.randint(0, 2, (batch,), generator=g)
    return SyntheticBatch(
        ids.to(device),
        types.to(device),
        flat.view(batch, seq).to(device),
        labels.to(device),
        pair.to(device),
    )


def training_loss(
    model: nn.Module, data: SyntheticBatch, precision: str = "fp32"
) -> tuple[object, torch.Tensor]:
    """Forward pass and the trainer's pre-training loss (``core.training.pretraining_loss``:
    MLM on the masked positions plus NSP or SOP, each a mean over the batch); a model with no
    pre-training head trains on its pooled output or last hidden state so that backward
    touches every encoder weight."""
    losses: Losses = pretraining_loss(model, data, precision)
    out, loss = losses.output, losses.loss
    if loss is None:
        target = out.pooler_output if out.pooler_output is not None else out.last_hidden_state
        loss = target.float().square().mean()
    return out, loss


def make_optimizer(model: nn.Module, optimizer: str) -> torch.optim.Optimizer:
    """The trainer's own optimizer (``core.training.optim``): AdamW or LAMB, both with two
    fp32 moments per parameter, so the measured step is the step training runs."""
    return build_optimizer(model, optimizer, lr=1e-4, weight_decay=0.01)


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages allocated by ATen ops while active, and their peak."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device
        self._seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.current = 0
        self.peak = 0

    def _storages(self, tree) -> list:
        leaves, _ = tree_flatten(tree)
        return [
            t.untyped_storage()
            for t in leaves
            if isinstance(t, torch.Tensor) and t.device.type == self.device.type
        ]

    def _free(self, nbytes: int) -> None:
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for storage in self._storages((args, kwargs)):  # pre-existing: known, not counted
            if storage not in self._seen:
                self._seen[storage] = 0
        out = func(*args, **kwargs)
        for storage in self._storages(out):
            if storage not in self._seen:
                nbytes = storage.nbytes()
                self._seen[storage] = nbytes
                self.current += nbytes
                weakref.finalize(storage, self._free, nbytes)
                self.peak = max(self.peak, self.current)
        return out


def _tensor_bytes(tensors) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def _state_tensors(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [
        v
        for s in opt.state.values()
        for v in s.values()
        if isinstance(v, torch.Tensor) and v.dim() > 0
    ]


@dataclass(frozen=True)
class MeasuredMemory:
    """Bytes measured around one real step. ``peak`` is comparable to the model's total."""

    mode: str  # "training" or "inference"
    device: str  # "cpu", "cuda", ...
    method: str  # how the peak was measured (one line)
    peak: int  # highest tensor bytes alive during the step, everything included
    weights: int  # parameter bytes
    gradients: int  # .grad bytes after backward (0 for inference)
    optimizer_states: int  # optimizer state bytes (0 for inference)
    activations_saved: int | None  # distinct storages autograd saved for backward (training)
    batch: int
    seq: int
    precision: str
    optimizer: str | None

    def table_rows(self, model: str | None = None) -> list[dict]:
        """One tidy row (:func:`core.export.tidy_rows`), named for ``model`` if given."""
        return [_named_row("measured_memory", model, self)]


def _named_row(table: str, model: str | None, result: MeasuredMemory | Latency) -> dict:
    row: dict = {"table": table}
    if model is not None:  # else a ``meta`` model name may fill the column
        row["model"] = model
    return row | dataclasses.asdict(result)


def cuda_peak_rise(run, device: torch.device) -> int:
    """Bytes by which ``run()`` raised CUDA's allocated memory at its peak above what was
    allocated before it: whatever else lives on the GPU (other models) is not counted."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device)) - int(before)


def _model_for(model_or_config: nn.Module | ModelConfig, device: torch.device) -> nn.Module:
    if isinstance(model_or_config, ModelConfig):
        torch.manual_seed(0)
        model = build_model(model_or_config)
        model.init_weights()
        return model.to(device)
    return model_or_config


def measure_training_memory(
    model_or_config: nn.Module | ModelConfig,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    device: str | torch.device = "cpu",
) -> MeasuredMemory:
    """Peak memory of one training step (forward, loss, backward, optimizer step), measured."""
    device = torch.device(device)
    model = _model_for(model_or_config, device)
    config = model.config
    check_settings(batch, seq, precision, optimizer, config)
    was_training = model.training
    model.train()
    data = synthetic_batch(config, batch, seq, device)
    opt = make_optimizer(model, optimizer)

    def step(track_saved: bool = False) -> int | None:
        opt.zero_grad(set_to_none=True)
        saved: dict[int, int] = {}
        param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in param_ptrs:  # autocast's cast copies of weights do count
                saved[ptr] = storage.nbytes()
            return t

        hooks = (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
            if track_saved
            else nullcontext()
        )
        with hooks:
            out, loss = training_loss(model, data, precision)
        loss.backward()
        opt.step()
        del out, loss
        return sum(saved.values()) if track_saved else None

    try:
        step()  # warm-up: creates the optimizer states, as in any step after the first
        activations = step(track_saved=True)
        weights = _tensor_bytes(model.parameters())
        states = _tensor_bytes(_state_tensors(opt))
        grads = _tensor_bytes(p.grad for p in model.parameters() if p.grad is not None)
        opt.zero_grad(set_to_none=True)
        base = _tensor_bytes(
            [
                *model.parameters(),
                *_state_tensors(opt),
                *(t for f in data.__dataclass_fields__ if (t := getattr(data, f)) is not None),
            ]
        )
        if device.type == "cuda":
            peak = base + cuda_peak_rise(step, device)
            method = (
                "torch.cuda.max_memory_allocated over one step (warm optimizer) minus the "
                "allocation before it, + this model's tensors alive before the step"
            )
        else:
            tracker = LiveBytes(device)
            with tracker:
                step()
            peak = base + tracker.peak
            method = (
                "peak live bytes of ATen-op outputs (TorchDispatchMode + storage "
                "finalizers) + tensors alive before the step"
            )
    finally:
        model.train(was_training)
    return MeasuredMemory(
        mode="training",
        device=device.type,
        method=method,
        peak=int(peak),
        weights=weights,
        gradients=grads,
        optimizer_states=states,
        activations_saved=activations,
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=optimizer,
    )


def measure_inference_memory(
    model_or_config: nn.Module | ModelConfig,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    output_attentions: bool = True,
    device: str | torch.device = "cpu",
) -> MeasuredMemory:
    """Peak memory of one forward pass (eval, no grad) that keeps every hidden state, the
    attention maps when asked, and MLM logits at every position, as a probe does."""
    device = torch.device(device)
    model = _model_for(model_or_config, device)
    config = model.config
    check_settings(batch, seq, precision, "adamw", config)
    was_training = model.training
    model.eval()
    data = synthetic_batch(config, batch, seq, device)

    def forward() -> None:
        with torch.no_grad(), autocast(device, precision):
            out = model(
                data.input_ids,
                token_type_ids=data.token_type_ids,
                output_attentions=output_attentions,
            )
        del out

    try:
        weights = _tensor_bytes(model.parameters())
        base = _tensor_bytes([*model.parameters(), data.input_ids, data.token_type_ids])
        if device.type == "cuda":
            peak = base + cuda_peak_rise(forward, device)
            method = (
                "torch.cuda.max_memory_allocated over one forward pass minus the allocation "
                "before it, + this model's weights and inputs"
            )
        else:
            tracker = LiveBytes(device)
            with tracker:
                forward()
            peak = base + tracker.peak
            method = (
                "peak live bytes of ATen-op outputs (TorchDispatchMode + storage "
                "finalizers) + tensors alive before the pass"
            )
    finally:
        model.train(was_training)
    return MeasuredMemory(
        mode="inference",
        device=device.type,
        method=method,
        peak=int(peak),
        weights=weights,
        gradients=0,
        optimizer_states=0,
        activations_saved=None,
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=None,
    )


@dataclass(frozen=True)
class Latency:
    """Forward-pass wall time (eval, no grad, no attention maps; the MLM head decodes the 15%
    masked positions of a pre-training batch) at a batch size and length."""

    median_ms: float
    min_ms: float
    runs: int
    batch: int
    seq: int
    precision: str
    device: str
    tokens_per_s: float  # batch x seq / median

    def table_rows(self, model: str | None = None) -> list[dict]:
        """One tidy row (:func:`core.export.tidy_rows`), named for ``model`` if given."""
        return [_named_row("latency", model, self)]


def measure_latency(
    model: nn.Module,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    runs: int = 5,
    warmup: int = 1,
    device: str | torch.device | None = None,
) -> Latency:
    """Median of ``runs`` timed forward passes after ``warmup`` untimed ones."""
    device = next(model.parameters()).device if device is None else torch.device(device)
    check_settings(batch, seq, precision, "adamw", model.config)
    if runs < 1:
        raise InputError(f"runs must be at least 1, got {runs}")
    data = synthetic_batch(model.config, batch, seq, device)
    was_training = model.training
    model.eval()
    times = []
    try:
        for i in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.no_grad(), autocast(device, precision):
                model(
                    data.input_ids,
                    token_type_ids=data.token_type_ids,
                    mlm_positions=data.mlm_positions,
                )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    median = statistics.median(times)
    return Latency(
        median_ms=median * 1e3,
        min_ms=min(times) * 1e3,
        runs=runs,
        batch=batch,
        seq=seq,
        precision=precision,
        device=device.type,
        tokens_per_s=batch * seq / median,
    )
