"""The engine calls of the Compare tab (as :mod:`app.probe.calls` for the Probe tab), run on
the engine thread (``AppState.engine``).

Each function calls ``core`` and returns plain data; ``core`` is imported inside them, so
importing this module on the GUI thread costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from core.analysis.side_by_side import MaskPair
    from core.analysis.summary import ProbeAnalysis
    from core.config import ModelConfig
    from core.cost.compare import Comparison
    from core.loaded_model import LoadedModel


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
    generation: int = 0
    seconds: float = 0.0  # engine time for both probes and their statistics


def run_compare_probe(
    a: LoadedModel, b: LoadedModel, text: str, pair: str | None = None, top_k: int = 5
) -> CompareBundle:
    """Probe ``text`` (and ``pair``) with both models and link the results."""
    from core.analysis.side_by_side import align_tokens, head_summary, match_masks
    from core.analysis.summary import analyze

    start = time.perf_counter()
    pa = analyze(a, text, pair or None, top_k=top_k, full_logits=False)
    pb = analyze(b, text, pair or None, top_k=top_k, full_logits=False)
    return CompareBundle(
        a=pa,
        b=pb,
        a_to_b=align_tokens(pa.result, pb.result),
        b_to_a=align_tokens(pb.result, pa.result),
        heads_a=head_summary(pa.attention),
        heads_b=head_summary(pb.attention),
        masks=match_masks(pa.result, pb.result),
        seconds=time.perf_counter() - start,
    )


def run_measure(
    comparison: Comparison, a: LoadedModel, b: LoadedModel, runs: int = 5
) -> Generator[Any, None, Comparison]:
    """Measured memory and latency of both models (a generator: progress, cancellable)."""
    from core.cost.tradeoff import measure_pair

    return (yield from measure_pair(comparison, a, b, runs))


def build_config_model(config: ModelConfig, name: str, seed: int = 0) -> tuple[Any, Any]:
    """A random-initialised model of a calculator configuration, with a WordPiece tokenizer
    over the corpus' commonest words, as the random demo stand-ins; refused with one line when
    it would not fit in memory or its vocabulary is smaller than the tokenizer's."""
    import torch

    from app.probe.calls import describe_loaded
    from core.errors import InputError
    from core.loaded_model import LoadedModel, build_model, check_fits
    from core.random_models import random_tokenizer

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
) -> Comparison:
    """Both models' predicted parameters, memory and FLOPs (meta-device counts, no weights
    touched) at the cost panel's settings."""
    from core.cost.tradeoff import predicted_comparison

    return predicted_comparison(a, b, text, batch, seq, precision, optimizer, layers, tokens)


def calculate_config(
    config: ModelConfig, batch: int, seq: int, precision: str, optimizer: str
) -> Any:
    """The calculator's figures for one configuration (``core.cost.calculator.calculate``)."""
    from core.cost.calculator import calculate

    return calculate(config, batch, seq, precision, optimizer)


@dataclass(frozen=True)
class PaperRow:
    label: str
    table: str
    published: float
    ours: int  # backbone parameters of the architecture, counted
    difference: float  # (ours - published) / published
    note: str


def paper_rows() -> list[PaperRow]:
    """The ALBERT paper's configurations with the published count and ours."""
    from core.cost.calculator import PAPER_CONFIGS, calculate, relative_difference

    rows = []
    for p in PAPER_CONFIGS:
        ours = calculate(p.config).params.backbone_unique
        rows.append(
            PaperRow(
                p.label, p.table, p.published, ours, relative_difference(ours, p.published), p.note
            )
        )
    return rows
