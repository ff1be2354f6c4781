"""Hugging Face-format checkpoints: read, map keys, check shapes, save atomically.

Reads ``model.safetensors``, sharded safetensors (``model.safetensors.index.json``) or
``pytorch_model.bin`` (only through ``torch.load(weights_only=True)``, which refuses pickles
that would run code). Understands the key layouts of ``BertModel``, ``BertForMaskedLM``,
``BertForPreTraining``, ``AlbertModel``, ``AlbertForMaskedLM`` and ``AlbertForPreTraining``:
with or without the ``bert.``/``albert.`` prefix, TF-era ``gamma``/``beta`` names, and tied
decoder weights present or absent. Saves ``BertForPreTraining``-style keys that transformers
loads with no missing or unexpected keys.

Fused Q/K/V, the one place it is spelled out. ``SelfAttention.qkv`` (``core.blocks``) is a single
``nn.Linear(H, 3H)``: one matmul instead of three, measured faster. Its weight (3H, H) is the
checkpoint's ``query``, ``key`` and ``value`` weights (each (H, H)) stacked along dim 0 in that
order, and its bias (3H,) the three biases concatenated; the forward pass splits its output the
same way (``.split(H, dim=2)`` -> q, k, v). ``_fuse_plan`` says which checkpoint keys make up
each engine key; ``hf_to_engine`` joins them (``torch.cat`` on dim 0), ``engine_shapes`` does the
same on shapes alone (the pre-allocation check, from the safetensors header), and
``engine_to_hf`` splits them back (``chunk(3, dim=0)``). Every other key is a prefix strip plus
renames, because the engine's submodules are named like the checkpoint's.

Loading is checked before it allocates: :func:`peek_weights` reads the shapes (safetensors
header only), :func:`check_shapes` compares them with a meta-device model key by key.
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
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core.config import Heads, ModelConfig, family_objective
from core.errors import BertScopeError, CheckpointError

log = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_QKV = ("query", "key", "value")
T = TypeVar("T")


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


def _shard_paths(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{index}: malformed shard index ({err})") from None
    paths = []
    for shard in shards:
        shard_path = index.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index}: shard {shard} is missing")
        paths.append(shard_path)
    return paths


def _load_index(index: Path, load_one) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard_path in _shard_paths(index):
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


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a safetensors header; no tensor data is read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({err})") from None


def _index_shapes(index: Path) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for shard_path in _shard_paths(index):
        shapes.update(_safetensors_shapes(shard_path))
    return shapes


def peek_weights(
    folder: str | os.PathLike,
) -> tuple[dict[str, tuple[int, ...]], dict[str, torch.Tensor] | None, int]:
    """The shapes of a checkpoint's tensors (keys as stored) before their data is read.

    Returns ``(shapes, tensors, file_bytes)``: safetensors shapes come from the header alone
    (``tensors`` is None, read them later with :func:`read_weights`; ``file_bytes`` is what that
    read will take); a ``pytorch_model.bin`` has no header, so it is loaded (``weights_only``)
    and handed back as ``tensors`` to spare a second read (``file_bytes`` 0: already spent).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder")
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return _safetensors_shapes(single), None, single.stat().st_size
    if index.is_file():
        shapes = _index_shapes(index)
        return shapes, None, sum(p.stat().st_size for p in _shard_paths(index))
    tensors = read_weights(folder)
    return {k: tuple(v.shape) for k, v in tensors.items()}, tensors, 0


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


# Q/K/V fusion: see the module docstring.
_QKV_KEY = re.compile(r"(.*\.attention)\.(query|key|value)\.(weight|bias)$")


def _fuse_plan(mapped_keys: set[str]) -> dict[str, tuple[str, ...]]:
    """Engine key -> the normalised checkpoint keys it is made of: one key, or the query, key
    and value of a fused ``qkv`` (in that order)."""
    plan: dict[str, tuple[str, ...]] = {}
    for key in sorted(mapped_keys):
        match = _QKV_KEY.match(key)
        if not match:
            plan[key] = (key,)
            continue
        base, _, kind = match.groups()
        parts = tuple(f"{base}.{p}.{kind}" for p in _QKV)
        missing = [k for k in parts if k not in mapped_keys]
        if missing:
            raise CheckpointError(f"missing attention weights: {', '.join(missing)}")
        plan[f"{base}.qkv.{kind}"] = parts
    return plan


def _normalised(raw: dict[str, T], config: ModelConfig) -> dict[str, T]:
    """Prefix strip, renames and the tied decoder, on tensors or shapes alike."""
    prefix = config.model_type
    head = "cls.predictions" if prefix == "bert" else "predictions"
    mapped: dict[str, T] = {}
    for key, value in raw.items():
        new = _normalise_key(key, prefix)
        if new is not None:
            mapped[new] = value
    # The decoder is tied to the word embeddings; its bias is the head's bias.
    mapped.pop(f"{head}.decoder.weight", None)
    decoder_bias = mapped.pop(f"{head}.decoder.bias", None)
    if decoder_bias is not None and f"{head}.bias" not in mapped:
        mapped[f"{head}.bias"] = decoder_bias
    return mapped


def _fused_shape(key: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    if len(set(shapes)) != 1:
        raise CheckpointError(f"{key}: query/key/value shapes differ: {sorted(set(shapes))}")
    first = shapes[0]
    return (first[0] * len(shapes), *first[1:]) if first else first


def hf_to_engine(raw: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Map a Hugging Face state dict to the engine's keys (fusing Q, K, V)."""
    mapped = _normalised(raw, config)
    out: dict[str, torch.Tensor] = {}
    for key, parts in _fuse_plan(set(mapped)).items():
        if len(parts) == 1:
            out[key] = mapped[parts[0]]
        else:
            _fused_shape(key, [tuple(mapped[p].shape) for p in parts])
            out[key] = torch.cat([mapped[p] for p in parts], dim=0)
    return out


def engine_shapes(
    raw_shapes: dict[str, tuple[int, ...]], config: ModelConfig
) -> dict[str, tuple[int, ...]]:
    """What :func:`hf_to_engine` would produce, as shapes: checks a file before reading it."""
    mapped = _normalised(raw_shapes, config)
    return {
        key: mapped[parts[0]] if len(parts) == 1 else _fused_shape(key, [mapped[p] for p in parts])
        for key, parts in _fuse_plan(set(mapped)).items()
    }


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


def detect_heads(keys: set[str], model_type: str, objective: str | None = None) -> Heads:
    """Which heads a checkpoint (engine keys) carries; its sentence head is named by the
    ``objective`` config.json records (None: the family's own)."""
    if model_type == "bert":
        pooler, mlm, sentence = (
            "pooler.dense.weight",
            "cls.predictions.transform.dense.weight",
            "cls.seq_relationship.weight",
        )
    else:
        pooler, mlm, sentence = (
            "pooler.weight",
            "predictions.dense.weight",
            "sop_classifier.classifier.weight",
        )
    has_pooler = pooler in keys
    # A sentence head without its pooler cannot run: it is dropped.
    has_sentence = sentence in keys and has_pooler
    return Heads(
        mlm=mlm in keys,
        sentence=(objective or family_objective(model_type)) if has_sentence else None,
        pooler=has_pooler,
    )


def check_shapes(model: nn.Module, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Raise :class:`CheckpointError` naming the missing keys, or each key whose shape in the
    file differs from the one ``model`` (a meta-device model will do) expects."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""
        )
        raise CheckpointError(f"{source}: missing weights: {shown}")
    wrong = [
        f"{key} {tuple(shapes[key])} (config expects {shape})"
        for key, shape in expected.items()
        if tuple(shapes[key]) != shape
    ]
    if wrong:
        shown = "; ".join(wrong[:4]) + (f"; +{len(wrong) - 4} more" if len(wrong) > 4 else "")
        raise CheckpointError(f"{source}: weight shapes disagree with config.json: {shown}")


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` after checking every key and shape, naming offenders."""
    check_shapes(model, {k: tuple(v.shape) for k, v in state.items()}, source)
    expected = model.state_dict()
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        log.warning(
            "%s: ignoring %d weights no BertScope head uses: %s",
            source,
            len(unexpected),
            ", ".join(unexpected[:6]),
        )
    dtype = next(iter(expected.values())).dtype
    with torch.no_grad():
        model.load_state_dict({k: state[k].to(dtype) for k in expected}, strict=True)


def hf_architecture(config: ModelConfig, heads: Heads) -> str:
    """The transformers class whose keys the saved file has exactly."""
    family = "Bert" if config.model_type == "bert" else "Albert"
    if heads.mlm and heads.sentence:
        return f"{family}ForPreTraining"
    if heads.mlm and not heads.pooler:
        return f"{family}ForMaskedLM"
    return f"{family}Model"


def save_weights(
    model: nn.Module,
    config: ModelConfig,
    folder: Path,
    head_tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write ``model.safetensors`` with transformers' key names (shared tensors cloned), plus
    ``head_tensors`` already named as transformers names them (a classifier head's)."""
    state = {**engine_to_hf(model.state_dict(), config), **(head_tensors or {})}
    seen: set[int] = set()
    tensors = {}
    for key, tensor in state.items():
        tensor = tensor.detach().to("cpu")
        ptr = tensor.data_ptr()
        tensors[key] = tensor.clone().contiguous() if ptr in seen else tensor.contiguous()
        seen.add(ptr)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _ordinary_permissions(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes a plain ``open``/``mkdir`` would: 0644 and
    0755 under umask 022. ``mkdtemp`` makes the folder owner-only and safetensors writes its
    file 0600; a model folder is not secret."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


_OS_ERROR = re.compile(r"os error (\d+)")


def write_failure(err: BaseException) -> str:
    """Why a write failed, in a few words: the operating system's reason (``No space left on
    device``, ``File too large``) wherever the writer kept it: an ``OSError`` itself or in its
    chain (``torch.save`` raises a ``RuntimeError`` whose context is the ``OSError``), or an
    ``(os error N)`` in a Rust library's message (safetensors, tokenizers); else the first line
    of the message."""
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and link.errno:
            return os.strerror(link.errno)
        match = _OS_ERROR.search(str(link))
        if match:
            return os.strerror(int(match.group(1)))
        link = link.__cause__ or link.__context__
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def atomic_folder(target: Path, write) -> None:
    """Run ``write(tmp_folder)`` then swap the result in for ``target``.

    A crash or error while writing leaves ``target`` as it was: the new folder is only renamed
    over it once complete. A write that fails (a full disk, a file size limit, no permission)
    raises :class:`CheckpointError` in one line naming ``target`` and the system's reason, with
    the temporary folder removed.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        write(tmp)
        _ordinary_permissions(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)  # the previous folder back where it was
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, Exception) and not isinstance(err, BertScopeError):
            raise CheckpointError(f"could not write {target}: {write_failure(err)}") from None
        raise
