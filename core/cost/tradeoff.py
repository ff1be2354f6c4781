"""The BERT vs ALBERT trade-off in numbers: predicted figures at once, measured ones on request,
a ratio (B / A) for every row and one plain sentence that states it.

:func:`predicted_summary` fills a :class:`core.cost.compare.ModelSummary` from the memory and
FLOPs *models* only (counted on the meta device: milliseconds, no weights touched), so a
window can show it on every keystroke; :func:`measure_pair` is the slow part as a generator
(one yield per measurement, so a caller can report progress and stop between steps) and fills
in the measured memory and latency. :func:`cost_rows` is the table both the window and the
HTML report show, each figure with the formula and source behind it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.analysis.hidden_states import LayerStats
from core.config import ModelConfig
from core.cost.compare import (
    Comparison,
    fresh_copy,
    kernel_family,
    predicted_summary,
)
from core.cost.memory import MemoryEstimate
from core.cost.settings import check_settings
from core.errors import InputError

if TYPE_CHECKING:  # torch and the measurements are imported by measure_pair
    from core.loaded_model import LoadedModel

# Memory items grouped the way the cost panel breaks a step down: group -> memory item names
MEMORY_GROUPS: dict[str, tuple[str, ...]] = {
    "weights": ("weights",),
    "gradients": ("gradients",),
    "optimizer states": ("optimizer states",),
    "activations": (
        "autocast weight copies",
        "activations: embeddings",
        "activations: encoder layers",
        "activations: heads",
        "activations: loss",
        "hidden states",
        "MLM logits",
    ),
    "attention maps": ("activations: attention maps",),
}


def default_seq(*configs: ModelConfig, wanted: int = 128) -> int:
    """The longest sequence (up to ``wanted``) that every model's positions allow."""
    return min([wanted, *(c.max_position_embeddings for c in configs)])


def predicted_comparison(
    a: LoadedModel,
    b: LoadedModel,
    text: str,
    batch: int = 8,
    seq: int | None = None,
    precision: str = "fp32",
    optimizer: str = "adamw",
    layers: tuple[LayerStats | None, LayerStats | None] = (None, None),
    tokens: tuple[list[str] | None, list[str] | None] = (None, None),
) -> Comparison:
    """A :class:`Comparison` of the models' predicted figures (what ``compare --no-measure``
    computes, without probing again: the caller passes the probes' layer statistics)."""
    seq = default_seq(a.config, b.config) if seq is None else seq
    names = (a.name, b.name) if a.name != b.name else (f"{a.name} (A)", f"{b.name} (B)")
    kernels = kernel_family(a.device)
    summaries = [
        predicted_summary(m.config, m.heads, n, batch, seq, precision, optimizer, kernels, lay, tok)
        for m, n, lay, tok in zip((a, b), names, layers, tokens, strict=True)
    ]
    return Comparison(
        text=text,
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=optimizer,
        device=a.device.type,
        a=summaries[0],
        b=summaries[1],
    )


@dataclass(frozen=True)
class MeasureProgress:
    """One finished measurement of :func:`measure_pair`."""

    done: int
    total: int
    label: str  # what was just measured, e.g. "bert-mini: training step"


def measure_pair(
    comparison: Comparison, a: LoadedModel, b: LoadedModel, runs: int = 5
) -> Generator[MeasureProgress, None, Comparison]:
    """Measure training memory, inference memory and latency of both models at the
    comparison's settings; yields after each of the six measurements, returns the comparison
    with the measured fields filled in. Memory is measured on fresh random copies (a step
    changes weights), latency on the loaded models, as :func:`core.cost.compare.summarize`."""
    import torch

    from core.cost.measure import measure_inference_memory, measure_latency, measure_training_memory

    if a.device != b.device:
        raise InputError(f"measure both models on one device; got {a.device} and {b.device}")
    c = comparison
    if a.device.type not in ("cpu", "cuda"):
        raise InputError(f"memory is measured on CPU or CUDA, not {a.device.type}")
    results: list[dict] = [{}, {}]
    total, done = 6, 0
    for i, (loaded, summary) in enumerate(((a, c.a), (b, c.b))):
        check_settings(c.batch, c.seq, c.precision, c.optimizer, loaded.config)
        copy = fresh_copy(loaded, loaded.device)
        results[i]["measured_training"] = measure_training_memory(
            copy, c.batch, c.seq, c.precision, c.optimizer, loaded.device
        )
        del copy
        done += 1
        yield MeasureProgress(done, total, f"{summary.name}: training step")
        copy = fresh_copy(loaded, loaded.device)
        results[i]["measured_inference"] = measure_inference_memory(
            copy, c.batch, c.seq, c.precision, True, loaded.device
        )
        del copy
        done += 1
        yield MeasureProgress(done, total, f"{summary.name}: inference pass")
        results[i]["latency"] = measure_latency(
            loaded.model, c.batch, c.seq, c.precision, runs=runs
        )
        done += 1
        yield MeasureProgress(done, total, f"{summary.name}: latency")
    if torch.cuda.is_available() and a.device.type == "cuda":
        torch.cuda.empty_cache()
    return dataclasses.replace(
        c,
        a=dataclasses.replace(c.a, **results[0]),
        b=dataclasses.replace(c.b, **results[1]),
    )


# -- the table ---------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    """b / a, or None when either is missing or a is zero."""
    if a is None or b is None or a == 0:
        return None
    return b / a


def memory_groups(est: MemoryEstimate) -> dict[str, int]:
    """Bytes by MEMORY_GROUPS group (what the stacked memory bars show)."""
    return {g: sum(est.get(name) for name in names) for g, names in MEMORY_GROUPS.items()}


@dataclass(frozen=True)
class CostRow:
    """One figure of both models, with the formula and where it comes from."""

    section: str  # "parameters", "memory: training", "memory: inference", "compute", "speed"
    label: str
    unit: str  # "params", "bytes", "FLOPs", "ms", "tokens/s"
    a: float | None
    b: float | None
    formula: str  # how it is computed (symbols of the source)
    source: str  # which core function (model) or measurement gives it

    @property
    def ratio(self) -> float | None:
        return ratio(self.a, self.b)


def cost_rows(c: Comparison) -> list[CostRow]:
    """Every figure of the cost panel: parameters, memory (modelled, measured), FLOPs, speed."""
    a, b = c.a, c.b
    rows = [
        CostRow(
            "parameters", "unique (stored)", "params",
            a.params.total_unique, b.params.total_unique,
            "sum over components of the stored tensors, a shared tensor once",
            "core.cost.params.param_report",
        ),
        CostRow(
            "parameters", "effective (per token)", "params",
            a.params.total_effective, b.params.total_effective,
            "a shared layer counted once per use (L_eff layers)",
            "core.cost.params.param_report",
        ),
        CostRow(
            "parameters", "embedding share (unique)", "share",
            a.params.embedding_share, b.params.embedding_share,
            "((V + P + S)·E + E·H + H) / total unique",
            "core.cost.params.ParamReport.embedding_share",
        ),
    ]  # fmt: skip
    settings = f"B={c.batch}, T={c.seq}, {c.precision}"
    for mode, est_a, est_b, measured in (
        ("training", a.memory_training, b.memory_training, (a.measured_training, b.measured_training)),
        ("inference", a.memory_inference, b.memory_inference, (a.measured_inference, b.measured_inference)),
    ):  # fmt: skip
        section = f"memory: {mode}"
        groups_a, groups_b = memory_groups(est_a), memory_groups(est_b)
        for group, names in MEMORY_GROUPS.items():
            forms = "; ".join(f"{n}: {est_a.item(n).formula}" for n in names if _has(est_a, n))
            rows.append(
                CostRow(
                    section, group, "bytes", groups_a[group], groups_b[group], forms or "0",
                    f"core.cost.memory.{mode}_memory ({settings})",
                )
            )  # fmt: skip
        rows.append(
            CostRow(
                section, "peak (model)", "bytes", est_a.total, est_b.total,
                est_a.item("peak").formula if _has(est_a, "peak") else "sum of the items",
                f"core.cost.memory.{mode}_memory ({settings}; peak phase: {est_a.peak_phase})",
            )
        )  # fmt: skip
        ma, mb = measured
        rows.append(
            CostRow(
                section, "peak (measured)", "bytes",
                ma.peak if ma else None, mb.peak if mb else None,
                "highest tensor bytes alive during one real step",
                ma.method if ma else "not measured yet (Measure)",
            )
        )  # fmt: skip
    rows += [
        CostRow(
            "compute", "forward FLOPs / token", "FLOPs",
            a.flops.forward_per_token, b.flops.forward_per_token,
            " + ".join(a.flops.formulas[k] for k in a.flops.terms),
            f"core.cost.flops.flops_per_token (T={c.seq}, 2 FLOPs per multiply-add)",
        ),
        CostRow(
            "compute", "training FLOPs / token", "FLOPs",
            a.flops.training_per_token, b.flops.training_per_token,
            "3 × forward (backward costs two forward passes)",
            "core.cost.flops.flops_per_token",
        ),
        CostRow(
            "speed", "forward latency (median)", "ms",
            a.latency.median_ms if a.latency else None,
            b.latency.median_ms if b.latency else None,
            f"median wall time of forward passes at B={c.batch}, T={c.seq}",
            "core.cost.measure.measure_latency" if a.latency else "not measured yet (Measure)",
        ),
        CostRow(
            "speed", "tokens / s", "tokens/s",
            a.latency.tokens_per_s if a.latency else None,
            b.latency.tokens_per_s if b.latency else None,
            "B·T / median latency",
            "core.cost.measure.measure_latency" if a.latency else "not measured yet (Measure)",
        ),
    ]  # fmt: skip
    return rows


def _has(est: MemoryEstimate, name: str) -> bool:
    return any(i.name == name for i in est.items)


def format_value(value: float | None, unit: str) -> str:
    """A figure as the panel shows it."""
    if value is None:
        return "\u2013"
    if unit == "params":
        return f"{value / 1e6:,.2f} M"
    if unit == "bytes":
        return f"{value / 2**20:,.1f} MiB"
    if unit == "FLOPs":
        return f"{value / 1e6:,.2f} MFLOP"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f}"


def format_ratio(r: float | None) -> str:
    return "\u2013" if r is None else f"{r:.2f}\u00d7"


def tradeoff_sentence(c: Comparison) -> str:
    """One plain sentence: B's parameters, FLOPs per token and training memory relative to A's
    (and its speed when measured), at the comparison's settings."""
    a, b = c.a, c.b
    params = b.params.total_unique / a.params.total_unique
    flops = b.flops.forward_per_token / a.flops.forward_per_token
    train = b.memory_training.total / a.memory_training.total
    measured = a.measured_training is not None and b.measured_training is not None
    if measured:
        train = b.measured_training.peak / a.measured_training.peak
    parts = [
        f"{b.name}: {params:.0%} of {a.name}'s parameters",
        f"{flops:.2g}\u00d7 its FLOPs per token",
        f"{train:.2g}\u00d7 its training memory at {c.batch} \u00d7 {c.seq} {c.precision}"
        + (" (measured)" if measured else " (predicted)"),
    ]
    if a.latency is not None and b.latency is not None:
        parts.append(f"{b.latency.tokens_per_s / a.latency.tokens_per_s:.2g}\u00d7 its tokens/s")
    return ", ".join(parts) + "."
