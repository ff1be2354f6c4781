"""Qt-free analysis of probed sentences and of model sizes.

``probe`` runs a sentence through a loaded model; ``layers`` and ``attention`` turn the result
into per-layer and per-head statistics; ``params``, ``memory``, ``flops``, ``speed`` and
``compare`` size up whole models; ``export`` writes any result to JSON and tidy CSV. Results
are dataclasses holding numpy arrays and floats, never live tensors.
"""

from core.analysis.attention import (
    AttentionStats,
    attention_stats,
    pair_blocks,
    rollout,
    token_focus,
)
from core.analysis.layers import LayerStats, layer_stats, pca_all_layers, pca_projection
from core.analysis.probe import MaskPrediction, ProbeResult, TokenInfo, predict_masked, probe

__all__ = [
    "AttentionStats",
    "LayerStats",
    "MaskPrediction",
    "ProbeResult",
    "TokenInfo",
    "attention_stats",
    "layer_stats",
    "pair_blocks",
    "pca_all_layers",
    "pca_projection",
    "predict_masked",
    "probe",
    "rollout",
    "token_focus",
]
