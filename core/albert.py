"""ALBERT (Lan et al. 2020), written to match transformers' ``AlbertModel`` /
``AlbertForPreTraining`` number for number.

What differs from BERT, and where the parameter savings come from:
- factorized embeddings: tables of width E (``embedding_size``), projected to H by
  ``encoder.embedding_hidden_mapping_in``; V x E + E x H instead of V x H;
- cross-layer sharing: ``num_hidden_groups`` groups of ``inner_group_num`` layers; outer layer i
  runs group ``i // (L / num_hidden_groups)``, and a group runs all its inner layers, so a token
  passes through L x inner_group_num layers. The paper's default is one group of one layer;
- the paper's Table 4 ablations: ``sharing="attention"`` or ``"ffn"`` keeps one layer per
  depth but aliases the attention (or the feed-forward) of every layer to layer 0's;
- sentence-order prediction (SOP) instead of NSP; the MLM head works in E space.
Depth and width are BERT's: ALBERT adds no layers and no heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.blocks import (
    ModelOutput,
    PretrainingModel,
    SelfAttention,
    activation,
    init_weights,
    run_layers,
    select_positions,
)
from core.config import Heads, ModelConfig

ALBERT_HEADS = Heads.pretraining("albert")


class AlbertLayer(nn.Module):
    """Self-attention, then the feed-forward (``ffn`` -> act -> ``ffn_output``) with its
    residual and ``full_layer_layer_norm``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.act = activation(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        need_weights: bool,
        head_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, probs = self.attention(x, mask, need_weights, head_mask)
        h = self.dropout(self.ffn_output(self.act(self.ffn(a))))
        return self.full_layer_layer_norm(a + h), probs


class AlbertLayerGroup(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.albert_layers = nn.ModuleList(
            AlbertLayer(config) for _ in range(config.inner_group_num)
        )


class AlbertTransformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList(
            AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)
        )
        if config.sharing in ("attention", "ffn"):
            first = self.albert_layer_groups[0].albert_layers[0]
            for group in self.albert_layer_groups[1:]:
                layer = group.albert_layers[0]
                if config.sharing == "attention":
                    layer.attention = first.attention
                else:
                    layer.ffn = first.ffn
                    layer.ffn_output = first.ffn_output
                    layer.full_layer_layer_norm = first.full_layer_layer_norm
        layers_per_group = config.num_hidden_layers // config.num_hidden_groups
        # The layer objects a token passes through, in order (shared ones repeat).
        self.schedule: list[AlbertLayer] = [
            layer
            for i in range(config.num_hidden_layers)
            for layer in self.albert_layer_groups[i // layers_per_group].albert_layers
        ]

    def forward(
        self,
        e: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool,
        head_mask: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
        """Project the E-wide embeddings to H, then run the layer schedule: every layer's output
        (the projection first, effective_layers + 1 of (B, T, H)) and, when asked, the attention
        probabilities of every use of a layer (effective_layers of (B, nh, T, T))."""
        x = self.embedding_hidden_mapping_in(e)  # (B, T, H)
        return run_layers(self.schedule, x, attention_mask, output_attentions, head_mask)


class AlbertMLMHead(nn.Module):
    """H -> E dense, activation, LayerNorm, then the decoder tied to the E-wide word embeddings."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.LayerNorm(self.act(self.dense(x))), decoder_weight, self.bias)


class AlbertSOPHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class AlbertModel(PretrainingModel):
    """ALBERT with any of its heads: pooler, MLM and a sentence head (SOP, or NSP for the
    paper's ablation; it needs the pooler)."""

    def __init__(self, config: ModelConfig, heads: Heads = ALBERT_HEADS):
        super().__init__(config, heads, "albert")
        self.encoder = AlbertTransformer(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if heads.pooler else None
        self.predictions = AlbertMLMHead(config) if heads.mlm else None
        # SOP or NSP (the objective decides the labels; the module is ALBERT's either way).
        self.sop_classifier = AlbertSOPHead(config) if heads.sentence else None

    def init_weights(self) -> None:
        init_weights(self, self.config.initializer_range)
        if self.predictions is not None:
            nn.init.zeros_(self.predictions.bias)

    def add_heads(
        self, out: ModelOutput, x: torch.Tensor, mlm_positions: torch.Tensor | None
    ) -> None:
        if self.pooler is not None:
            out.pooler_output = torch.tanh(self.pooler(x[:, 0]))  # (B, H) from [CLS]
        if self.predictions is not None:
            out.mlm_logits = self.predictions(
                select_positions(x, mlm_positions), self.embeddings.word_embeddings.weight
            )
        if self.sop_classifier is not None:
            logits = self.sop_classifier(out.pooler_output)
            setattr(out, f"{self.heads.sentence}_logits", logits)
