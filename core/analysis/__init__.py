"""Qt-free analysis of probed sentences and of model sizes.

``probe`` runs a sentence through a loaded model; ``layers`` and ``attention`` turn the result
into per-layer and per-head statistics (``summary.analyze`` runs them all); ``params``,
``memory`` (the model), ``measure`` (memory and latency measured), ``flops`` and ``compare``
size up whole models; ``export`` writes any result to JSON and tidy CSV; ``cli`` holds the
``compare`` and ``memory`` commands. Results are dataclasses holding numpy arrays and floats,
never live tensors. Only the per-sentence API is imported here, to keep the import light.
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
