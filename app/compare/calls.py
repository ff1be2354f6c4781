"""The engine calls of the Compare tab (as :mod:`app.probe.calls` for the Probe tab), run on
the engine thread (``AppState.engine``).

Each function calls ``core`` and returns plain data, down to the formatted text of the cost
panel's and the calculator's tables, so the views only place strings and numbers; ``core`` is
imported inside them, so importing this module on the GUI thread costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from core.analysis.side_by_side import MaskPair
    from core.analysis.summary import ProbeAnalysis
    from core.config import ModelConfig
    from core.cost.calculator import Calculation
    from core.cost.compare import Comparison
    from core.cost.tradeoff import CostRow
    from core.loaded_model import LoadedModel

HTML_SUFFIXES = (".html", ".htm")  # a comparison exported as the report (with the plots)


@dataclass
class CompareBundle:
    """Both models' probes of one sentence and what links them, all computed by ``core``."""

    a: ProbeAnalysis
    b: ProbeAnalysis
    a_to_b: list[list[int]]  # token i of A -> tokens of B covering its characters
    b_to_a: list[list[int]]
    heads_a: dict[str, np.ndarray]  # per-layer head-mean statistics (side_by_side.head_summary)
    heads_b: dict[str, np.ndarray]
    masks: list[MaskPair]  # both models' guesses for each [MASK], matched by offset
    depth_a: np.ndarray  # (L_A,) relative depth l / L of each layer of A (side_by_side)
    depth_b: np.ndarray  # (L_B,)
    layer_b_of_a: list[int]  # layer l of A -> B's layer at the nearest depth (matching_layer)
    layer_a_of_b: list[int]  # and back
    depth_links: list[str]  # layer l of A and its layer of B, in words (depth_link)
    seconds: float = 0.0  # engine time for both probes and their statistics


def run_compare_probe(
    a: LoadedModel, b: LoadedModel, text: str, pair: str | None = None, top_k: int = 5
) -> CompareBundle:
    """Probe ``text`` (and ``pair``) with both models and link the results."""
    from core.analysis.side_by_side import (
        align_tokens,
        depth_link,
        head_summary,
        match_masks,
        matching_layer,
        relative_depth,
    )
    from core.analysis.summary import analyze

    start = time.perf_counter()
    pa = analyze(a, text, pair or None, top_k=top_k, full_logits=False)
    pb = analyze(b, text, pair or None, top_k=top_k, full_logits=False)
    la, lb = pa.result.num_layers, pb.result.num_layers
    b_of_a = [matching_layer(layer, la, lb) for layer in range(la)]
    return CompareBundle(
        a=pa,
        b=pb,
        a_to_b=align_tokens(pa.result, pb.result),
        b_to_a=align_tokens(pb.result, pa.result),
        heads_a=head_summary(pa.attention),
        heads_b=head_summary(pb.attention),
        masks=match_masks(pa.result, pb.result),
        depth_a=relative_depth(la),
        depth_b=relative_depth(lb),
        layer_b_of_a=b_of_a,
        layer_a_of_b=[matching_layer(layer, lb, la) for layer in range(lb)],
        depth_links=[depth_link(layer, la, b_of_a[layer], lb) for layer in range(la)],
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class TableLine:
    """One row of a table as shown: its cells' text, the tooltip of every cell, bold or not."""

    cells: tuple[str, ...]
    tip: str = ""
    bold: bool = False  # a section heading or a total


@dataclass
class CostFigures:
    """Everything the cost panel shows of one comparison, taken from ``core`` and formatted."""

    comparison: Comparison
    rows: list[CostRow]  # core.cost.tradeoff.cost_rows
    table: list[TableLine]  # the rows under their section headings: figure, A, B, B / A
    sentence: str  # core.cost.tradeoff.tradeoff_sentence
    components: tuple[str, ...]  # core.cost.params.COMPONENTS, in bar order
    unique: tuple[dict[str, int], dict[str, int]]  # per model: component -> stored parameters
    effective: tuple[dict[str, int], dict[str, int]]  # per model: component -> per token
    formulas: tuple[dict[str, str], dict[str, str]]  # per model: component -> closed form
    memory_groups: dict[str, tuple[str, ...]]  # core.cost.tradeoff.MEMORY_GROUPS
    memory: list[dict[str, int]]  # A training, B training, A inference, B inference: group -> bytes
    memory_formulas: dict[str, str] = field(default_factory=dict)  # group -> A's training items


def cost_figures(comparison: Comparison) -> CostFigures:
    """The cost panel's table, sentence, bars and tooltips of ``comparison``."""
    from core.cost.params import COMPONENTS
    from core.cost.tradeoff import (
        MEMORY_GROUPS,
        cost_rows,
        format_ratio,
        format_value,
        memory_groups,
        tradeoff_sentence,
    )

    rows = cost_rows(comparison)
    table: list[TableLine] = []
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            table.append(TableLine((section, "", "", ""), bold=True))
        table.append(
            TableLine(
                (
                    "  " + row.label,
                    format_value(row.a, row.unit),
                    format_value(row.b, row.unit),
                    format_ratio(row.ratio),
                ),
                f"{row.label}\nformula: {row.formula}\nsource: {row.source}",
            )
        )
    models = comparison.models
    training = comparison.a.memory_training
    present = {item.name: item.formula for item in training.items}
    return CostFigures(
        comparison=comparison,
        rows=rows,
        table=table,
        sentence=tradeoff_sentence(comparison),
        components=COMPONENTS,
        unique=tuple({c: m.params.component(c).unique for c in COMPONENTS} for m in models),
        effective=tuple({c: m.params.component(c).effective for c in COMPONENTS} for m in models),
        formulas=tuple({c: m.params.component(c).formula for c in COMPONENTS} for m in models),
        memory_groups=MEMORY_GROUPS,
        memory=[
            memory_groups(comparison.a.memory_training),
            memory_groups(comparison.b.memory_training),
            memory_groups(comparison.a.memory_inference),
            memory_groups(comparison.b.memory_inference),
        ],
        memory_formulas={
            group: "; ".join(present[n] for n in names if n in present)
            for group, names in MEMORY_GROUPS.items()
        },
    )


def run_measure(
    comparison: Comparison, a: LoadedModel, b: LoadedModel, runs: int = 5
) -> Generator[Any, None, CostFigures]:
    """Measured memory and latency of both models (a generator: progress, cancellable), and
    the cost panel's figures with them."""
    from core.cost.tradeoff import measure_pair

    measured = yield from measure_pair(comparison, a, b, runs)
    return cost_figures(measured)


def export_comparison(
    comparison: Comparison, path: str | Path, images: dict[str, bytes] | None = None
) -> Path:
    """Write the comparison: ``.json`` (the schema of ``python -m core compare --json``),
    ``.csv`` (its tidy rows) or ``.html`` (a self-contained report with ``images``, PNG bytes
    by caption, which the GUI thread rendered)."""
    from core.errors import InputError

    path = Path(path)
    suffix = path.suffix.lower()
    meta = {"model_a": comparison.a.name, "model_b": comparison.b.name}
    if suffix == ".json":
        from core.export import save_json

        return save_json(comparison, path, meta)
    if suffix == ".csv":
        from core.export import save_csv

        return save_csv(comparison, path, meta)
    if suffix in HTML_SUFFIXES:
        from core.report import save_comparison_html

        return save_comparison_html(comparison, path, images or {})
    raise InputError(f"{path}: choose a .json, .csv or .html file name")


@dataclass(frozen=True)
class ConfigFields:
    """The calculator's fields as typed; ``config_of`` turns them into a ModelConfig."""

    family: str  # "bert" / "albert"
    vocab: int
    embedding: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    sharing: str  # ALBERT's cross-layer sharing: "all", "attention", "ffn", "none"
    groups: int
    inner: int
    positions: int


def config_of(fields: ConfigFields) -> ModelConfig:
    """The configuration of the fields (``ConfigError`` names the field at fault)."""
    from core.cost.calculator import make_config

    f = fields
    return make_config(
        f.family, f.vocab, f.embedding, f.hidden, f.layers, f.heads, f.ffn, f.sharing,
        f.groups, f.inner, f.positions,
    )  # fmt: skip


def build_config_model(fields: ConfigFields, name: str, seed: int = 0) -> tuple[Any, Any]:
    """A random-initialised model of a calculator configuration, with a WordPiece tokenizer
    over the corpus' commonest words, as the random demo stand-ins; refused with one line when
    the fields are no configuration, it would not fit in memory or its vocabulary is smaller
    than the tokenizer's."""
    import torch

    from app.probe.calls import describe_loaded
    from core.errors import InputError
    from core.loaded_model import LoadedModel, build_model, check_fits
    from core.random_models import random_tokenizer

    config = config_of(fields)
    check_fits(config, "cpu", source=name)
    tokenizer = random_tokenizer(config.model_type, config.max_position_embeddings)
    if config.vocab_size < tokenizer.vocab_size:
        raise InputError(
            f"vocabulary V={config.vocab_size} is smaller than the tokenizer's "
            f"{tokenizer.vocab_size} tokens"
        )
    config = config.replace(pad_token_id=tokenizer.token_id("pad"))
    torch.manual_seed(seed)
    model = build_model(config)
    model.init_weights()
    model.eval()
    loaded = LoadedModel(config=config, model=model, tokenizer=tokenizer, name=name)
    return loaded, describe_loaded(loaded, random_init=True)


def predict_cost(
    a: LoadedModel,
    b: LoadedModel,
    text: str,
    batch: int,
    seq: int | None,
    precision: str,
    optimizer: str,
    layers: tuple,
    tokens: tuple,
) -> CostFigures:
    """Both models' predicted parameters, memory and FLOPs (meta-device counts, no weights
    touched) at the cost panel's settings, as the panel shows them."""
    from core.cost.tradeoff import predicted_comparison

    return cost_figures(
        predicted_comparison(a, b, text, batch, seq, precision, optimizer, layers, tokens)
    )


@dataclass
class CalculatorFigures:
    """Everything the calculator shows of one configuration, taken from ``core`` and formatted."""

    calculation: Calculation  # core.cost.calculator.calculate
    total: str  # the sentence above the tables
    breakdown: list[TableLine]  # component, unique, effective, formula; the total last, bold
    memory: list[TableLine]  # figure, value, formula


def calculate_fields(
    fields: ConfigFields, batch: int, seq: int, precision: str, optimizer: str
) -> CalculatorFigures:
    """The calculator's figures for the fields (``core.cost.calculator.calculate``); a field
    that makes no configuration fails with ``ConfigError``'s one line."""
    from core.cost.calculator import calculate
    from core.cost.params import evaluate_formula
    from core.cost.tradeoff import MEMORY_GROUPS, format_value, memory_groups

    calc = calculate(config_of(fields), batch, seq, precision, optimizer)
    p = calc.params
    breakdown = []
    for comp in p.components:
        form = comp.formula
        try:
            check = evaluate_formula(form, p.symbols)
            tip = f"{form} = {check:,} with " + ", ".join(
                f"{k}={v:,}" for k, v in p.symbols.items()
            )
        except Exception:  # a formula with words in it ("0 (BERT: ...)")
            tip = form
        breakdown.append(
            TableLine(
                (comp.component, f"{comp.unique:,}", f"{comp.effective:,}", form),
                tip + "\nsource: core.cost.params.param_report",
            )
        )
    breakdown.append(
        TableLine(
            ("total", f"{p.total_unique:,}", f"{p.total_effective:,}", "sum of the components"),
            bold=True,
        )
    )
    rows = []
    for label, est in (("training", calc.training), ("inference", calc.inference)):
        present = {i.name: i.formula for i in est.items}
        for group, value in memory_groups(est).items():
            if value:
                form = "; ".join(present[n] for n in MEMORY_GROUPS[group] if n in present)
                rows.append((f"{label}: {group}", format_value(value, "bytes"), form))
        rows.append((f"{label}: peak", format_value(est.total, "bytes"), est.item("peak").formula))
    rows.append(
        ("forward FLOPs / token", format_value(calc.flops.forward_per_token, "FLOPs"),
         "sum of " + " + ".join(calc.flops.formulas[k] for k in calc.flops.terms))
    )  # fmt: skip
    rows.append(
        ("training FLOPs / token", format_value(calc.flops.training_per_token, "FLOPs"),
         calc.flops.formulas["training"])
    )  # fmt: skip
    est = calc.training
    settings = f"B={est.batch}, T={est.seq}, {est.precision}, {est.optimizer}"
    memory = [
        TableLine((label, value, formula), f"{formula or label}\nsource: core.cost ({settings})")
        for label, value, formula in rows
    ]
    total = (
        f"{p.total_unique:,} parameters stored ({p.backbone_unique / 1e6:,.1f}M backbone "
        f"without heads), {p.total_effective:,} per token; embeddings "
        f"{p.embedding_share:.1%} of the stored count"
    )
    return CalculatorFigures(calc, total, breakdown, memory)


@dataclass(frozen=True)
class PaperRow:
    label: str
    table: str
    published: float
    ours: int  # backbone parameters of the architecture, counted
    difference: float  # (ours - published) / published
    note: str
    config: ModelConfig  # what a click on the row puts into the fields


def paper_rows() -> list[PaperRow]:
    """The ALBERT paper's configurations with the published count and ours."""
    from core.cost.calculator import PAPER_CONFIGS, calculate, relative_difference

    rows = []
    for p in PAPER_CONFIGS:
        ours = calculate(p.config).params.backbone_unique
        rows.append(
            PaperRow(
                p.label,
                p.table,
                p.published,
                ours,
                relative_difference(ours, p.published),
                p.note,
                p.config,
            )
        )
    return rows
