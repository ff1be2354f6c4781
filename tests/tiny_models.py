"""Tiny checkpoints for tests: random-initialised, seeded, built by the engine or by transformers."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from core.config import Heads, ModelConfig
from core.loaded_model import LoadedModel, build_model, save_model
from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, wordpiece_from_vocab

WORDS = (
    "the a an of and to in is was he she it they we you i his her their my this that with for on "
    "at by from as be have had not but what all were when there can said which do if will one "
    "so no man king lord god house day city water light love time people went came saw said "
    "good great old new first last long little own other such only same then now here ; , . ! ?"
).split()


def write_vocab(folder: Path, model_type: str = "bert", size: int = 99) -> Path:
    """A vocab.txt with the family's special tokens first, then words, then filler pieces."""
    special = list(SPECIAL_DEFAULTS[model_type].values())
    special = [special[3], special[4], special[0], special[1], special[2]]  # pad unk cls sep mask
    words = list(dict.fromkeys(WORDS))
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz")
    vocab = (special + words + pieces)[:size]
    vocab += [f"[unused{i}]" for i in range(size - len(vocab))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def tiny_tokenizer(
    folder: Path, model_type: str = "bert", size: int = 99, max_length: int = 64
) -> Tokenizer:
    special = SPECIAL_DEFAULTS[model_type]
    backend = wordpiece_from_vocab(write_vocab(folder, model_type, size), True, special)
    return Tokenizer(backend, special, max_length, do_lower_case=True)


def tiny_config(model_type: str = "bert", **overrides) -> ModelConfig:
    base = dict(
        model_type=model_type,
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    if model_type == "albert":
        base.update(embedding_size=16, hidden_act="gelu_new")
    base.update(overrides)
    return ModelConfig(**base)


def engine_checkpoint(
    folder: Path, config: ModelConfig, seed: int = 0, heads: Heads | None = None
) -> Path:
    """A random-initialised checkpoint written by the engine itself."""
    torch.manual_seed(seed)
    model = build_model(config, heads)
    model.init_weights()
    model.eval()
    tokenizer = tiny_tokenizer(
        vocab_folder(folder), config.model_type, config.vocab_size, config.max_position_embeddings
    )
    save_model(LoadedModel(config, model, tokenizer, folder.name), folder)
    return folder


def hf_checkpoint(folder: Path, architecture: str, seed: int = 0, **config) -> Path:
    """A random-initialised checkpoint written by transformers (the reference)."""
    import transformers

    model_type = "albert" if architecture.startswith("Albert") else "bert"
    cfg_cls = transformers.AlbertConfig if model_type == "albert" else transformers.BertConfig
    torch.manual_seed(seed)
    cfg = cfg_cls(**config)
    model = getattr(transformers, architecture)(cfg)
    # transformers initialises some biases and LayerNorms to constants; randomise everything
    # so a swapped or missing tensor cannot hide.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    model.eval()
    model.save_pretrained(folder)
    write_vocab(folder, model_type, config["vocab_size"])
    if model_type == "albert":
        special = SPECIAL_DEFAULTS["albert"]
        tok = Tokenizer(wordpiece_from_vocab(folder / "vocab.txt", True, special), special, 512)
        tok.save(folder)
    else:
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return folder


def vocab_folder(checkpoint: Path) -> Path:
    """Where ``engine_checkpoint`` keeps the vocab.txt its tokenizer was built from."""
    return checkpoint.with_name(checkpoint.name + "-vocab")
