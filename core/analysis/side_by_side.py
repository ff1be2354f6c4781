"""Two probes of one sentence side by side: which pieces cover the same characters, which layer
of one model sits at the depth of a layer of the other, per-layer head statistics, and the
masked-word predictions of both for the same ``[MASK]``.

WordPiece ("shepherd ##ess") and SentencePiece-style Unigram ("▁shepherd ess", with the
preceding space inside the piece) cut a sentence differently, so pieces are matched by the
*non-space* characters they cover in the text they came from (two pieces match when they share
one). Special tokens have no characters; they match by role and order (the second ``[SEP]`` of
one input is the second ``[SEP]`` of the other). Layers of models of different depth are linked
by relative depth, as the ALBERT paper's Figure 1 plots them: layer l of L sits at l / L.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.analysis.attention import AttentionStats
from core.analysis.probe import MaskPrediction, ProbeResult, TokenInfo
from core.errors import InputError

# Per-layer summary of the Clark et al. (2019) head statistics: field of AttentionStats -> label
HEAD_SUMMARY_FIELDS: dict[str, str] = {
    "entropy": "entropy (nats)",
    "to_cls": "to [CLS]",
    "to_sep": "to [SEP]",
    "to_prev": "to previous token",
    "to_next": "to next token",
}


def _role(token: TokenInfo, special_tokens: dict[str, str]) -> str:
    """A special token's role ("cls", "sep", "mask", ...), or its text if it has none."""
    return next((r for r, s in special_tokens.items() if s == token.text), token.text)


def _covered(token: TokenInfo, texts: tuple[str, str | None]) -> set[tuple[int, int]]:
    """(text index, character index) of the non-space characters a piece covers."""
    if token.span is None or token.sequence is None:
        return set()
    text = texts[token.sequence] or ""
    start, end = token.span
    return {(token.sequence, i) for i in range(start, min(end, len(text))) if not text[i].isspace()}


def _special_keys(tokens: list[TokenInfo], special_tokens: dict[str, str]) -> list[tuple | None]:
    """(role, occurrence) for each special token, None for the others."""
    seen: dict[str, int] = {}
    keys: list[tuple | None] = []
    for tok in tokens:
        if tok.special:
            role = _role(tok, special_tokens)
            keys.append((role, seen.get(role, 0)))
            seen[role] = seen.get(role, 0) + 1
        else:
            keys.append(None)
    return keys


def align_tokens(a: ProbeResult, b: ProbeResult) -> list[list[int]]:
    """For each token of ``a``, the indices of ``b``'s tokens covering the same characters
    (special tokens: the same role and occurrence). Both must probe the same text and pair."""
    if (a.text, a.pair) != (b.text, b.pair):
        raise InputError("the two probes must be of the same text (and pair) to align tokens")
    texts = (a.text, a.pair)
    covered_b = [_covered(t, texts) for t in b.tokens]
    keys_a = _special_keys(a.tokens, a.special_tokens)
    keys_b = _special_keys(b.tokens, b.special_tokens)
    out: list[list[int]] = []
    for i, tok in enumerate(a.tokens):
        if tok.special:
            out.append([j for j, k in enumerate(keys_b) if k is not None and k == keys_a[i]])
            continue
        mine = _covered(tok, texts)
        out.append([j for j, theirs in enumerate(covered_b) if mine & theirs])
    return out


def relative_depth(num_layers: int) -> np.ndarray:
    """x positions of layers 1..L (or of the transitions into them) on a 0..1 depth axis."""
    if num_layers < 1:
        raise InputError(f"a model has at least one layer, got {num_layers}")
    return (np.arange(1, num_layers + 1, dtype=np.float64) / num_layers).astype(np.float32)


def matching_layer(layer: int, layers_from: int, layers_to: int) -> int:
    """The 0-based layer of a ``layers_to``-deep model at the relative depth of ``layer``
    (0-based) of a ``layers_from``-deep one: (l + 1) / L_from = (m + 1) / L_to, rounded."""
    if not 0 <= layer < layers_from:
        raise InputError(f"layer {layer} is out of range (0..{layers_from - 1})")
    m = int(np.floor((layer + 1) * layers_to / layers_from + 0.5)) - 1
    return min(max(m, 0), layers_to - 1)


def depth_link(layer_a: int, layers_a: int, layer_b: int, layers_b: int) -> str:
    """How two linked layers (0-based) read for the user, true to their depths: "layer 1 of 6 ↔ layer 1 of
    4 (nearest relative depth: 1/6 ≈ 0.17, 1/4 = 0.25)"; "same" only where l / L is equal."""
    a, b = layer_a + 1, layer_b + 1
    link = f"layer {a} of {layers_a} \u2194 layer {b} of {layers_b}"
    if layers_a == layers_b:
        return link
    if a * layers_b == b * layers_a:
        return f"{link} (same relative depth)"
    return f"{link} (nearest relative depth: {fraction(a, layers_a)}, {fraction(b, layers_b)})"


def fraction(layer: int, layers: int) -> str:
    """A relative depth as the fraction and its decimal: "1/6 ≈ 0.17", "1/4 = 0.25"."""
    value = layer / layers
    sign = "=" if round(value, 2) == value else "\u2248"
    return f"{layer}/{layers} {sign} {value:.2f}"


def head_summary(stats: AttentionStats) -> dict[str, np.ndarray]:
    """(L,) per layer: the head mean of each Clark et al. statistic in HEAD_SUMMARY_FIELDS."""
    return {
        name: np.asarray(getattr(stats, name), dtype=np.float64).mean(axis=1).astype(np.float32)
        for name in HEAD_SUMMARY_FIELDS
    }


@dataclass(frozen=True)
class MaskPair:
    """One ``[MASK]`` of the typed text and both models' guesses for it."""

    sequence: int  # 0: the text, 1: the pair
    start: int  # character offset of the [MASK] in that text
    a: MaskPrediction | None  # None when that model has no MLM head or truncated the mask away
    b: MaskPrediction | None


def mask_offsets(result: ProbeResult) -> list[tuple[int, int]]:
    """(sequence, character offset) of every mask token of ``result``, in order: the offset of
    the mask's first non-space character (ALBERT's ``[MASK]`` absorbs the space before it, as
    transformers' AlbertTokenizer does; BERT's does not)."""
    mask = result.special_tokens.get("mask", "[MASK]")
    texts = (result.text, result.pair)
    spots = []
    for t in result.tokens:
        if t.text != mask or t.span is None or t.sequence is None:
            continue
        text = texts[t.sequence] or ""
        start, end = t.span
        while start < min(end, len(text)) - 1 and text[start].isspace():
            start += 1
        spots.append((t.sequence, start))
    return spots


def match_masks(a: ProbeResult, b: ProbeResult) -> list[MaskPair]:
    """Both models' predictions for each [MASK], matched by character offset."""
    preds_a = dict(zip(mask_offsets(a), a.masked, strict=False)) if a.has_mlm else {}
    preds_b = dict(zip(mask_offsets(b), b.masked, strict=False)) if b.has_mlm else {}
    spots = sorted(set(mask_offsets(a)) | set(mask_offsets(b)))
    return [
        MaskPair(seq, start, preds_a.get((seq, start)), preds_b.get((seq, start)))
        for seq, start in spots
    ]
