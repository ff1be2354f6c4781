"""BertScope's engine: BERT and ALBERT models, checkpoints, tokenizers, analysis, training.

Never imports Qt. The public API is re-exported here.
"""

from core.blocks import ModelOutput
from core.config import PRESETS, Heads, ModelConfig, preset
from core.errors import (
    BertScopeError,
    CheckpointError,
    ConfigError,
    InputError,
    TokenizerError,
    TrainingError,
)
from core.loaded_model import LoadedModel, build_model, load_model, save_model

__all__ = [
    "PRESETS",
    "BertScopeError",
    "CheckpointError",
    "ConfigError",
    "Heads",
    "InputError",
    "LoadedModel",
    "ModelConfig",
    "ModelOutput",
    "TokenizerError",
    "TrainingError",
    "build_model",
    "load_model",
    "preset",
    "save_model",
]
