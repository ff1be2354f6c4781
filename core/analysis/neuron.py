"""bertviz's neuron view (Vig 2019): the query and key vectors behind one attention row.

The query/key projections are read with forward hooks on every attention's fused ``qkv``
matrix, so the model's forward pass and outputs are untouched; a shared ALBERT layer fires its
hook once per use, so the vectors come back per effective depth, in schedule order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class QueryKeys:
    """q and k of every use of a layer: (B, L_eff, heads, T, d) float32, and the key mask."""

    queries: np.ndarray
    keys: np.ndarray
    key_mask: np.ndarray  # (B, T) bool, False for padding


@dataclass(frozen=True)
class NeuronView:
    """One query token of one head: the columns of the neuron view."""

    q: np.ndarray  # (d,)
    k: np.ndarray  # (T, d)
    q_times_k: np.ndarray  # (T, d) elementwise q * k_j
    scores: np.ndarray  # (T,) q . k_j / sqrt(d); -inf on padding
    softmax: np.ndarray  # (T,) equals the attention row


def query_keys(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> QueryKeys:
    """One eval-mode forward pass of ``model`` recording q and k at every effective layer."""
    import torch

    from core.blocks import SelfAttention

    captured: list[torch.Tensor] = []
    handles = [
        m.qkv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
        for m in model.modules()
        if isinstance(m, SelfAttention)
    ]
    attn = next(m for m in model.modules() if isinstance(m, SelfAttention))
    try:
        model.eval()
        with torch.no_grad():
            model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    finally:
        for h in handles:
            h.remove()
    b, t = input_ids.shape
    c = attn.n_head * attn.head_size
    qs, ks = [], []
    for out in captured:
        q, k, _ = out.split(c, dim=2)
        qs.append(q.view(b, t, attn.n_head, attn.head_size).transpose(1, 2))
        ks.append(k.view(b, t, attn.n_head, attn.head_size).transpose(1, 2))
    mask = torch.ones(b, t, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    return QueryKeys(
        queries=torch.stack(qs, 1).float().cpu().numpy(),
        keys=torch.stack(ks, 1).float().cpu().numpy(),
        key_mask=mask.cpu().numpy(),
    )


def neuron_view(qk: QueryKeys, layer: int, head: int, query: int, item: int = 0) -> NeuronView:
    """q, every k_j, q * k_j, the scaled scores and their softmax for one query token."""
    _, n_layers, n_heads, t, d = qk.queries.shape
    checks = (("layer", layer, n_layers), ("head", head, n_heads), ("query", query, t))
    for name, value, top in checks:
        if not 0 <= value < top:
            raise InputError(f"{name} {value} is out of range (0..{top - 1})")
    q = qk.queries[item, layer, head, query].astype(np.float64)
    k = qk.keys[item, layer, head].astype(np.float64)
    scores = np.where(qk.key_mask[item], (k @ q) / math.sqrt(d), -np.inf)
    e = np.exp(scores - scores.max())
    return NeuronView(
        q=q.astype(np.float32),
        k=k.astype(np.float32),
        q_times_k=(q[None] * k).astype(np.float32),
        scores=scores.astype(np.float32),
        softmax=(e / e.sum()).astype(np.float32),
    )
