"""The parameter calculator: any BERT/ALBERT configuration's parameters, memory and FLOPs from
its sizes alone (counted on the meta device, nothing allocated), and the ALBERT paper's
configurations with the counts it publishes.

Published counts are the backbone (encoder + pooler, no pre-training heads), as the paper's
Table 1 (Lan et al. 2020: BERT-base/large, ALBERT-base/large/xlarge/xxlarge) and Table 4 (the
cross-layer sharing ablation at E = 768 and E = 128) print them. Table 1's ALBERT-xxlarge figure,
235M, is not what the architecture it states gives: H = 4096, 12 layers, FFN 16384, E = 128, all
shared has 222.6M (counted by hand in ``tests/core/test_params.py``, by transformers'
AlbertModel, and carried by Google's released checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import SHARING_MODES, ModelConfig, preset
from core.cost.flops import FlopsEstimate, flops_per_token
from core.cost.memory import MemoryEstimate, inference_memory, training_memory
from core.cost.params import ParamReport, param_report
from core.errors import ConfigError, InputError

XXLARGE_NOTE = (
    "Table 1 prints 235M for ALBERT-xxlarge, but the architecture it states (H=4096, 12 layers, "
    "FFN 16384, E=128, all shared) has 222.6M parameters: as counted here, by transformers' "
    "AlbertModel and in Google's released checkpoints (223M)."
)


@dataclass(frozen=True)
class PaperConfig:
    """One configuration from the ALBERT paper with the parameter count it publishes."""

    label: str  # e.g. "ALBERT-base, E=128, shared: all"
    table: str  # "Table 1" or "Table 4"
    config: ModelConfig
    published: float  # parameters as printed (backbone: encoder + pooler)
    note: str = ""  # a footnote when the published figure is not the architecture's


def _table4(embedding: int, sharing: str, millions: float) -> PaperConfig:
    return PaperConfig(
        f"ALBERT-base E={embedding}, shared: {sharing}",
        "Table 4",
        preset("albert-base", embedding_size=embedding, sharing=sharing),
        millions * 1e6,
    )


PAPER_CONFIGS: tuple[PaperConfig, ...] = (
    PaperConfig("BERT-base", "Table 1", preset("bert-base"), 108e6),
    PaperConfig("BERT-large", "Table 1", preset("bert-large"), 334e6),
    PaperConfig("ALBERT-base", "Table 1", preset("albert-base"), 12e6),
    PaperConfig("ALBERT-large", "Table 1", preset("albert-large"), 18e6),
    PaperConfig("ALBERT-xlarge", "Table 1", preset("albert-xlarge"), 60e6),
    PaperConfig("ALBERT-xxlarge", "Table 1", preset("albert-xxlarge"), 235e6, XXLARGE_NOTE),
    _table4(768, "all", 31),
    _table4(768, "attention", 83),
    _table4(768, "ffn", 57),
    _table4(768, "none", 108),
    _table4(128, "all", 12),
    _table4(128, "attention", 64),
    _table4(128, "ffn", 38),
    _table4(128, "none", 89),
)


def paper_config(label: str) -> PaperConfig:
    found = next((p for p in PAPER_CONFIGS if p.label == label), None)
    if found is None:
        raise InputError(f"no paper configuration named {label!r}")
    return found


def make_config(
    family: str,
    vocab: int,
    embedding: int,
    hidden: int,
    layers: int,
    heads: int,
    ffn: int,
    sharing: str = "all",
    groups: int = 1,
    inner: int = 1,
    positions: int = 512,
) -> ModelConfig:
    """A configuration from the calculator's fields (``ConfigError`` names the one at fault).

    BERT ignores E (it is H), sharing, groups and inner layers. For ALBERT, sharing "all"
    keeps ``groups`` parameter sets of ``inner`` layers each; the partial modes (attention,
    FFN, none) keep one set per layer, as in the paper's Table 4."""
    if family not in ("bert", "albert"):
        raise ConfigError(f"family must be 'bert' or 'albert', got {family!r}")
    if sharing not in SHARING_MODES:
        raise ConfigError(
            f"unknown sharing {sharing!r}; expected one of {', '.join(SHARING_MODES)}"
        )
    if family == "bert":
        return ModelConfig(
            model_type="bert",
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=ffn,
            max_position_embeddings=positions,
        )
    base = preset("albert-base").replace(
        vocab_size=vocab,
        embedding_size=embedding,
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=positions,
        num_hidden_layers=layers,
        num_hidden_groups=1,
        inner_group_num=1,
    )
    if sharing != "all":
        return base.with_sharing(sharing)
    return base.replace(num_hidden_groups=groups, inner_group_num=inner)


@dataclass(frozen=True)
class Calculation:
    config: ModelConfig
    params: ParamReport
    training: MemoryEstimate
    inference: MemoryEstimate
    flops: FlopsEstimate


def calculate(
    config: ModelConfig,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    kernels: str = "cpu",
    name: str = "custom",
) -> Calculation:
    """Parameters by component, training and inference memory and FLOPs of a configuration
    with all pre-training heads (MLM, pooler, NSP or SOP)."""
    from core.loaded_model import meta_model

    seq = min(seq, config.max_position_embeddings)
    module = meta_model(config)  # one module for every count: building it is most of the time
    params = param_report(module, name)
    return Calculation(
        config=config,
        params=params,
        training=training_memory(module, batch, seq, precision, optimizer, kernels, name),
        inference=inference_memory(module, batch, seq, precision, True, kernels, name),
        flops=flops_per_token(config, seq, name=name, report=params),
    )


def relative_difference(ours: float, published: float) -> float:
    """(ours − published) / published."""
    return (ours - published) / published
