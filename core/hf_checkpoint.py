"""Hugging Face-format checkpoints: read, map keys, check shapes, save atomically.

Reads ``model.safetensors``, sharded safetensors (``model.safetensors.index.json``) or
``pytorch_model.bin`` (only through ``torch.load(weights_only=True)``, which refuses pickles
that would run code). Understands the key layouts of ``BertModel``, ``BertForMaskedLM``,
``BertForPreTraining``, ``AlbertModel``, ``AlbertForMaskedLM`` and ``AlbertForPreTraining``:
with or without the ``bert.``/``albert.`` prefix, TF-era ``gamma``/``beta`` names, and tied
decoder weights present or absent. Saves ``BertForPreTraining``-style keys that transformers
loads with no missing or unexpected keys.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.config import ModelConfig
from core.errors import CheckpointError

log = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_QKV = ("query", "key", "value")


# -- reading files ---------------------------------------------------------------------------
def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({err})") from None


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused to unpickle: the file holds more than tensors and could run code "
            f"({first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated PyTorch file ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state_dict)")
    return data


def _load_index(index: Path, load_one) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index}: malformed shard index ({err})") from None
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = index.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index}: shard {shard} is missing")
        tensors.update(load_one(shard_path))
    return tensors


def read_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder, keys as stored in the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder")
    if (folder / "model.safetensors").is_file():
        return _load_safetensors(folder / "model.safetensors")
    if (folder / "model.safetensors.index.json").is_file():
        return _load_index(folder / "model.safetensors.index.json", _load_safetensors)
    if (folder / "pytorch_model.bin").is_file():
        return _load_bin(folder / "pytorch_model.bin")
    if (folder / "pytorch_model.bin.index.json").is_file():
        return _load_index(folder / "pytorch_model.bin.index.json", _load_bin)
    raise CheckpointError(f"{folder}: no weights found (expected one of {', '.join(WEIGHT_FILES)})")


# -- key maps --------------------------------------------------------------------------------
def _normalise_key(key: str, prefix: str) -> str | None:
    """Checkpoint key -> engine key (before Q/K/V fusion); None for keys we drop."""
    if key.startswith(prefix + "."):
        key = key[len(prefix) + 1 :]
    key = re.sub(r"\.gamma$", ".weight", key)
    key = re.sub(r"\.beta$", ".bias", key)
    if key.endswith("position_ids") or key.endswith("token_type_ids"):
        return None  # buffers some versions saved
    # BERT: attention.self.{q,k,v} / attention.output.{dense,LayerNorm} -> attention.*
    key = key.replace(".attention.self.", ".attention.").replace(
        ".attention.output.", ".attention."
    )
    return key


def hf_to_engine(raw: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Map a Hugging Face state dict to the engine's keys (fusing Q, K, V)."""
    prefix = config.model_type
    head = "cls.predictions" if prefix == "bert" else "predictions"
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        new = _normalise_key(key, prefix)
        if new is not None:
            mapped[new] = tensor
    # The decoder is tied to the word embeddings; its bias is the head's bias.
    mapped.pop(f"{head}.decoder.weight", None)
    decoder_bias = mapped.pop(f"{head}.decoder.bias", None)
    if decoder_bias is not None and f"{head}.bias" not in mapped:
        mapped[f"{head}.bias"] = decoder_bias
    fused: dict[str, torch.Tensor] = {}
    for key, tensor in mapped.items():
        match = re.match(r"(.*\.attention)\.(query|key|value)\.(weight|bias)$", key)
        if not match:
            fused[key] = tensor
            continue
        base, part, kind = match.groups()
        if part != "query":
            continue
        parts = [mapped.get(f"{base}.{p}.{kind}") for p in _QKV]
        missing = [f"{base}.{p}.{kind}" for p, t in zip(_QKV, parts, strict=True) if t is None]
        if missing:
            raise CheckpointError(f"missing attention weights: {', '.join(missing)}")
        shapes = {tuple(t.shape) for t in parts}
        if len(shapes) != 1:
            raise CheckpointError(f"{base}: query/key/value {kind} shapes differ: {sorted(shapes)}")
        fused[f"{base}.qkv.{kind}"] = torch.cat(parts, dim=0)
    return fused


def engine_to_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """The engine's state dict with transformers' ``*ForPreTraining`` key names."""
    prefix = config.model_type
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        head = key.startswith(("cls.", "predictions.", "sop_classifier."))
        match = re.match(r"(.*\.attention)\.qkv\.(weight|bias)$", key)
        if match:
            base, kind = match.groups()
            if prefix == "bert":
                base = base + ".self"
            for part, chunk in zip(_QKV, tensor.chunk(3, dim=0), strict=True):
                out[f"{prefix}.{base}.{part}.{kind}"] = chunk.contiguous()
            continue
        if prefix == "bert":
            key = re.sub(r"\.attention\.(dense|LayerNorm)\.", r".attention.output.\1.", key)
        out[key if head else f"{prefix}.{key}"] = tensor
    return out


def detect_heads(keys: set[str], model_type: str) -> frozenset[str]:
    """Which heads a checkpoint (engine keys) carries."""
    if model_type == "bert":
        marks = {
            "pooler": "pooler.dense.weight",
            "mlm": "cls.predictions.transform.dense.weight",
            "nsp": "cls.seq_relationship.weight",
        }
    else:
        marks = {
            "pooler": "pooler.weight",
            "mlm": "predictions.dense.weight",
            "sop": "sop_classifier.classifier.weight",
        }
    heads = {name for name, key in marks.items() if key in keys}
    if heads & {"nsp", "sop"} and "pooler" not in heads:
        heads -= {"nsp", "sop"}  # a sentence head without its pooler cannot run
    return frozenset(heads)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` after checking every key and shape, naming offenders."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
        )
        raise CheckpointError(f"{source}: missing weights: {shown}")
    if unexpected:
        log.warning(
            "%s: ignoring %d weights no BertScope head uses: %s",
            source,
            len(unexpected),
            ", ".join(unexpected[:6]),
        )
    wrong = [
        f"{key} {tuple(state[key].shape)} (config expects {tuple(expected[key].shape)})"
        for key in expected
        if tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    if wrong:
        shown = "; ".join(wrong[:4]) + (f"; +{len(wrong) - 4} more" if len(wrong) > 4 else "")
        raise CheckpointError(f"{source}: weight shapes disagree with config.json: {shown}")
    dtype = next(iter(expected.values())).dtype
    with torch.no_grad():
        model.load_state_dict({k: state[k].to(dtype) for k in expected}, strict=True)


def hf_architecture(config: ModelConfig, heads: frozenset[str]) -> str:
    """The transformers class whose keys the saved file has exactly."""
    family = "Bert" if config.model_type == "bert" else "Albert"
    pair = "nsp" if config.model_type == "bert" else "sop"
    if {"mlm", pair} <= heads:
        return f"{family}ForPreTraining"
    if "mlm" in heads and "pooler" not in heads:
        return f"{family}ForMaskedLM"
    return f"{family}Model"


def save_weights(model: nn.Module, config: ModelConfig, folder: Path) -> None:
    """Write ``model.safetensors`` with transformers' key names (shared tensors cloned)."""
    state = engine_to_hf(model.state_dict(), config)
    seen: set[int] = set()
    tensors = {}
    for key, tensor in state.items():
        tensor = tensor.detach().to("cpu")
        ptr = tensor.data_ptr()
        tensors[key] = tensor.clone().contiguous() if ptr in seen else tensor.contiguous()
        seen.add(ptr)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def atomic_folder(target: Path, write) -> None:
    """Run ``write(tmp_folder)`` then swap the result in for ``target``.

    A crash or error while writing leaves ``target`` as it was: the new folder is only renamed
    over it once complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it owner-only; a model folder is not secret
    try:
        write(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
