"""The Python API: build, load, run and save BERT/ALBERT models.

``load_model(path)`` returns a :class:`LoadedModel` bundling config, ``nn.Module`` and
tokenizer; ``save_model(loaded, path)`` writes a folder transformers loads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.albert import AlbertModel
from core.bert import BertModel
from core.blocks import ModelOutput
from core.classifier import HEAD_KEYS, ClassificationHead, head_from_state
from core.config import Heads, ModelConfig, sentence_objective
from core.device import move_module, resolve_device
from core.errors import CheckpointError, ConfigError
from core.hf_checkpoint import (
    atomic_folder,
    check_shapes,
    detect_heads,
    engine_shapes,
    hf_architecture,
    hf_to_engine,
    load_state,
    peek_weights,
    read_weights,
    save_weights,
)
from core.tokenizer import Encoded, Tokenizer, load_tokenizer

log = logging.getLogger(__name__)


def build_model(config: ModelConfig, heads: Heads | None = None) -> nn.Module:
    """An uninitialised model of ``config``'s family (call ``init_weights`` to train it).

    ``heads`` defaults to the pre-training heads of the sentence objective config.json
    records. Under ``with torch.device("meta"):`` it allocates nothing, which is how parameter counts for paper-size presets are taken.
    """
    if heads is None:
        heads = Heads.pretraining(config.model_type, sentence_objective(config))
    cls = BertModel if config.model_type == "bert" else AlbertModel
    return cls(config, heads)


# Initialising meta tensors computes nothing, yet it is most of the time a paper-size build
# takes (24 layers of nn.Linear.reset_parameters). transformers skips it the same way
# (``no_init_weights``); here the skip is a thread-local flag, so another thread building a
# real model at the same moment is initialised as usual.
_SKIP_INIT = threading.local()
_INIT_CLASSES = (nn.Linear, nn.Embedding, nn.LayerNorm)
_init_lock = threading.Lock()
_init_wrapped = False


def _wrap_reset_parameters() -> None:
    global _init_wrapped
    with _init_lock:
        if _init_wrapped:
            return
        for cls in _INIT_CLASSES:

            def reset_parameters(self: nn.Module, _original=cls.reset_parameters) -> None:
                if not getattr(_SKIP_INIT, "on", False):
                    _original(self)

            cls.reset_parameters = reset_parameters
        _init_wrapped = True


def meta_model(config: ModelConfig, heads: Heads | None = None) -> nn.Module:
    """``build_model`` on the meta device (shapes only, nothing allocated or initialised): what
    parameter counts, FLOPs and the memory model of any size are computed from."""
    _wrap_reset_parameters()
    _SKIP_INIT.on = True
    try:
        with torch.device("meta"):
            return build_model(config, heads)
    finally:
        _SKIP_INIT.on = False


def materialize(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model.to_empty(device)`` without its ``empty_like`` of meta tensors, which goes through
    ``torch._refs`` and, on first use, imports sympy (about 2 s of a first probe): each tensor
    becomes a fresh uninitialised one of its shape and dtype (ties and sharing kept)."""
    return model._apply(lambda t: torch.empty(t.shape, dtype=t.dtype, device=device))


# -- will it fit? ----------------------------------------------------------------------------
def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``: ``MemAvailable`` from /proc/meminfo for the CPU
    (and MPS, which shares it), the driver's free figure for CUDA; None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:,.0f} bytes"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000:
            return f"{n:,.1f} {unit}"
    return f"{n / 1000:,.1f} TB"


def _refuse_if_short(need: int, why: str, device: torch.device, source: str) -> None:
    free = available_memory(device)
    if free is not None and need > free:
        where = "RAM" if device.type in ("cpu", "mps") else f"{device} memory"
        raise CheckpointError(
            f"{source}: the model needs about {_size(need)} ({why}) but only {_size(free)} of "
            f"{where} is available"
        )


def _check_fits(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    source: str,
    file_bytes: int = 0,
) -> int:
    n = sum(p.numel() for p in model.parameters())  # shared (ALBERT) and tied tensors once
    size = torch.empty((), dtype=dtype, device="meta").element_size()
    need = n * size
    why = f"{n:,} parameters x {size} bytes"
    # The model is built in RAM first; while the checkpoint's tensors are copied in, they are
    # held there too.
    _refuse_if_short(
        need + file_bytes,
        why + (f" + {_size(file_bytes)} of weights read" if file_bytes else ""),
        torch.device("cpu"),
        source,
    )
    if device.type == "cuda":
        _refuse_if_short(need, why, device, source)
    return need


def check_fits(
    config: ModelConfig,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    heads: Heads | None = None,
    source: str = "config",
) -> int:
    """The bytes a model of ``config`` takes; raises :class:`CheckpointError` in one line (which
    starts with ``source``, e.g. the model's name) when that exceeds the memory available on
    ``device`` (and in RAM, where it is built first). For a config alone, before building it.

    Counts on a meta-device model, so an absurd config is refused without allocating anything.
    """
    model = meta_model(config, heads)
    return _check_fits(model, resolve_device(device), dtype, source)


@dataclass
class LoadedModel:
    """A model ready to probe: config, module (eval mode), tokenizer, and where it came from."""

    config: ModelConfig
    model: nn.Module
    tokenizer: Tokenizer
    name: str
    path: Path | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict, repr=False)
    # Problems the model was loaded despite (``allow_tokenizer_mismatch=True``), one line each,
    # for the CLI to print and the window to show.
    warnings: tuple[str, ...] = ()
    # A sequence-classification head on the pooled output (``core.classifier``), or None.
    classifier: ClassificationHead | None = None

    @property
    def heads(self) -> Heads:
        return self.model.heads

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device | None) -> LoadedModel:
        """Move the model; all or nothing (a failed move, e.g. out of GPU memory, leaves it
        where it was and raises :class:`~core.errors.DeviceError`)."""
        move_module(self.model, resolve_device(device), self.name)
        if self.classifier is not None:
            move_module(self.classifier, resolve_device(device), self.name)
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


def tokenizer_mismatches(tokenizer: Tokenizer, config: ModelConfig, source: str) -> list[str]:
    """Where ``tokenizer`` (read from ``source``, e.g. ``tokenizer.json``) disagrees with the
    model's embeddings, one phrase each: more token ids than the embeddings have rows, a
    special token whose id is outside them, or a pad token other than ``pad_token_id``. Empty
    when they agree. A tokenizer with *fewer* tokens than rows is fine (vocabularies are often
    padded to a round number of rows)."""
    rows = config.vocab_size
    vocab = tokenizer.backend.get_vocab(with_added_tokens=True)
    n_ids = max(tokenizer.vocab_size, max(vocab.values(), default=-1) + 1)
    found = []
    if n_ids > rows:
        found.append(
            f"{source} has {n_ids} tokens but the model's embeddings have {rows} rows "
            "(vocab_size in config.json)"
        )
    for role, token in tokenizer.special.items():
        token_id = tokenizer.token_id(role)
        if token_id >= rows:
            found.append(
                f"its {role} token {token!r} is id {token_id}, outside the embeddings' {rows} rows"
            )
    pad_id = tokenizer.token_id("pad")
    if pad_id != config.pad_token_id:
        found.append(
            f"its pad token {tokenizer.special['pad']!r} is id {pad_id} but config.json has "
            f"pad_token_id {config.pad_token_id}"
        )
    return found


def load_model(
    path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    allow_tokenizer_mismatch: bool = False,
) -> LoadedModel:
    """Load a Hugging Face-format BERT/ALBERT folder (config.json, weights, tokenizer).

    Before any weight is allocated, the tensor shapes in the file (the safetensors header) are
    compared with the model ``config.json`` describes, and its size with the memory available:
    either failure is a one-line :class:`CheckpointError`, not an allocator traceback.

    A tokenizer that does not fit the embeddings (another model's tokenizer: more tokens than
    rows, special-token ids outside them, a pad id other than ``pad_token_id``) would give
    confident nonsense, so it is refused too, unless ``allow_tokenizer_mismatch``: then the
    model loads and :attr:`LoadedModel.warnings` says what is wrong.
    """
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
    raw_shapes, tensors, file_bytes = peek_weights(folder)
    shapes = engine_shapes(raw_shapes, config)
    # Not initialised: the file's weights replace every value (and a meta-device init goes
    # through torch._refs, whose first use imports torch._dynamo: seconds before a first probe).
    objective = sentence_objective(config)
    heads = detect_heads(set(shapes), config.model_type, None if objective == "none" else objective)
    model = meta_model(config, heads)
    check_shapes(model, shapes, str(folder))
    # The tokenizer before the weights: a mismatch costs no weight read.
    tokenizer = load_tokenizer(folder, config.model_type, config.max_position_embeddings)
    source = "tokenizer.json" if (folder / "tokenizer.json").is_file() else "vocab.txt"
    warnings: tuple[str, ...] = ()
    mismatches = tokenizer_mismatches(tokenizer, config, source)
    if mismatches and not allow_tokenizer_mismatch:
        raise CheckpointError(
            f"{folder}: the tokenizer does not fit the model: {'; '.join(mismatches)} "
            "(another model's tokenizer? its ids would index the wrong rows); load it anyway "
            "with --allow-tokenizer-mismatch (allow_tokenizer_mismatch=True)"
        )
    if mismatches:
        warnings = (
            f"{folder}: loaded despite a tokenizer that does not fit the model: "
            f"{'; '.join(mismatches)}; its outputs may be nonsense",
        )
        log.warning("%s", warnings[0])
    target = resolve_device(device)
    _check_fits(model, target, dtype, str(folder), file_bytes)
    state = hf_to_engine(read_weights(folder) if tensors is None else tensors, config)
    head_state = {k: state.pop(k) for k in HEAD_KEYS if k in state}
    classifier = head_from_state(head_state, config, str(folder)) if head_state else None
    if classifier is not None and model.pooler is None:
        raise CheckpointError(f"{folder}: a classifier head without the pooler it reads")
    materialize(model, "cpu")
    model.to(dtype)
    load_state(model, state, str(folder))
    model.eval()
    move_module(model, target, folder.name)
    if classifier is not None:
        move_module(classifier.to(dtype), target, folder.name)
    return LoadedModel(
        config=config,
        model=model,
        tokenizer=tokenizer,
        name=folder.name,
        path=folder,
        warnings=warnings,
        classifier=classifier,
    )


def save_model(loaded: LoadedModel, path: str | os.PathLike) -> Path:
    """Write config.json, model.safetensors and the tokenizer, atomically. With a classifier
    head, as transformers' ``*ForSequenceClassification`` (its labels in config.json)."""
    target = Path(path)
    head = loaded.classifier
    if head is None:
        fields = {"architectures": [hf_architecture(loaded.config, loaded.heads)]}
        head_tensors = None
    else:
        family = "Bert" if loaded.config.model_type == "bert" else "Albert"
        fields = {
            **head.labels.config_fields(),
            "architectures": [f"{family}ForSequenceClassification"],
        }
        head_tensors = {f"classifier.{k}": v for k, v in head.classifier.state_dict().items()}
    config = loaded.config.replace(extra={**loaded.config.extra, **fields})

    def write(folder: Path) -> None:
        config.save(folder / "config.json")
        save_weights(loaded.model, config, folder, head_tensors)
        loaded.tokenizer.save(folder)

    atomic_folder(target, write)
    return target
