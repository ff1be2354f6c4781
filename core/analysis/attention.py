"""What the attention heads look at.

Per head (Clark et al. 2019, "What does BERT look at? An analysis of BERT's attention"): the
entropy of its attention distributions and the average attention mass it puts on [CLS], on
[SEP], on punctuation, on the token itself, on the previous and on the next token. Averages run
over all query tokens of the sentence (special tokens included), as in that paper.

Attention rollout (Abnar and Zuidema 2020, "Quantifying attention flow in transformers"):
average the heads of each layer, add the identity for the residual connection, renormalise the
rows, and multiply through the layers: ``rollout[l] = Â[l] @ rollout[l-1]`` with
``Â = rownorm(mean_heads(A) + I)``. Row i of ``rollout[l]`` says how much of token i's state
after layer l traces back to each input token.

For sentence pairs, the A->B and B->A blocks are the attention from the tokens of text A to
those of text B and back (special tokens belong to neither text, as ``Encoded.sequence_ids``
says). Everything is vectorised over layers and heads.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.analysis._threads import single_threaded
from core.analysis.probe import ProbeResult
from core.errors import InputError


@dataclass
class AttentionStats:
    entropy: np.ndarray  # (L, heads) nats, mean over query tokens; log(T) is uniform
    to_cls: np.ndarray  # (L, heads) mean attention mass on [CLS]
    to_sep: np.ndarray  # (L, heads) mean mass on all [SEP] tokens together
    to_punct: np.ndarray  # (L, heads) mean mass on punctuation tokens
    to_self: np.ndarray  # (L, heads) mean A[i, i]
    to_prev: np.ndarray  # (L, heads) mean A[i, i-1] over i >= 1
    to_next: np.ndarray  # (L, heads) mean A[i, i+1] over i < T-1
    mean_maps: np.ndarray  # (L, T, T) head average of each layer
    rollout: np.ndarray  # (L, T, T) attention rollout up to and including layer l
    max_entropy: float = 0.0  # log(T): the entropy of uniform attention, for scaling plots

    PER_HEAD: ClassVar[tuple[str, ...]] = (
        "entropy", "to_cls", "to_sep", "to_punct", "to_self", "to_prev", "to_next",
    )  # fmt: skip


def is_punctuation(token: str) -> bool:
    """True for tokens made only of Unicode punctuation ("." "," "##!" "▁?")."""
    core = token.removeprefix("##").replace("▁", "")
    return bool(core) and all(unicodedata.category(c).startswith("P") for c in core)


def punctuation_mask(result: ProbeResult) -> np.ndarray:
    return np.array([not t.special and is_punctuation(t.text) for t in result.tokens], dtype=bool)


def _check(attentions: np.ndarray) -> np.ndarray:
    a = np.asarray(attentions, dtype=np.float32)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise InputError(f"attentions must be (layers, heads, T, T), got {a.shape}")
    return a


def entropy(attentions: np.ndarray) -> np.ndarray:
    """(L, heads): mean over queries of -sum_j p_ij log p_ij, in nats."""
    a = _check(attentions).astype(np.float64)
    plogp = a * np.log(np.where(a > 0, a, 1.0))
    return (-plogp.sum(axis=-1)).mean(axis=-1).astype(np.float32)


def mass_on(attentions: np.ndarray, key_mask: np.ndarray) -> np.ndarray:
    """(L, heads): mean over queries of the attention mass on the keys in ``key_mask`` (T,)."""
    a = _check(attentions)
    return (a @ np.asarray(key_mask, dtype=np.float32)).mean(axis=-1)


def _diagonal_mean(a: np.ndarray, offset: int) -> np.ndarray:
    diag = np.diagonal(a, offset=offset, axis1=-2, axis2=-1)  # (L, heads, T - |offset|)
    if diag.shape[-1] == 0:
        return np.zeros(a.shape[:2], dtype=np.float32)
    return diag.mean(axis=-1).astype(np.float32)


@single_threaded
def rollout(attentions: np.ndarray) -> np.ndarray:
    """(L, T, T) attention rollout of ``attentions`` (L, heads, T, T), Abnar and Zuidema 2020."""
    a = _check(attentions).astype(np.float64)
    n_layers, _, t, _ = a.shape
    aug = a.mean(axis=1) + np.eye(t)[None]  # (L, T, T) residual as identity
    aug /= aug.sum(axis=-1, keepdims=True)
    out = np.empty_like(aug)
    acc = np.eye(t)
    for layer in range(n_layers):
        acc = aug[layer] @ acc
        out[layer] = acc
    return out.astype(np.float32)


@single_threaded
def attention_stats(result: ProbeResult) -> AttentionStats:
    """Per-head Clark et al. statistics, head-averaged maps and rollout of a probed sentence."""
    a = _check(result.attentions)
    return AttentionStats(
        entropy=entropy(a),
        to_cls=mass_on(a, result.positions_of("cls")),
        to_sep=mass_on(a, result.positions_of("sep")),
        to_punct=mass_on(a, punctuation_mask(result)),
        to_self=_diagonal_mean(a, 0),
        to_prev=_diagonal_mean(a, -1),
        to_next=_diagonal_mean(a, 1),
        mean_maps=a.mean(axis=1),
        rollout=rollout(a),
        max_entropy=float(np.log(a.shape[-1])),
    )


def token_focus(result: ProbeResult, index: int) -> np.ndarray:
    """(L, heads, T): where token ``index`` looks, in every layer and head."""
    t = result.attentions.shape[-1]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -t <= index < t:
        raise InputError(f"token index {index!r} is out of range (0..{t - 1})")
    return result.attentions[:, :, int(index), :]


@dataclass(frozen=True)
class TokenFocus:
    """Where every token looks in every layer (bertviz's head view, Vig 2019), computed once per
    probe so a click on a token only indexes. Rows are query tokens ``i``; columns keys ``j``."""

    heads: np.ndarray  # (T, L, heads, T) heads[i, l, h, j] = attention of i on j (a view)
    mean: np.ndarray  # (T, L, T) mean over heads (a view of AttentionStats.mean_maps)
    keep: np.ndarray  # (3, T, T) float 1/0: FOCUS_FILTERS[f] keeps i -> j
    sources: np.ndarray  # (3, T) bool: token i belongs to the text filter f looks from

    FILTERS: ClassVar[tuple[str, ...]] = ("all", "a_to_b", "b_to_a")


def focus_of_every_token(result: ProbeResult, mean_maps: np.ndarray) -> TokenFocus:
    """:func:`token_focus` for every token at once, plus the sentence-pair filters: A -> B keeps
    attention from text A's tokens to text B's, B -> A the reverse (special tokens belong to
    neither text). Without a pair the two filters keep nothing."""
    a = _check(result.attentions)
    t = a.shape[-1]
    seq = np.array([-1 if tok.sequence is None else tok.sequence for tok in result.tokens])
    keep = np.ones((3, t, t), dtype=np.float32)
    sources = np.ones((3, t), dtype=bool)
    for f, (source, target) in enumerate(((0, 1), (1, 0)), start=1):
        has_pair = result.pair is not None
        sources[f] = (seq == source) & has_pair
        keep[f] = (sources[f][:, None] & (seq == target)[None, :]).astype(np.float32)
    return TokenFocus(
        heads=a.transpose(2, 0, 1, 3),  # (T, L, heads, T)
        mean=np.asarray(mean_maps).transpose(1, 0, 2),  # (T, L, T)
        keep=keep,
        sources=sources,
    )


def pair_blocks(result: ProbeResult) -> dict[str, np.ndarray | None]:
    """Cross-segment attention of a sentence pair.

    Keys: ``a_to_b`` / ``b_to_a`` (L, heads), the mean over the queries of one text of the mass
    they put on the other text; ``a_to_b_block`` (L, heads, |A|, |B|) and ``b_to_a_block``
    (L, heads, |B|, |A|), the sub-matrices themselves; ``a_positions`` / ``b_positions`` (token
    indices of each text). Without a pair every value is None.
    """
    seq = [t.sequence for t in result.tokens]
    a_pos = np.array([i for i, s in enumerate(seq) if s == 0], dtype=np.int64)
    b_pos = np.array([i for i, s in enumerate(seq) if s == 1], dtype=np.int64)
    if result.pair is None or len(a_pos) == 0 or len(b_pos) == 0:
        return dict.fromkeys(
            ("a_to_b", "b_to_a", "a_to_b_block", "b_to_a_block", "a_positions", "b_positions")
        )
    att = result.attentions
    ab = att[:, :, a_pos][:, :, :, b_pos]  # (L, heads, |A|, |B|)
    ba = att[:, :, b_pos][:, :, :, a_pos]  # (L, heads, |B|, |A|)
    return {
        "a_to_b": ab.sum(axis=-1).mean(axis=-1),
        "b_to_a": ba.sum(axis=-1).mean(axis=-1),
        "a_to_b_block": ab,
        "b_to_a_block": ba,
        "a_positions": a_pos,
        "b_positions": b_pos,
    }
