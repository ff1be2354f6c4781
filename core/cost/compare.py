"""BERT vs ALBERT side by side: parameters, memory (model and measurement), FLOPs, latency and
the layer-to-layer transition curves of one sentence (Lan et al. 2020, Figure 1).

:func:`summarize` sizes up one loaded model; :func:`compare` does it for two and keeps the
settings with the result. Memory is measured on a fresh, randomly initialised copy of each
model (a training step changes weights; memory does not depend on their values), latency on
the loaded model itself. The text tables are for the CLI; the window plots the same fields.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.analysis.hidden_states import LayerStats, layer_stats
from core.analysis.probe import probe
from core.config import Heads, ModelConfig
from core.cost.flops import FlopsEstimate, flops_per_token
from core.cost.memory import MemoryEstimate, inference_memory, training_memory
from core.cost.params import COMPONENTS, ParamReport, param_report
from core.cost.settings import check_settings
from core.errors import InputError

if TYPE_CHECKING:  # torch and the measurements are imported by the functions that run models
    import torch

    from core.cost.measure import Latency, MeasuredMemory
    from core.loaded_model import LoadedModel


@dataclass
class ModelSummary:
    name: str
    model_type: str
    config: dict
    params: ParamReport
    memory_inference: MemoryEstimate
    memory_training: MemoryEstimate
    measured_inference: MeasuredMemory | None
    measured_training: MeasuredMemory | None
    flops: FlopsEstimate
    latency: Latency | None
    layers: LayerStats  # transitions of the probed sentence
    tokens: list[str]

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`) of every figure, each named for the model."""
        rows = (
            self.params.table_rows()
            + self.memory_training.table_rows()
            + self.memory_inference.table_rows()
        )
        for m in (self.measured_training, self.measured_inference):
            if m is not None:
                rows += m.table_rows(self.name)
        rows += self.flops.table_rows()
        if self.latency is not None:
            rows += self.latency.table_rows(self.name)
        rows += [{**r, "model": self.name} for r in self.layers.table_rows(self.tokens)]
        return rows


@dataclass
class Comparison:
    text: str
    batch: int
    seq: int
    precision: str
    optimizer: str
    device: str
    a: ModelSummary
    b: ModelSummary

    @property
    def models(self) -> tuple[ModelSummary, ModelSummary]:
        return self.a, self.b

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`) of both models."""
        return self.a.table_rows() + self.b.table_rows()

    def table_meta(self) -> dict:
        """The settings both models ran under: the leading columns of every row."""
        return {
            "text": self.text,
            "batch": self.batch,
            "seq": self.seq,
            "precision": self.precision,
            "optimizer": self.optimizer,
            "device": self.device,
        }


def kernel_family(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else "cuda"


def fresh_copy(loaded: LoadedModel, device: torch.device) -> torch.nn.Module:
    import torch

    from core.loaded_model import build_model

    torch.manual_seed(0)
    model = build_model(loaded.config, loaded.heads)
    model.init_weights()
    return model.to(device)


@functools.lru_cache(maxsize=16)
def _meta_module(config: ModelConfig, heads: Heads) -> torch.nn.Module:
    """The model on the meta device (shapes only), built once per configuration: a cost-panel
    setting changes the figures, not the model, and building is most of their cost."""
    from core.loaded_model import meta_model

    return meta_model(config, heads)


def predicted_summary(
    config: ModelConfig,
    heads: Heads,
    name: str,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    kernels: str = "cpu",
    layers: LayerStats | None = None,
    tokens: list[str] | None = None,
) -> ModelSummary:
    """Parameters, modelled memory and FLOPs of a configuration (nothing measured)."""
    check_settings(batch, seq, precision, optimizer, config)
    module = _meta_module(config, heads)
    params = param_report(module, name)
    return ModelSummary(
        name=name,
        model_type=config.model_type,
        config=config.to_dict(),
        params=params,
        memory_inference=inference_memory(module, batch, seq, precision, True, kernels, name),
        memory_training=training_memory(module, batch, seq, precision, optimizer, kernels, name),
        measured_inference=None,
        measured_training=None,
        flops=flops_per_token(config, seq, heads=heads, name=name, report=params),
        latency=None,
        layers=layers,
        tokens=list(tokens or []),
    )


def summarize(
    loaded: LoadedModel,
    text: str,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    measure: bool = True,
    runs: int = 5,
) -> ModelSummary:
    """Parameters, modelled and measured memory, FLOPs, latency and layer transitions."""
    from core.cost.measure import measure_inference_memory, measure_latency, measure_training_memory

    check_settings(batch, seq, precision, optimizer, loaded.config)  # before any work
    result = probe(loaded, text)
    predicted = predicted_summary(
        loaded.config,
        loaded.heads,
        loaded.name,
        batch,
        seq,
        precision,
        optimizer,
        kernel_family(loaded.device),
        layer_stats(result),
        result.token_strings,
    )
    device = loaded.device
    if not measure or device.type not in ("cpu", "cuda"):
        return predicted
    copy = fresh_copy(loaded, device)
    measured_train = measure_training_memory(copy, batch, seq, precision, optimizer, device)
    del copy
    copy = fresh_copy(loaded, device)
    measured_inf = measure_inference_memory(copy, batch, seq, precision, True, device)
    del copy
    return dataclasses.replace(
        predicted,
        measured_training=measured_train,
        measured_inference=measured_inf,
        latency=measure_latency(loaded.model, batch, seq, precision, runs=runs),
    )


def compare(
    model_a: LoadedModel,
    model_b: LoadedModel,
    text: str,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    measure: bool = True,
    runs: int = 5,
) -> Comparison:
    """Both models under the same settings (they must run on the same device)."""
    if model_a.device != model_b.device:
        raise InputError(
            f"compare runs both models on one device; got {model_a.device} and {model_b.device}"
        )
    for m in (model_a, model_b):
        check_settings(batch, seq, precision, optimizer, m.config)
    return Comparison(
        text=text,
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=optimizer,
        device=model_a.device.type,
        a=summarize(model_a, text, batch, seq, precision, optimizer, measure, runs),
        b=summarize(model_b, text, batch, seq, precision, optimizer, measure, runs),
    )


# -- text tables for the CLI ----------------------------------------------------------------
def mib(n: int | float | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f} MiB"


def _count(n: int) -> str:
    return f"{n / 1e6:,.2f}M"


def format_comparison(c: Comparison) -> str:
    a, b = c.a, c.b
    w = max(24, len(a.name) + 2, len(b.name) + 2)
    lines = [
        f"settings: batch {c.batch}, seq {c.seq}, precision {c.precision}, optimizer "
        f"{c.optimizer}, device {c.device}",
        "",
        f"{'parameters (unique / effective)':<36}{a.name:>{w}}{b.name:>{w}}",
    ]

    def row(label: str, va: str, vb: str) -> None:
        lines.append(f"{label:<36}{va:>{w}}{vb:>{w}}")

    for comp in COMPONENTS:
        ca, cb = a.params.component(comp), b.params.component(comp)
        row(
            f"  {comp}",
            f"{_count(ca.unique)}/{_count(ca.effective)} {ca.share_unique:5.1%}",
            f"{_count(cb.unique)}/{_count(cb.effective)} {cb.share_unique:5.1%}",
        )
    row(
        "  total",
        f"{_count(a.params.total_unique)}/{_count(a.params.total_effective)}",
        f"{_count(b.params.total_unique)}/{_count(b.params.total_effective)}",
    )
    row("  backbone (no heads)", _count(a.params.backbone_unique), _count(b.params.backbone_unique))
    lines += ["", f"{'memory, training step (model)':<36}"]
    for item in a.memory_training.items:
        if item.group == "peak":
            continue
        row(f"  {item.name}", mib(item.bytes), mib(b.memory_training.get(item.name)))
    row("  peak (model)", mib(a.memory_training.total), mib(b.memory_training.total))
    ma, mb = a.measured_training, b.measured_training
    row("  peak (measured)", mib(ma.peak if ma else None), mib(mb.peak if mb else None))
    if ma and mb:
        row(
            "  model / measured",
            f"{a.memory_training.total / ma.peak:.3f}",
            f"{b.memory_training.total / mb.peak:.3f}",
        )
    lines.append(f"{'memory, inference (model)':<36}")
    row("  peak (model)", mib(a.memory_inference.total), mib(b.memory_inference.total))
    ia, ib = a.measured_inference, b.measured_inference
    row("  peak (measured)", mib(ia.peak if ia else None), mib(ib.peak if ib else None))
    lines += ["", f"{'compute':<36}"]
    row(
        "  forward GFLOPs / token",
        f"{a.flops.forward_per_token / 1e9:.4f}",
        f"{b.flops.forward_per_token / 1e9:.4f}",
    )
    row(
        "  training GFLOPs / token",
        f"{a.flops.training_per_token / 1e9:.4f}",
        f"{b.flops.training_per_token / 1e9:.4f}",
    )
    la, lb = a.latency, b.latency
    row(
        "  forward latency (median)",
        f"{la.median_ms:.1f} ms" if la else "-",
        f"{lb.median_ms:.1f} ms" if lb else "-",
    )
    row(
        "  tokens / s",
        f"{la.tokens_per_s:,.0f}" if la else "-",
        f"{lb.tokens_per_s:,.0f}" if lb else "-",
    )
    if ma:
        lines += ["", f"measured with: {ma.method}"]
    lines += ["", "layer transitions of the sentence (all tokens; ALBERT paper Fig. 1)"]
    n = max(a.layers.num_layers, b.layers.num_layers)
    lines.append(
        f"{'layer':>6}{'L2 ' + a.name:>{w}}{'L2 ' + b.name:>{w}}"
        f"{'cos ' + a.name:>{w}}{'cos ' + b.name:>{w}}"
    )

    def cell(stats: LayerStats, field: str, i: int) -> str:
        values = getattr(stats, field)
        return f"{values[i]:.4f}" if i < len(values) else "-"

    for i in range(n):
        lines.append(
            f"{f'{i}->{i + 1}':>6}{cell(a.layers, 'l2_mean', i):>{w}}"
            f"{cell(b.layers, 'l2_mean', i):>{w}}{cell(a.layers, 'cosine_mean', i):>{w}}"
            f"{cell(b.layers, 'cosine_mean', i):>{w}}"
        )
    return "\n".join(lines)


def format_memory(est: MemoryEstimate, measured: MeasuredMemory | None = None) -> str:
    """One memory estimate as a table with the formula of every figure."""
    head = (
        f"{est.model}: {est.mode}, batch {est.batch}, seq {est.seq}, {est.precision}"
        + (f", {est.optimizer}" if est.optimizer else "")
        + f", {est.device} kernels, attention {est.attention_kernel}"
    )
    lines = [head, f"{'item':<34}{'bytes':>16}{'':>4}formula"]
    for item in est.items:
        lines.append(f"{item.name:<34}{mib(item.bytes):>16}    {item.formula}")
    lines.append(f"peak phase: {est.peak_phase}")
    if measured is not None:
        lines.append(
            f"measured peak: {mib(measured.peak)} (model / measured = "
            f"{est.total / measured.peak:.3f}); {measured.method}"
        )
    syms = ", ".join(f"{k}={v:,}" for k, v in est.symbols.items())
    lines.append(f"symbols: {syms}")
    return "\n".join(lines)
