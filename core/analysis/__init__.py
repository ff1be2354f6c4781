"""Qt-free analysis of probed sentences.

``probe`` runs a sentence through a loaded model; ``hidden_states`` and ``attention`` turn the
result into per-layer and per-head statistics (``summary.analyze`` runs them all). Results are
dataclasses holding numpy arrays and floats, never live tensors. Whole-model cost (parameters,
FLOPs, memory, speed) lives in :mod:`core.cost`; writing results to files in :mod:`core.export`.
"""

from core.analysis.attention import (
    AttentionStats,
    attention_stats,
    pair_blocks,
    rollout,
    token_focus,
)
from core.analysis.hidden_states import LayerStats, layer_stats, pca_all_layers, pca_projection
from core.analysis.probe import (
    MaskPrediction,
    ProbeResult,
    SentencePrediction,
    TokenInfo,
    predict_masked,
    probe,
)

__all__ = [
    "AttentionStats",
    "LayerStats",
    "MaskPrediction",
    "ProbeResult",
    "SentencePrediction",
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
