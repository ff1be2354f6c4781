"""Layer-by-layer predictions (the "logit lens", as ecco and TransformerLens provide): a masked
word's guesses decoded from every layer's hidden state through the model's own MLM head
(transform, LayerNorm, tied decoder). The head was trained on the last layer only, so earlier
rows show what a layer's representation already makes readable to it, not what the layer
"predicts". For ALBERT every effective depth of a shared layer is a row of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    from core.analysis.ablation import HeadMask
    from core.analysis.probe import MaskPrediction
    from core.loaded_model import LoadedModel

NOTE = "the MLM head was trained on the last layer's output only"


@dataclass(frozen=True)
class LogitLens:
    """Top-k at one [MASK] from every hidden state, and one token followed across layers."""

    position: int
    layers: list[MaskPrediction]  # effective_layers + 1, the embedding output first
    token: str  # the followed token (default: the last layer's top guess)
    token_id: int
    ranks: np.ndarray  # (L_eff + 1,) its 1-based rank at each hidden state
    probs: np.ndarray  # (L_eff + 1,) its probability there
    note: str = NOTE

    def table_rows(self) -> list[dict]:
        rows = [
            {
                "table": "lens",
                "hidden_state": d,
                "rank": r,
                "prediction": t,
                "prob": float(p),
            }
            for d, m in enumerate(self.layers)
            for r, (t, p) in enumerate(zip(m.tokens, m.probs, strict=True), 1)
        ]
        rows += [
            {
                "table": "followed",
                "hidden_state": d,
                "token": self.token,
                "rank": int(r),
                "prob": float(p),
            }
            for d, (r, p) in enumerate(zip(self.ranks, self.probs, strict=True))
        ]
        return rows


def logit_lens(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    position: int | None = None,
    token: str | None = None,
    top_k: int = 5,
    head_mask: HeadMask | None = None,
) -> LogitLens:
    """Decode the [MASK] at ``position`` (default the first) from every hidden state. Each row
    goes through the head exactly as the model's own last layer does, so the last row equals
    :func:`core.analysis.probe`'s predictions bit for bit."""
    import torch

    from core.analysis.probe import _top_k
    from core.blocks import ModelOutput

    if not loaded.heads.mlm:
        raise InputError(f"{loaded.name}: model has no MLM head, so it has no logit lens")
    encoded = loaded.encode(text, pair)
    mask_id = loaded.tokenizer.token_id("mask")
    masks = [i for i, t in enumerate(encoded.input_ids) if t == mask_id]
    if position is None:
        if not masks:
            raise InputError(f"layers-lens: no {loaded.tokenizer.mask_token} in the text")
        position = masks[0]
    if position not in masks:
        raise InputError(
            f"layers-lens: token {position} is not a {loaded.tokenizer.mask_token} "
            f"(the text's are at {masks})"
        )
    model = loaded.model
    model.eval()
    layers = []
    with torch.no_grad():
        out = model(  # with attentions, as probe runs it: the same kernels, the same bits
            **encoded.tensors(loaded.device),
            output_attentions=True,
            head_mask=None if head_mask is None else head_mask.tensor(loaded.device),
        )
        rows = []
        for hidden in out.hidden_states:  # (1, T, H) each, decoded as the model decodes its last
            decoded = ModelOutput(hidden_states=())
            model.add_heads(decoded, hidden, None)
            rows.append(decoded.mlm_logits[0, position])
        final = rows[-1]
        if token is None:
            token_id = int(final.argmax())
        else:
            token_id = loaded.tokenizer.backend.token_to_id(token)
            if token_id is None:
                raise InputError(f"--token {token!r} is not in {loaded.name}'s vocabulary")
        for row in rows:
            layers.append(_top_k(row, top_k, loaded, position, token_id))
    return LogitLens(
        position=position,
        layers=layers,
        token=loaded.tokenizer.id_to_token(token_id) or f"<{token_id}>",
        token_id=int(token_id),
        ranks=np.array([m.original_rank for m in layers], dtype=np.int64),
        probs=np.array([m.original_prob for m in layers], dtype=np.float64),
    )
