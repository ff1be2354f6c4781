"""Parameter counts by component, unique and effective.

*Unique* counts each tensor once (what the checkpoint stores); *effective* counts a shared layer
once per use (what a token passes through). For BERT they are equal; for ALBERT the gap is the
saving from cross-layer sharing. Works on meta-device models, so paper-size presets are counted
without allocating their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    raise ValueError(f"parameter {name!r} belongs to no known component")


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


def _layers_in_order(model: nn.Module) -> list[nn.Module]:
    """Encoder layer modules in the order a token visits them (shared ones repeat)."""
    encoder = model.encoder
    return list(encoder.schedule) if hasattr(encoder, "schedule") else list(encoder.layer)


def count_parameters(model: nn.Module) -> ParamBreakdown:
    unique = dict.fromkeys(COMPONENTS, 0)
    effective = dict.fromkeys(COMPONENTS, 0)
    layer_param_ids: set[int] = set()
    for layer in _layers_in_order(model):
        layer_param_ids.update(id(p) for p in layer.parameters())
    for name, p in model.named_parameters():  # deduplicated: shared tensors appear once
        unique[component_of(name)] += p.numel()
        if id(p) not in layer_param_ids:
            effective[component_of(name)] += p.numel()
    names = {id(p): name for name, p in model.named_parameters()}
    for layer in _layers_in_order(model):
        for p in layer.parameters():  # deduplicated within a layer
            effective[component_of(names[id(p)])] += p.numel()
    return ParamBreakdown(unique=unique, effective=effective)
