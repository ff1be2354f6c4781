"""Norm-based attention (Kobayashi et al. 2020, "Attention is not only a weight").

A head's output at token i is Σ_j α_ij f(x_j) with f(x) = (x W_V + b_V) W_O, the value vector
carried through the head's slice of the output projection (its bias b_O belongs to no token).
How much token j contributes is the length ‖α_ij f(x_j)‖ = α_ij ‖f(x_j)‖, not α_ij alone: a
head can put much weight on a token whose transformed vector is short (the paper's finding for
[SEP] and punctuation), so the weight overstates it. Rows of the norms do not sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.loaded_model import LoadedModel


@dataclass(frozen=True)
class NormAttention:
    """Raw weights and norm-based attention of every head at every effective depth."""

    tokens: list[str]
    weights: np.ndarray  # (L_eff, heads, T, T) α, rows sum to 1
    value_norms: np.ndarray  # (L_eff, heads, T) ‖f(x_j)‖ of each head at each token
    norms: np.ndarray  # (L_eff, heads, T, T) ‖α_ij f(x_j)‖

    @property
    def head_mean(self) -> np.ndarray:
        """(L_eff, T, T): the mean over heads of the norms."""
        return self.norms.mean(axis=1)

    def table_rows(self) -> list[dict]:
        L, nh, T, _ = self.norms.shape
        return [
            {
                "layer": d + 1,
                "head": h + 1,
                "from": i,
                "to": j,
                "weight": float(self.weights[d, h, i, j]),
                "norm": float(self.norms[d, h, i, j]),
            }
            for d in range(L)
            for h in range(nh)
            for i in range(T)
            for j in range(T)
        ]


def norm_attention(loaded: LoadedModel, text: str, pair: str | None = None) -> NormAttention:
    """One forward pass with attentions; for each depth, f(x_j) of every head from the layer's
    input hidden states and the shared layer's own W_V, b_V and W_O."""
    import torch

    encoded = loaded.encode(text, pair)
    model = loaded.model
    model.eval()
    with torch.no_grad():
        out = model(**encoded.tensors(loaded.device), output_attentions=True)
        weights = torch.stack([a[0] for a in out.attentions]).float()  # (L, nh, T, T)
        lengths = []
        for depth, layer in enumerate(model.encoder.schedule):
            attn = layer.attention
            x = out.hidden_states[depth][0].float()  # (T, H): the layer's input
            H, nh, hs = x.shape[-1], attn.n_head, attn.head_size
            v = x @ attn.qkv.weight[2 * H :].float().T + attn.qkv.bias[2 * H :].float()  # (T, H)
            v = v.view(-1, nh, hs).transpose(0, 1)  # (nh, T, hs)
            w_o = attn.dense.weight.float().T.reshape(nh, hs, H)  # rows of head h's slice
            f = v @ w_o  # (nh, T, H)
            lengths.append(f.norm(dim=-1))
        value_norms = torch.stack(lengths)  # (L, nh, T)
        norms = weights * value_norms[:, :, None, :]
    return NormAttention(
        tokens=list(encoded.tokens),
        weights=weights.cpu().numpy(),
        value_norms=value_norms.cpu().numpy(),
        norms=norms.cpu().numpy(),
    )
