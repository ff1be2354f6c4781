"""Qt-free analysis of probed sentences.

``probe`` runs a sentence through a loaded model; ``hidden_states`` and ``attention`` turn the
result into per-layer and per-head statistics (``summary.analyze`` runs them all). Results are
dataclasses holding numpy arrays and floats, never live tensors. Whole-model cost (parameters,
FLOPs, memory, speed) lives in :mod:`core.cost`; writing results to files in :mod:`core.export`.
"""

from core.analysis.ablation import Ablation, HeadMask, ablate, head_mask
from core.analysis.attention import (
    AttentionStats,
    attention_stats,
    pair_blocks,
    rollout,
    token_focus,
)
from core.analysis.attribution import Attribution, Target, attribute
from core.analysis.hidden_states import LayerStats, layer_stats, pca_all_layers, pca_projection
from core.analysis.importance import HeadImportance, PruningCurve, head_importance, pruning_curve
from core.analysis.logit_lens import LogitLens, logit_lens
from core.analysis.norms import NormAttention, norm_attention
from core.analysis.probe import (
    MaskPrediction,
    ProbeResult,
    SentencePrediction,
    TokenInfo,
    predict_masked,
    probe,
)

__all__ = [
    "Ablation",
    "AttentionStats",
    "Attribution",
    "HeadImportance",
    "HeadMask",
    "LayerStats",
    "LogitLens",
    "MaskPrediction",
    "NormAttention",
    "ProbeResult",
    "PruningCurve",
    "SentencePrediction",
    "Target",
    "TokenInfo",
    "ablate",
    "attention_stats",
    "attribute",
    "head_importance",
    "head_mask",
    "layer_stats",
    "logit_lens",
    "norm_attention",
    "pair_blocks",
    "pca_all_layers",
    "pca_projection",
    "predict_masked",
    "probe",
    "pruning_curve",
    "rollout",
    "token_focus",
]
