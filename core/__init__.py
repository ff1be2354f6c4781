"""BertScope's engine: BERT and ALBERT models, checkpoints, tokenizers, analysis, training.

Never imports Qt. The public API is re-exported here, lazily (:mod:`core._lazy`): importing
``core`` or a light module of it (errors, config, atomic writes) loads no torch.
"""

from typing import TYPE_CHECKING

from core._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "core.blocks": ("ModelOutput",),
        "core.config": ("PRESETS", "Heads", "ModelConfig", "preset"),
        "core.errors": (
            "BertScopeError",
            "CheckpointError",
            "ConfigError",
            "InputError",
            "TokenizerError",
            "TrainingError",
        ),
        "core.loaded_model": ("LoadedModel", "build_model", "load_model", "save_model"),
    },
)

if TYPE_CHECKING:  # what type checkers and editors see
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
