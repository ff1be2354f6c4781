"""Probe a sentence and run every per-sentence analysis at once: what the CLI ``probe``
command prints and exports, what the window's Probe views draw, and what the benchmark times."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from core.analysis.attention import (
    AttentionStats,
    TokenFocus,
    attention_stats,
    focus_of_every_token,
    pair_blocks,
)
from core.analysis.hidden_states import LayerStats, _pca, layer_stats
from core.analysis.probe import ProbeResult, probe
from core.analysis.words import WordLevel, word_attention, word_level

if TYPE_CHECKING:
    from core.loaded_model import LoadedModel


@dataclass
class ProbeAnalysis:
    """One probed sentence and every statistic of it (the window's one probe result)."""

    result: ProbeResult
    layers: LayerStats
    attention: AttentionStats
    pca: np.ndarray  # (L+1, T, 2) per-layer PCA, signs fixed
    pca_variance: np.ndarray  # (L+1, 2) explained-variance ratios
    a_to_b: np.ndarray | None  # (L, heads) mean cross-segment attention, None without a pair
    b_to_a: np.ndarray | None

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): the probe's tokens and guesses, the layer
        and head statistics, one row per PCA point and, for a pair, per cross-segment block."""
        tokens = self.result.token_strings
        rows = (
            self.result.table_rows() + self.layers.table_rows(tokens) + self.attention.table_rows()
        )
        for layer in range(self.pca.shape[0]):
            for i in range(self.pca.shape[1]):
                rows.append(
                    {
                        "table": "pca",
                        "layer": layer,
                        "token_index": i,
                        "token": tokens[i],
                        "pc1": self.pca[layer, i, 0],
                        "pc2": self.pca[layer, i, 1],
                        "pc1_variance": self.pca_variance[layer, 0],
                        "pc2_variance": self.pca_variance[layer, 1],
                    }
                )
        if self.a_to_b is not None:
            for layer in range(self.a_to_b.shape[0]):
                for head in range(self.a_to_b.shape[1]):
                    rows.append(
                        {
                            "table": "pair_blocks",
                            "layer": layer + 1,
                            "head": head,
                            "a_to_b": self.a_to_b[layer, head],
                            "b_to_a": self.b_to_a[layer, head],
                        }
                    )
        return rows

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the probe and its analysis, by name, tokens first: the ``.npz`` the
        window exports and the file ``probe --out`` writes (``.npz``, or ``.json`` lists)."""
        r, layers, attention = self.result, self.layers, self.attention
        arrays = {
            "tokens": np.asarray(r.token_strings),
            "truncated": np.asarray(r.truncated),
            "input_ids": r.input_ids,
            "segment_ids": r.segment_ids,
            "hidden_states": r.hidden_states,
            "attentions": r.attentions,
        }
        if r.mlm_logits is not None:
            arrays["mlm_logits"] = r.mlm_logits
        if r.sentence is not None:  # class 0: is next (NSP) / in order (SOP)
            arrays["sentence_logits"] = r.sentence.logits
            arrays["sentence_prob"] = np.asarray(r.sentence.prob)
        arrays |= {
            "norms": layers.norms,
            "l2_distance": layers.l2_distance,
            "cosine": layers.cosine,
            "l2_mean": layers.l2_mean,
            "cosine_mean": layers.cosine_mean,
            "angle_deg": layers.angle_deg,
            "angle_mean_deg": layers.angle_mean_deg,
            "similarity_to_embedding": layers.similarity_to_embedding,
            "pca": self.pca,
            "pca_variance": self.pca_variance,
            "mean_attention": attention.mean_maps,
            "rollout": attention.rollout,
        }
        for name in attention.PER_HEAD:
            arrays[f"head_{name}"] = getattr(attention, name)
        if attention.to_punct_all is not None:
            arrays["head_to_punct_all"] = attention.to_punct_all
        if self.a_to_b is not None:
            arrays["a_to_b"] = self.a_to_b
            arrays["b_to_a"] = self.b_to_a
        for i, m in enumerate(r.masked):
            arrays[f"masked_{i}_ids"] = np.asarray(m.ids, dtype=np.int64)
            arrays[f"masked_{i}_probs"] = m.probs
        if r.masked:
            arrays["masked_positions"] = np.asarray([m.position for m in r.masked], dtype=np.int64)
        return arrays

    @cached_property
    def focus(self) -> TokenFocus:
        """Where each token looks, for every token (not a field: exports hold no copy of it)."""
        return focus_of_every_token(self.result, self.attention.mean_maps)

    @cached_property
    def words(self) -> WordLevel:
        """How the tokens group into words (for the word-level attention views)."""
        return word_level(self.result)

    @cached_property
    def word_attentions(self) -> np.ndarray:
        """(L, heads, W, W) word-level attention of every head (Clark et al. 2019), computed
        on first use: only a user who switches to words pays for it."""
        return word_attention(self.result.attentions, self.words)


def analyze_result(result: ProbeResult) -> ProbeAnalysis:
    """All per-sentence analyses of an existing probe result."""
    pca, variance = _pca(result.hidden_states)
    blocks = pair_blocks(result)
    analysis = ProbeAnalysis(
        result=result,
        layers=layer_stats(result),
        attention=attention_stats(result),
        pca=pca,
        pca_variance=variance,
        a_to_b=blocks["a_to_b"],
        b_to_a=blocks["b_to_a"],
    )
    _ = analysis.focus  # computed here, on the caller's (engine) thread, not at first click
    return analysis


def analyze(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    top_k: int = 5,
    full_logits: bool = True,
) -> ProbeAnalysis:
    """Probe, then layer statistics, attention statistics and rollout, PCA and pair blocks."""
    return analyze_result(probe(loaded, text, pair, top_k, full_logits))
