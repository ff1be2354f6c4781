"""Words instead of word pieces: word-level attention and whole-word guesses.

Word-level attention follows Clark et al. (2019), "What does BERT look at?", section 2: "for
attention *to* a split-up word, we sum up the attention weights over its tokens; for attention
*from* a split-up word, we take the mean of the attention weights over its tokens". With ``S``
the (W, T) word-membership matrix (``S[w, i] = 1`` when token i belongs to word w) and ``n_w``
the pieces of word w, ``word_attention = diag(1/n) S A S^T``; rows still sum to 1. Special
tokens are words of their own; a piece joins the word of the token before it when core's
``TokenInfo.continuation`` says so (WordPiece "##" and SentencePiece alike).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from core.analysis.probe import MaskPrediction, ProbeResult, TokenInfo
from core.errors import InputError


@dataclass(frozen=True)
class WordLevel:
    """How the tokens of a probed input group into words."""

    groups: list[list[int]]  # token indices of each word, in order
    labels: list[str]  # each word as written in the text ([CLS] etc. for special tokens)
    first: np.ndarray  # (W,) index of each word's first token (its style: segment, special)
    membership: np.ndarray  # (W, T) float32, 1 where token t belongs to word w

    def __len__(self) -> int:
        return len(self.groups)

    def word_of(self, token: int) -> int:
        """The word that token ``token`` belongs to."""
        hits = np.flatnonzero(self.membership[:, token])
        if len(hits) == 0:
            raise InputError(
                f"token {token} is outside the input (0..{self.membership.shape[1] - 1})"
            )
        return int(hits[0])


def word_level(result: ProbeResult) -> WordLevel:
    """Group ``result``'s tokens into words (see the module docstring)."""
    return group_words(result.tokens, result.text, result.pair)


def group_words(tokens: list[TokenInfo], text: str, pair: str | None) -> WordLevel:
    """:func:`word_level` for the tokens of ``text`` (and ``pair``) without a probe result."""
    groups: list[list[int]] = []
    for i, tok in enumerate(tokens):
        if groups and tok.continuation and not tok.special:
            groups[-1].append(i)
        else:
            groups.append([i])
    labels = []
    for group in groups:
        first, last = tokens[group[0]], tokens[group[-1]]
        if first.span is None or last.span is None or first.sequence is None:
            labels.append(first.text)
            continue
        source = text if first.sequence == 0 else (pair or "")
        labels.append(source[first.span[0] : last.span[1]] or first.text)
    membership = np.zeros((len(groups), len(tokens)), dtype=np.float32)
    for w, group in enumerate(groups):
        membership[w, group] = 1.0
    first = np.array([g[0] for g in groups], dtype=np.int64)
    return WordLevel(groups=groups, labels=labels, first=first, membership=membership)


def word_attention(attentions: np.ndarray, words: WordLevel) -> np.ndarray:
    """Attention ``(..., T, T)`` as word-to-word attention ``(..., W, W)``: attention *to* a
    word summed over its pieces, *from* a word averaged over its pieces (Clark et al. 2019).
    When every word is a single token the input itself comes back (treat it as read-only)."""
    a = np.asarray(attentions, dtype=np.float32)
    s = words.membership  # (W, T)
    if a.ndim < 2 or a.shape[-1] != s.shape[1] or a.shape[-2] != s.shape[1]:
        raise InputError(
            f"attention of shape {a.shape} does not match {s.shape[1]} tokens of the input"
        )
    # S A S^T without the matmuls: a word of one piece keeps its row and column as they are,
    # so copy those and add up only the extra pieces of split words; O(T^2) per head instead
    # of O(W T^2) (at 512 tokens and 144 heads, a fraction of a second instead of 16 s)
    starts = np.array([g[0] for g in words.groups], dtype=np.intp)
    split = [(w, g) for w, g in enumerate(words.groups) if len(g) > 1]
    if not split:
        return a  # every word is one token: the matrix itself (not a copy; treat as read-only)
    from_words = np.take(a, starts, axis=-2)  # (..., W, T): the first piece of each word
    for w, group in split:
        from_words[..., w, :] = a[..., group, :].mean(axis=-2)  # *from* a word: mean
    out = np.take(from_words, starts, axis=-1)  # (..., W, W)
    for w, group in split:
        out[..., :, w] += from_words[..., :, group[1:]].sum(axis=-1)  # *to* a word: sum
    return out


# -- whole-word guesses ---------------------------------------------------------------------
def is_piece(token: str, sentencepiece: bool) -> bool:
    """A sub-word piece: WordPiece's "##ing", or a SentencePiece token without the word-start
    mark "▁" (ALBERT's vocabularies). Special tokens ([MASK], <unk>) are not pieces."""
    if token.startswith("##"):
        return True
    if (token.startswith("[") and token.endswith("]")) or (
        token.startswith("<") and token.endswith(">")
    ):
        return False
    return sentencepiece and not token.startswith("\u2581")


def bare_token(token: str) -> str:
    """A token without its piece markers ("##ing" -> "ing", "▁the" -> "the"); a lone "▁"
    stays, so the space it stands for is still visible."""
    if token.startswith("##") and len(token) > 2:
        return token[2:]
    if token.startswith("\u2581") and len(token) > 1:
        return token[1:]
    return token


def is_punctuation(token: str) -> bool:
    """True for tokens made only of Unicode punctuation ("." "," "##!" "▁?")."""
    core = bare_token(token).replace("\u2581", "")
    return bool(core) and all(unicodedata.category(c).startswith("P") for c in core)


def word_guesses(
    prediction: MaskPrediction, k: int, sentencepiece: bool
) -> list[tuple[str, float]]:
    """The best ``k`` guesses that are whole words: no punctuation, no sub-word pieces, drawn
    from the prediction's pool (its top ``probe.POOL`` tokens), best first."""
    pool = prediction.pool_tokens or prediction.tokens
    probs = prediction.pool_probs if prediction.pool_probs is not None else prediction.probs
    out = []
    for token, prob in zip(pool, probs, strict=True):
        if is_punctuation(token) or is_piece(token, sentencepiece):
            continue
        out.append((token, float(prob)))
        if len(out) == k:
            break
    return out


def word_row(attentions: np.ndarray, words: WordLevel, word: int) -> np.ndarray:
    """Row ``word`` of :func:`word_attention` without the whole matrix: ``(..., T, T)`` ->
    ``(..., W)``, where word ``word`` looks (a click in token focus costs one row, not W)."""
    a = np.asarray(attentions, dtype=np.float32)
    if not 0 <= word < len(words):
        raise InputError(f"word {word} is outside the input (0..{len(words) - 1})")
    rows = a[..., words.groups[word], :].mean(axis=-2)  # (..., T): mean over its pieces
    out = rows[..., [g[0] for g in words.groups]]  # (..., W)
    for w, group in enumerate(words.groups):
        if len(group) > 1:
            out[..., w] += rows[..., group[1:]].sum(axis=-1)  # summed per target word
    return out.astype(np.float32, copy=False)
