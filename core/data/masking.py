"""MLM masking of one pair, drawn when a batch is made.

The generator is seeded by (seed, epoch, example index): masks differ every epoch, and every
example's mask is the same whichever process (rank) or step builds it. 15% of the
non-special positions (at most ``max_predictions``) are predicted; of those 80% become the
mask token, 10% a random token, 10% stay. ALBERT masks n-grams of whole words, n <= 3 with
p(n) proportional to 1/n (6/11, 3/11, 2/11); the length is drawn before the place, so the
lengths that reach the model keep that law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.config import DataConfig
from core.data.corpus_cache import PairExample
from core.tokenizer import Tokenizer


@dataclass
class MaskedExample:
    input_ids: np.ndarray  # (T,) after masking
    token_type_ids: np.ndarray  # (T,)
    positions: np.ndarray  # (N,) sorted positions the model must predict
    labels: np.ndarray  # (N,) the original ids there
    sentence_label: int


class Masker:
    """Turns a :class:`PairExample` into [CLS] A [SEP] B [SEP] with its MLM targets, under one
    family's :class:`DataConfig`; random tokens are drawn from the non-special ids."""

    def __init__(self, tokenizer: Tokenizer, config: DataConfig, seed: int = 0):
        self.config = config
        self.seed = int(seed)
        self.cls_id = tokenizer.token_id("cls")
        self.sep_id = tokenizer.token_id("sep")
        self.mask_id = tokenizer.token_id("mask")
        specials = np.array(sorted(tokenizer.special_ids), dtype=np.int64)
        self.random_ids = np.setdiff1d(np.arange(tokenizer.vocab_size), specials)

    def mask(
        self,
        example: PairExample,
        epoch: int,
        index: int,
        seed: int | None = None,
        spans: list[int] | None = None,
    ) -> MaskedExample:
        """[CLS] A [SEP] B [SEP] with this epoch's MLM mask for example ``index``.

        ``spans``, when given, receives the length in words of every masked n-gram (tests).
        """
        rng = np.random.default_rng([self.seed if seed is None else seed, epoch, index, 1])
        cfg = self.config
        la, lb = len(example.a), len(example.b)
        ids = np.empty(la + lb + 3, dtype=np.int64)
        ids[0] = self.cls_id
        ids[1 : la + 1] = example.a
        ids[la + 1] = self.sep_id
        ids[la + 2 : la + lb + 2] = example.b
        ids[-1] = self.sep_id
        types = np.zeros_like(ids)
        types[la + 2 :] = 1
        n_cand = la + lb
        budget = min(cfg.predictions_cap, max(1, round(n_cand * cfg.mlm_probability)))
        if cfg.max_ngram == 1 and not cfg.whole_word:
            cand = np.concatenate([np.arange(1, la + 1), np.arange(la + 2, la + lb + 2)])
            positions = np.sort(rng.choice(cand, size=min(budget, n_cand), replace=False))
            if spans is not None:
                spans.extend([1] * len(positions))
        else:
            positions = self._ngram_positions(example, budget, cfg.predictions_cap, rng, spans)
        labels = ids[positions].copy()
        action = rng.random(len(positions))
        to_mask = action < cfg.mask_token_prob
        to_random = (action >= cfg.mask_token_prob) & (
            action < cfg.mask_token_prob + cfg.random_token_prob
        )
        ids[positions[to_mask]] = self.mask_id
        n_random = int(to_random.sum())
        if n_random:
            ids[positions[to_random]] = self.random_ids[
                rng.integers(len(self.random_ids), size=n_random)
            ]
        return MaskedExample(ids, types, positions, labels, example.label)

    def _ngram_positions(
        self,
        example: PairExample,
        budget: int,
        cap: int,
        rng: np.random.Generator,
        spans: list[int] | None,
    ) -> np.ndarray:
        """Whole-word n-gram spans (ALBERT): draw n ~ p(n), then a random place where n free
        words of one segment fit; repeat until about ``budget`` tokens are masked, never more
        than ``cap``. Only when no place exists is a span shortened, as ALBERT does."""
        cfg = self.config
        la = len(example.a)
        # Word boundaries as token positions in the full sequence, per segment.
        starts_a = np.flatnonzero(example.a_words) + 1 if cfg.whole_word else np.arange(la) + 1
        starts_b = (
            np.flatnonzero(example.b_words) + la + 2
            if cfg.whole_word
            else np.arange(len(example.b)) + la + 2
        )
        if len(starts_a) == 0 or starts_a[0] != 1:
            starts_a = np.concatenate([[1], starts_a])
        if len(starts_b) == 0 or starts_b[0] != la + 2:
            starts_b = np.concatenate([[la + 2], starts_b])
        word_start = np.concatenate([starts_a, starts_b])
        word_end = np.concatenate([starts_a[1:], [la + 1], starts_b[1:], [la + len(example.b) + 2]])
        segment = np.concatenate([np.zeros(len(starts_a), int), np.ones(len(starts_b), int)])
        n_words = len(word_start)
        covered = np.zeros(n_words, dtype=np.bool_)
        probs = cfg.ngram_probs
        ngrams = np.arange(1, cfg.max_ngram + 1)
        chosen: list[np.ndarray] = []
        count = 0
        # Stop *before* a draw once the target is reached, so that whether a span is drawn
        # never depends on its own length: every drawn length then follows p(n) (optional
        # stopping). The last span overshoots the target by (span - 1) / 2 tokens on average,
        # so the target is lowered by that much (randomly rounded) to keep 15% on average.
        span_tokens = float(probs @ ngrams) * (word_end - word_start).mean()
        early = int(np.floor((span_tokens - 1) / 2 + rng.random()))
        while count == 0 or count + early < budget:
            n = int(rng.choice(ngrams, p=probs))
            w = -1
            while n > 0 and w < 0:
                # A random place for n free words of one segment within the hard cap.
                for _ in range(50):
                    s = int(rng.integers(n_words))
                    e = s + n
                    if (
                        e <= n_words
                        and segment[s] == segment[e - 1]
                        and count + int(word_end[e - 1] - word_start[s]) <= cap
                        and not covered[s:e].any()
                    ):
                        w = s
                        break
                else:
                    n -= 1  # no room for n words (tiny or full sequence): shorter, as ALBERT
            if w < 0:
                break
            covered[w : w + n] = True
            chosen.append(np.arange(word_start[w], word_end[w + n - 1]))
            count += int(word_end[w + n - 1] - word_start[w])
            if spans is not None:
                spans.append(n)
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(chosen))
