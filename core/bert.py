"""BERT (Devlin et al. 2019), written to match transformers' ``BertModel`` /
``BertForPreTraining`` number for number.

Embeddings (word + position + segment, LayerNorm) -> L post-LN encoder layers (self-attention,
then a GELU feed-forward, each with a residual and LayerNorm) -> pooler (tanh of a dense layer on
[CLS]) -> heads: masked-LM (dense, GELU, LayerNorm, decoder tied to the word embeddings) and
next-sentence prediction. Submodules are named like the checkpoint keys (minus ``bert.``).
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

BERT_HEADS = Heads.pretraining("bert")


class BertIntermediate(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))


class BertLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        need_weights: bool,
        head_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, probs = self.attention(x, mask, need_weights, head_mask)
        return self.output(self.intermediate(a), a), probs


class BertEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    @property
    def schedule(self) -> list[BertLayer]:
        """The layer objects a token passes through, in order: each once (as ALBERT's
        ``schedule``, where shared ones repeat)."""
        return list(self.layer)

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool,
        head_mask: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
        """Every layer's output (the input first, L + 1 of (B, T, H)) and, when asked, every
        layer's attention probabilities (L of (B, nh, T, T))."""
        return run_layers(self.layer, x, attention_mask, output_attentions, head_mask)


class BertPooler(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, H) from [CLS]


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """MLM head; its decoder is the word-embedding matrix (tied), plus an output bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), decoder_weight, self.bias)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: ModelConfig, heads: Heads):
        super().__init__()
        self.predictions = BertLMPredictionHead(config) if heads.mlm else None
        # NSP or SOP (the objective decides the labels; the module is BERT's either way).
        self.seq_relationship = nn.Linear(config.hidden_size, 2) if heads.sentence else None


class BertModel(PretrainingModel):
    """BERT with any of its heads: pooler, MLM and a sentence head (NSP, or SOP for the ALBERT
    paper's ablation; it needs the pooler)."""

    def __init__(self, config: ModelConfig, heads: Heads = BERT_HEADS):
        super().__init__(config, heads, "bert")
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if heads.pooler else None
        if heads.mlm or heads.sentence:
            self.cls = BertPreTrainingHeads(config, heads)

    def init_weights(self) -> None:
        init_weights(self, self.config.initializer_range)
        if self.heads.mlm:
            nn.init.zeros_(self.cls.predictions.bias)

    def add_heads(
        self, out: ModelOutput, x: torch.Tensor, mlm_positions: torch.Tensor | None
    ) -> None:
        if self.pooler is not None:
            out.pooler_output = self.pooler(x)
        if self.heads.mlm:
            out.mlm_logits = self.cls.predictions(
                select_positions(x, mlm_positions), self.embeddings.word_embeddings.weight
            )
        if self.heads.sentence:
            logits = self.cls.seq_relationship(out.pooler_output)
            setattr(out, f"{self.heads.sentence}_logits", logits)
