"""The Python API: build, load, run and save BERT/ALBERT models.

``load_model(path)`` returns a :class:`LoadedModel` bundling config, ``nn.Module`` and
tokenizer; ``save_model(loaded, path)`` writes a folder transformers loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.albert import ALBERT_HEADS, AlbertModel
from core.bert import BERT_HEADS, BertModel
from core.blocks import ModelOutput
from core.config import ModelConfig
from core.device import resolve_device
from core.errors import CheckpointError, ConfigError
from core.hf_checkpoint import (
    atomic_folder,
    detect_heads,
    hf_architecture,
    hf_to_engine,
    load_state,
    read_weights,
    save_weights,
)
from core.tokenizer import Encoded, Tokenizer, load_tokenizer


def all_heads(config: ModelConfig) -> frozenset[str]:
    return BERT_HEADS if config.model_type == "bert" else ALBERT_HEADS


def build_model(config: ModelConfig, heads: frozenset[str] | None = None) -> nn.Module:
    """An uninitialised model of ``config``'s family (call ``init_weights`` to train it).

    Under ``with torch.device("meta"):`` it allocates nothing, which is how parameter
    counts for paper-size presets are taken.
    """
    heads = all_heads(config) if heads is None else frozenset(heads)
    cls = BertModel if config.model_type == "bert" else AlbertModel
    return cls(config, heads)


@dataclass
class LoadedModel:
    """A model ready to probe: config, module (eval mode), tokenizer, and where it came from."""

    config: ModelConfig
    model: nn.Module
    tokenizer: Tokenizer
    name: str
    path: Path | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def heads(self) -> frozenset[str]:
        return self.model.heads

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device | None) -> LoadedModel:
        self.model.to(resolve_device(device))
        return self

    def encode(self, text: str, pair: str | None = None) -> Encoded:
        return self.tokenizer.encode(text, pair)

    @torch.no_grad()
    def run(self, encoded: Encoded, output_attentions: bool = True) -> ModelOutput:
        """One forward pass, batch of one, in eval mode."""
        self.model.eval()
        return self.model(**encoded.tensors(self.device), output_attentions=output_attentions)

    def __call__(
        self, text: str, pair: str | None = None, output_attentions: bool = True
    ) -> ModelOutput:
        return self.run(self.encode(text, pair), output_attentions)


def load_model(
    path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Load a Hugging Face-format BERT/ALBERT folder (config.json, weights, tokenizer)."""
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder (expected a model folder with config.json)")
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: no config.json")
    try:
        config = ModelConfig.load(folder / "config.json")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    state = hf_to_engine(read_weights(folder), config)
    heads = detect_heads(set(state), config.model_type)
    with torch.device("meta"):
        model = build_model(config, heads)
    model.to_empty(device="cpu")
    model.to(dtype)
    load_state(model, state, str(folder))
    tokenizer = load_tokenizer(folder, config.model_type, config.max_position_embeddings)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens but config.json "
            f"vocab_size is {config.vocab_size}"
        )
    model.eval()
    model.to(resolve_device(device))
    return LoadedModel(
        config=config, model=model, tokenizer=tokenizer, name=folder.name, path=folder
    )


def save_model(loaded: LoadedModel, path: str | os.PathLike) -> Path:
    """Write config.json, model.safetensors and the tokenizer, atomically."""
    target = Path(path)
    config = loaded.config.replace(
        extra={
            **loaded.config.extra,
            "architectures": [hf_architecture(loaded.config, loaded.heads)],
        }
    )

    def write(folder: Path) -> None:
        config.save(folder / "config.json")
        save_weights(loaded.model, config, folder)
        loaded.tokenizer.save(folder)

    atomic_folder(target, write)
    return target
