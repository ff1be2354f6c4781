"""Pieces both families use in the same way: activations, the padding mask, multi-head
self-attention, the loop over the encoder's layers, and the output object a forward pass
returns.

The attention projects Q, K and V with one fused ``qkv`` matrix (one matmul instead of three;
the layout and the checkpoint key mapping are documented in ``core.hf_checkpoint``). Without ``need_weights`` it runs
``torch.nn.functional.scaled_dot_product_attention``; with it, the explicit softmax whose
probabilities the analysis views show (identical maths, as in transformers' eager path).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from core.config import Heads, ModelConfig
from core.errors import ConfigError


def activation(name: str):
    """The feed-forward non-linearity named by ``hidden_act`` (transformers' ACT2FN names)."""
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name in ("silu", "swish"):
        return F.silu
    if name == "tanh":
        return torch.tanh
    raise ConfigError(f"unsupported hidden_act {name!r}")  # ModelConfig.validate rejects it first


def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Additive mask (B, 1, 1, T): 0 where a key may be attended, the dtype's minimum where
    it is padding. None when nothing is padded, which lets SDPA take its fastest kernel: tested
    for a mask in CPU memory only, since on a GPU the test would make the host wait for the
    device (callers there pass None for an unpadded batch, as the trainer's batches do), and
    not under ``torch.compile``, where that data-dependent test would break the graph."""
    if attention_mask is None:
        return None
    if (
        attention_mask.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and bool(attention_mask.all())
    ):
        return None
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min
    )


class Embeddings(nn.Module):
    """Word + position + segment embeddings, summed and layer-normalised, ``config.embedding_dim``
    wide: H for BERT, the factorized E for ALBERT (which projects to H in its encoder)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        D = config.embedding_dim
        self.word_embeddings = nn.Embedding(config.vocab_size, D, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, D)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, D)
        self.LayerNorm = nn.LayerNorm(D, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)
        x = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(positions)
        )  # (B, T, D)
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention with the residual connection and post-LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head = config.num_attention_heads
        self.head_size = config.head_size
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn_dropout = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        need_weights: bool = False,
        head_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``head_mask`` (nh,), or (B, nh) per sequence, multiplies each head's context vector
        before the output projection: Michel et al. (2019)'s gate ξ_h, 0 switches a head off.
        None skips it."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        dropout = self.attn_dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_size))  # (B, nh, T, T)
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1)
            y = F.dropout(probs, dropout, self.training) @ v  # (B, nh, T, hs)
        else:
            probs = None
            y = attention(q, k, v, mask, dropout)
        if head_mask is not None:
            y = y * head_mask.view(-1, self.n_head, 1, 1).to(y.dtype)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.LayerNorm(x + self.dropout(self.dense(y))), probs


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout: float
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v through SDPA. On a CPU in bf16/fp16 its math kernel
    instead of the flash kernel: the same result (both are off a float32 reference by the
    output's rounding), and 1.2-1.5x faster forward + backward at BERT's training shapes, where
    the flash kernel's reduced-precision backward is slow (``benchmarks/bench_attention.py``)."""
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


def run_layers(
    layers: Sequence[nn.Module],
    x: torch.Tensor,
    attention_mask: torch.Tensor | None,
    output_attentions: bool,
    head_mask: torch.Tensor | None = None,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
    """The encoder loop of both families, over the layers a token passes through in order
    (BERT's distinct layers; ALBERT's shared ones, repeated by its schedule). Returns every
    layer's output (``x`` first, len(layers) + 1 of (B, T, H)) and, when asked, every use of a
    layer's attention probabilities (len(layers) of (B, nh, T, T)). ``head_mask``
    (len(layers), nh) gates each use of a layer's heads (:class:`SelfAttention`)."""
    mask = padding_mask(attention_mask, x.dtype)  # (B, 1, 1, T) or None
    hidden_states = [x]
    attentions = []
    for depth, layer in enumerate(layers):
        gate = None if head_mask is None else head_mask[depth]
        x, probs = layer(x, mask, output_attentions, gate)
        hidden_states.append(x)
        attentions.append(probs)
    return tuple(hidden_states), tuple(attentions) if output_attentions else None


@dataclass
class ModelOutput:
    """What one forward pass returns.

    ``hidden_states`` has ``effective_layers + 1`` entries of (B, T, H), the embedding output
    first (for ALBERT, after the E -> H projection). ``attentions`` has ``effective_layers``
    entries of (B, heads, T, T) when asked for. Head outputs are None when the head is absent.
    With ``mlm_positions`` given, ``mlm_logits`` is (N, V) for the N selected positions only.
    """

    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...] | None = None
    pooler_output: torch.Tensor | None = None  # (B, H)
    mlm_logits: torch.Tensor | None = None  # (B, T, V) or (N, V)
    nsp_logits: torch.Tensor | None = None  # an NSP head's (B, 2), 0 = B follows A
    sop_logits: torch.Tensor | None = None  # an SOP head's (B, 2), 1 = segments swapped

    @property
    def last_hidden_state(self) -> torch.Tensor:
        return self.hidden_states[-1]


def select_positions(hidden: torch.Tensor, mlm_positions: torch.Tensor | None) -> torch.Tensor:
    """Rows of ``hidden`` (B, T, H) the MLM head should score: all, or the masked ones (N, H).

    ``mlm_positions`` is a (B, T) bool mask, or (N,) int64 indices into the flattened B x T
    positions (the trainer's GPU form: a gather of a size known before the step, where a bool
    mask makes the GPU report how many rows it selected, a sync every step)."""
    if mlm_positions is None:
        return hidden
    if mlm_positions.dtype == torch.bool:
        return hidden[mlm_positions]
    return hidden.flatten(0, 1).index_select(0, mlm_positions)


def check_family(config: ModelConfig, model_type: str, heads: Heads) -> None:
    """Refuse a config of the other family, or a head set that is not one, before any module
    is built."""
    if config.model_type != model_type:
        raise ConfigError(
            f"model_type {config.model_type!r}: this is the {model_type!r} model class"
        )
    if not isinstance(heads, Heads):
        raise ConfigError(f"heads must be a core.config.Heads, got {heads!r}")


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PretrainingModel(nn.Module):
    """The forward pass both families share: embeddings, the encoder, then the family's heads.

    A family supplies ``encoder`` and ``add_heads(out, x, mlm_positions)``, which fills ``out``'s
    head outputs from the last hidden state ``x`` (which heads exist and what their weights are
    called is all that differs between BERT and ALBERT here)."""

    encoder: nn.Module
    add_heads: Callable[[ModelOutput, torch.Tensor, torch.Tensor | None], None]

    def __init__(self, config: ModelConfig, heads: Heads, family: str):
        super().__init__()
        check_family(config, family, heads)
        self.config = config
        self.heads = heads
        self.embeddings = Embeddings(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        mlm_positions: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
    ) -> ModelOutput:
        """``head_mask`` (effective_layers, heads), or (effective_layers, B, heads) per sequence:
        each depth's head gates ξ (1 keeps a head, 0 removes it; see :class:`SelfAttention`);
        None runs every head untouched."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        e = self.embeddings(input_ids, token_type_ids)  # (B, T, E); E = H for BERT
        hidden_states, attentions = self.encoder(e, attention_mask, output_attentions, head_mask)
        out = ModelOutput(hidden_states=hidden_states, attentions=attentions)
        self.add_heads(out, hidden_states[-1], mlm_positions)  # from (B, T, H)
        return out
