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
