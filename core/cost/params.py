"""Parameter counts by component, unique and effective, with the closed form behind each.

*Unique* counts each tensor once (what the checkpoint stores); *effective* counts a shared layer
once per use (what a token passes through). For BERT they are equal; for ALBERT the gap is the
saving from cross-layer sharing. Works on meta-device models, so paper-size presets are counted
without allocating their weights.

The formulas are the closed forms of Devlin et al. (2019) and Lan et al. (2020, Section 3.2:
factorized embeddings V x E + E x H instead of V x H), checked against the counts in the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.config import Heads, ModelConfig
from core.errors import ConfigError

if TYPE_CHECKING:  # torch builds the meta-device model, in param_report
    from torch import nn

COMPONENTS: tuple[str, ...] = (
    "embeddings",
    "embedding projection",
    "attention",
    "feed-forward",
    "layer norms",
    "pooler",
    "heads",
)


def component_of(name: str) -> str:
    """The component a parameter belongs to, from its engine key."""
    if "LayerNorm" in name or "full_layer_layer_norm" in name:
        return "heads" if name.startswith(("cls.", "predictions.")) else "layer norms"
    if name.startswith("embeddings."):
        return "embeddings"
    if "embedding_hidden_mapping_in" in name:
        return "embedding projection"
    if ".attention." in name:
        return "attention"
    if any(part in name for part in (".intermediate.", ".output.", ".ffn.", ".ffn_output.")):
        return "feed-forward"
    if name.startswith("pooler"):
        return "pooler"
    if name.startswith(("cls.", "predictions.", "sop_classifier.")):
        return "heads"
    raise ConfigError(f"parameter {name!r} belongs to no known component")


@dataclass(frozen=True)
class ParamBreakdown:
    unique: dict[str, int] = field(default_factory=dict)  # component -> parameters stored
    effective: dict[str, int] = field(
        default_factory=dict
    )  # component -> parameters used per token

    @property
    def total_unique(self) -> int:
        return sum(self.unique.values())

    @property
    def total_effective(self) -> int:
        return sum(self.effective.values())

    @property
    def backbone_unique(self) -> int:
        """Without the pre-training heads: what the papers' tables count (encoder + pooler)."""
        return self.total_unique - self.unique["heads"]

    @property
    def backbone_effective(self) -> int:
        return self.total_effective - self.effective["heads"]

    def share(self, component: str) -> float:
        """Fraction of the unique total taken by ``component``."""
        return self.unique[component] / self.total_unique if self.total_unique else 0.0


def count_parameters(model: nn.Module) -> ParamBreakdown:
    unique = dict.fromkeys(COMPONENTS, 0)
    effective = dict.fromkeys(COMPONENTS, 0)
    layers = model.encoder.schedule  # in the order a token visits them (shared ones repeat)
    layer_param_ids: set[int] = set()
    for layer in layers:
        layer_param_ids.update(id(p) for p in layer.parameters())
    for name, p in model.named_parameters():  # deduplicated: shared tensors appear once
        unique[component_of(name)] += p.numel()
        if id(p) not in layer_param_ids:
            effective[component_of(name)] += p.numel()
    names = {id(p): name for name, p in model.named_parameters()}
    for layer in layers:
        for p in layer.parameters():  # deduplicated within a layer
            effective[component_of(names[id(p)])] += p.numel()
    return ParamBreakdown(unique=unique, effective=effective)


@dataclass(frozen=True)
class ComponentCount:
    component: str
    unique: int  # parameters stored (a shared tensor once)
    effective: int  # parameters a token passes through (a shared layer once per use)
    share_unique: float  # unique / total unique
    share_effective: float  # effective / total effective
    formula: str  # closed form in the config's symbols (see ParamReport.symbols)


@dataclass(frozen=True)
class ParamReport:
    model: str
    model_type: str
    heads: tuple[str, ...]  # Heads.names() of the model: its stable, serialised form
    components: list[ComponentCount]
    total_unique: int
    total_effective: int
    backbone_unique: int  # without pre-training heads (what the papers' tables count)
    backbone_effective: int
    symbols: dict[str, int] = field(default_factory=dict)  # V, E, H, I, L, P, S, G, K

    def component(self, name: str) -> ComponentCount:
        return next(c for c in self.components if c.component == name)

    @property
    def embedding_share(self) -> float:
        """Unique share of the embedding tables plus ALBERT's E -> H projection."""
        return (
            self.component("embeddings").share_unique
            + self.component("embedding projection").share_unique
        )

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per component, then the total."""
        rows = [
            {
                "table": "params",
                "model": self.model,
                "component": c.component,
                "unique": c.unique,
                "effective": c.effective,
                "share_unique": c.share_unique,
                "share_effective": c.share_effective,
                "formula": c.formula,
            }
            for c in self.components
        ]
        rows.append(
            {
                "table": "params",
                "model": self.model,
                "component": "total",
                "unique": self.total_unique,
                "effective": self.total_effective,
                "share_unique": 1.0,
                "share_effective": 1.0,
            }
        )
        return rows


def symbols(config: ModelConfig) -> dict[str, int]:
    """V vocab, E embedding width, H hidden, I intermediate, L effective layers, P positions,
    S segment types, G layer parameter sets stored (ALBERT groups x inner layers)."""
    stored = config.num_hidden_layers
    if config.model_type == "albert":
        stored = config.num_hidden_groups * config.inner_group_num
    return {
        "V": config.vocab_size,
        "E": config.embedding_dim,
        "H": config.hidden_size,
        "I": config.intermediate_size,
        "L": config.effective_layers,
        "P": config.max_position_embeddings,
        "S": config.type_vocab_size,
        "G": stored,
    }


def formulas(config: ModelConfig, heads: Heads) -> dict[str, str]:
    """Closed forms of the *unique* count of each component."""
    albert = config.model_type == "albert"
    sets = "G" if albert and config.sharing == "all" else "L"
    attn_sets = "1" if albert and config.sharing == "attention" else sets
    ffn_sets = "1" if albert and config.sharing == "ffn" else sets
    head_terms = []
    if heads.mlm:
        # transform dense + LayerNorm + output bias; the decoder is tied to the word embeddings
        head_terms.append("(H·E + E) + 2E + V" if albert else "(H² + H) + 2H + V")
    if heads.sentence:
        head_terms.append("2H + 2")
    # LayerNorms: embeddings (2E) + two per layer (attention, feed-forward) of 2H each
    if albert and config.sharing in ("attention", "ffn"):
        norms = f"2E + {attn_sets}·2H + {ffn_sets}·2H"
    else:
        norms = f"2E + {sets}·4H"
    return {
        "embeddings": "(V + P + S)·E",
        "embedding projection": "E·H + H" if albert else "0 (BERT: E = H, no projection)",
        "attention": f"{attn_sets}·(4H² + 4H)",
        "feed-forward": f"{ffn_sets}·(2·H·I + I + H)",
        "layer norms": norms,
        "pooler": "H² + H" if heads.pooler else "0",
        "heads": " + ".join(head_terms) if head_terms else "0",
    }


def param_report(
    model: nn.Module | ModelConfig, name: str | None = None, heads: Heads | None = None
) -> ParamReport:
    """Component breakdown of a model (a module, or a config counted on the meta device)."""
    from core.loaded_model import meta_model

    module = meta_model(model, heads) if isinstance(model, ModelConfig) else model
    config: ModelConfig = module.config
    b = count_parameters(module)
    forms = formulas(config, module.heads)
    comps = [
        ComponentCount(
            component=c,
            unique=b.unique[c],
            effective=b.effective[c],
            share_unique=b.unique[c] / b.total_unique if b.total_unique else 0.0,
            share_effective=b.effective[c] / b.total_effective if b.total_effective else 0.0,
            formula=forms[c],
        )
        for c in COMPONENTS
    ]
    return ParamReport(
        model=name or config.model_type,
        model_type=config.model_type,
        heads=tuple(module.heads.names()),
        components=comps,
        total_unique=b.total_unique,
        total_effective=b.total_effective,
        backbone_unique=b.backbone_unique,
        backbone_effective=b.backbone_effective,
        symbols=symbols(config),
    )


def evaluate_formula(formula: str, syms: dict[str, int]) -> int:
    """The value of one of :func:`formulas`' strings for the given symbols (used by tests and
    to show the arithmetic next to the count)."""
    expr = formula.split(" (BERT")[0].replace("·", "*").replace("²", "**2")
    expr = re.sub(r"(\d)([A-Z(])", r"\1*\2", expr)  # 4H -> 4*H
    return int(eval(expr, {"__builtins__": {}}, dict(syms)))  # our own formula strings only
