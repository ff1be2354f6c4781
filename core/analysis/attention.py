"""What the attention heads look at.

Per head (Clark et al. 2019, "What does BERT look at? An analysis of BERT's attention"): the
entropy of its attention distributions and the average attention mass it puts on [CLS], on
[SEP], on punctuation, on the token itself, on the previous and on the next token. Defined as
the authors' released code defines them (clarkkev/attention-analysis, ``general_analysis.ipynb``):
every statistic is a sum over the sentence's T query tokens (special tokens included) divided
by T, so "previous" and "next" divide by T although only T-1 queries have a previous (next)
token, and "punctuation" is the tokens "." and "," only. ``to_punct_all`` is this project's
extension, kept under its own name: mass on every token made only of Unicode punctuation
(; ! ? " ' ( ) - ...). Entropies are in nats (natural logarithm), of the attention as the
model computed it (the notebook first smooths it as 0.9999 A + 0.0001 / T, which moves a
one-hot row's 0 to about 0.001 nats).

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
    entropy: np.ndarray  # (L, heads) in nats: mean over the T queries of -sum p ln p
    to_cls: np.ndarray  # (L, heads) mean over the T queries of the mass on [CLS]
    to_sep: np.ndarray  # (L, heads) same, mass on all [SEP] tokens together
    to_punct: np.ndarray  # (L, heads) same, mass on "." and "," tokens (Clark et al.)
    to_self: np.ndarray  # (L, heads) sum_i A[i, i] / T
    to_prev: np.ndarray  # (L, heads) sum_{i>=1} A[i, i-1] / T (Clark et al.: T, not T-1)
    to_next: np.ndarray  # (L, heads) sum_{i<T-1} A[i, i+1] / T
    mean_maps: np.ndarray  # (L, T, T) head average of each layer
    rollout: np.ndarray  # (L, T, T) attention rollout up to and including layer l
    max_entropy: float = 0.0  # log(T) nats: the entropy of uniform attention, for scaling plots
    # (L, heads) mean mass on every all-punctuation token (; ! ? ...): not in Clark et al.
    to_punct_all: np.ndarray | None = None

    PER_HEAD: ClassVar[tuple[str, ...]] = (
        "entropy", "to_cls", "to_sep", "to_punct", "to_self", "to_prev", "to_next",
    )  # fmt: skip

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per layer and head, then one per
        cell of each layer's mean attention map and rollout."""
        rows = []
        n_layers, n_heads = self.entropy.shape
        for layer in range(n_layers):
            for head in range(n_heads):
                row = {"table": "heads", "layer": layer + 1, "head": head}
                for name in self.PER_HEAD:
                    row[name] = getattr(self, name)[layer, head]
                rows.append(row)
        t = self.mean_maps.shape[-1]
        for layer in range(n_layers):
            for q in range(t):
                for k in range(t):
                    rows.append(
                        {
                            "table": "attention_maps",
                            "layer": layer + 1,
                            "query": q,
                            "key": k,
                            "mean_attention": self.mean_maps[layer, q, k],
                            "rollout": self.rollout[layer, q, k],
                        }
                    )
        return rows


CLARK_PUNCTUATION = frozenset({".", ","})  # the punctuation of Clark et al.'s released code


def _bare(token: str) -> str:
    """The token's text without WordPiece's "##" or SentencePiece's "▁" word markers."""
    return token.removeprefix("##").replace("▁", "")


def is_punctuation(token: str) -> bool:
    """True for tokens made only of Unicode punctuation ("." "," "##!" "▁?")."""
    core = _bare(token)
    return bool(core) and all(unicodedata.category(c).startswith("P") for c in core)


def is_clark_punctuation(token: str) -> bool:
    """True for "." and "," (also as "▁." or "##,"): Clark et al.'s punctuation tokens."""
    return _bare(token) in CLARK_PUNCTUATION


def punctuation_mask(result: ProbeResult, clark: bool = True) -> np.ndarray:
    """(T,) the non-special punctuation tokens: "." and "," (``clark``) or all punctuation."""
    test = is_clark_punctuation if clark else is_punctuation
    return np.array([not t.special and test(t.text) for t in result.tokens], dtype=bool)


def _check(attentions: np.ndarray) -> np.ndarray:
    a = np.asarray(attentions, dtype=np.float32)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise InputError(f"attentions must be (layers, heads, T, T), got {a.shape}")
    return a


def entropy(attentions: np.ndarray) -> np.ndarray:
    """(L, heads): mean over queries of -sum_j p_ij log p_ij, in nats.

    In float32: it keeps four significant digits at 512 tokens (tested against float64) and
    takes a third of the time on a base-size model's (12, 12, 512, 512) attentions."""
    a = _check(attentions)  # float32
    plogp = a * np.log(np.where(a > 0, a, np.float32(1.0)))
    return (-plogp.sum(axis=-1, dtype=np.float32)).mean(axis=-1, dtype=np.float32)


def mass_on(attentions: np.ndarray, key_mask: np.ndarray) -> np.ndarray:
    """(L, heads): mean over queries of the attention mass on the keys in ``key_mask`` (T,)."""
    a = _check(attentions)
    return (a @ np.asarray(key_mask, dtype=np.float32)).mean(axis=-1)


def _diagonal_mean(a: np.ndarray, offset: int) -> np.ndarray:
    """(L, heads): sum of the ``offset`` diagonal divided by T, all queries (Clark et al.)."""
    diag = np.diagonal(a, offset=offset, axis1=-2, axis2=-1)  # (L, heads, T - |offset|)
    return (diag.sum(axis=-1, dtype=np.float64) / a.shape[-1]).astype(np.float32)


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
        to_punct=mass_on(a, punctuation_mask(result, clark=True)),
        to_self=_diagonal_mean(a, 0),
        to_prev=_diagonal_mean(a, -1),
        to_next=_diagonal_mean(a, 1),
        mean_maps=a.mean(axis=1),
        rollout=rollout(a),
        max_entropy=float(np.log(a.shape[-1])),
        to_punct_all=mass_on(a, punctuation_mask(result, clark=False)),
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
