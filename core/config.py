"""Model configuration shared by the BERT and ALBERT families, and named presets.

Field names are exactly those of Hugging Face ``config.json`` (``BertConfig`` /
``AlbertConfig``), so a checkpoint's config reads and writes without a translation table.
Paper sizes follow Devlin et al. (2019) Table/Section 3 and Lan et al. (2020) Table 1; the
small trainable sizes follow Turc et al. (2019) ("tiny" L=2/H=128, "mini" L=4/H=256,
"small" L=4/H=512).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.atomic import write_text_atomic
from core.errors import ConfigError

ModelType = Literal["bert", "albert"]
Sharing = Literal["all", "attention", "ffn", "none"]
SentenceHead = Literal["nsp", "sop"]
# The sentence objective a model was pretrained with, free of its family (the ALBERT paper's
# Table 5 trains BERT-style models with SOP and vice versa): "none" is MLM alone.
SENTENCE_OBJECTIVES: tuple[str, ...] = ("none", "nsp", "sop")
# The config.json key that records it (transformers keeps unknown keys and ignores them).
SENTENCE_OBJECTIVE_KEY = "bertscope_sentence_objective"

SHARING_MODES: tuple[str, ...] = ("all", "attention", "ffn", "none")
ACTIVATIONS: tuple[str, ...] = (
    "gelu",
    "gelu_new",
    "gelu_fast",
    "gelu_pytorch_tanh",
    "relu",
    "silu",
    "swish",
    "tanh",
)


@dataclass(frozen=True)
class ModelConfig:
    model_type: ModelType = "bert"  # which family: "bert" or "albert"
    vocab_size: int = 30522  # rows of the word-embedding table
    hidden_size: int = 768  # H: width of every encoder layer
    num_hidden_layers: int = 12  # L: encoder layers (ALBERT: outer layers, see inner_group_num)
    num_attention_heads: int = 12  # A: heads per layer; H must divide by A
    intermediate_size: int = 3072  # feed-forward width, 4H in both papers
    hidden_act: str = "gelu"  # feed-forward activation (ALBERT checkpoints use "gelu_new")
    hidden_dropout_prob: float = 0.1  # dropout after embeddings and every sub-layer
    attention_probs_dropout_prob: float = 0.1  # dropout on the attention probabilities
    max_position_embeddings: int = 512  # longest sequence, special tokens included
    type_vocab_size: int = 2  # segment (token type) embeddings: A and B
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon, as in the original TF code
    pad_token_id: int = 0  # id whose positions get no attention when padded
    initializer_range: float = 0.02  # std of the truncated-normal init used for training
    # ALBERT only ---------------------------------------------------------------------------
    embedding_size: int | None = None  # E: factorized embedding width (None for BERT: E = H)
    num_hidden_groups: int = 1  # groups of layers with separate parameters
    inner_group_num: int = 1  # layers inside a group, run one after another on each use
    sharing: Sharing = "all"  # ALBERT ablation (paper Table 4): what is shared across layers
    classifier_dropout_prob: float = 0.1  # dropout before the SOP classifier
    # Anything else the checkpoint's config.json held, written back unchanged on save.
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        """E: the width of the embedding tables (H for BERT)."""
        return self.embedding_size if self.model_type == "albert" else self.hidden_size

    @property
    def effective_layers(self) -> int:
        """Transformer layers a token passes through: L x inner_group_num for ALBERT."""
        if self.model_type == "albert":
            return self.num_hidden_layers * self.inner_group_num
        return self.num_hidden_layers

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first inconsistent field."""
        if self.model_type not in ("bert", "albert"):
            raise ConfigError(
                f"unknown model_type {self.model_type!r}: BertScope supports 'bert' and 'albert'"
            )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "num_hidden_groups",
            "inner_group_num",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in (
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "classifier_dropout_prob",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"unsupported hidden_act {self.hidden_act!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        if not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id {self.pad_token_id!r} is outside the vocabulary (size {self.vocab_size})"
            )
        if self.sharing not in SHARING_MODES:
            raise ConfigError(
                f"unknown sharing {self.sharing!r}; expected one of {', '.join(SHARING_MODES)}"
            )
        if self.model_type == "bert":
            if self.embedding_size not in (None, self.hidden_size):
                raise ConfigError(
                    f"BERT has no factorized embeddings: embedding_size {self.embedding_size} "
                    f"must equal hidden_size {self.hidden_size} (or be absent)"
                )
            if self.num_hidden_groups != 1 or self.inner_group_num != 1 or self.sharing != "all":
                raise ConfigError(
                    "num_hidden_groups, inner_group_num and sharing are ALBERT settings; "
                    "a BERT config must leave them at 1, 1 and 'all'"
                )
            return
        if not isinstance(self.embedding_size, int) or self.embedding_size < 1:
            raise ConfigError(
                f"ALBERT needs a positive embedding_size, got {self.embedding_size!r}"
            )
        if self.num_hidden_layers % self.num_hidden_groups:
            raise ConfigError(
                f"num_hidden_groups {self.num_hidden_groups} does not divide "
                f"num_hidden_layers {self.num_hidden_layers}"
            )
        if self.sharing != "all" and (
            self.num_hidden_groups != self.num_hidden_layers or self.inner_group_num != 1
        ):
            raise ConfigError(
                f"sharing={self.sharing!r} keeps one parameter set per layer: it needs "
                f"num_hidden_groups == num_hidden_layers ({self.num_hidden_layers}) and "
                f"inner_group_num == 1 (use ModelConfig.with_sharing)"
            )

    # -- conversions -----------------------------------------------------------------------
    def with_sharing(self, sharing: str) -> ModelConfig:
        """The same ALBERT with another cross-layer sharing mode (paper Table 4 ablation)."""
        if self.model_type != "albert":
            raise ConfigError("cross-layer sharing is an ALBERT setting; BERT shares nothing")
        if sharing not in SHARING_MODES:
            raise ConfigError(
                f"unknown sharing {sharing!r}; expected one of {', '.join(SHARING_MODES)}"
            )
        groups = 1 if sharing == "all" else self.num_hidden_layers
        return self.replace(sharing=sharing, num_hidden_groups=groups, inner_group_num=1)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content; transformers reads it as BertConfig/AlbertConfig."""
        data = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            data[f.name] = getattr(self, f.name)
        if self.model_type == "bert":
            for name in (
                "embedding_size",
                "num_hidden_groups",
                "inner_group_num",
                "sharing",
                "classifier_dropout_prob",
            ):
                data.pop(name)
        data["architectures"] = data.get("architectures") or [
            "BertForPreTraining" if self.model_type == "bert" else "AlbertForPreTraining"
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if "model_type" not in data:
            raise ConfigError(f"{source}: no 'model_type' key (expected 'bert' or 'albert')")
        model_type = data["model_type"]
        if model_type not in ("bert", "albert"):
            raise ConfigError(
                f"{source}: unknown model_type {model_type!r}: BertScope supports 'bert' and 'albert'"
            )
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(
                f"{source}: position_embedding_type {data['position_embedding_type']!r} is not "
                "supported (only 'absolute', as in BERT and ALBERT)"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        defaults = {} if model_type == "bert" else ALBERT_DEFAULTS
        kwargs = {**defaults, **{k: v for k, v in data.items() if k in names}}
        if model_type == "bert":
            kwargs.pop("embedding_size", None)
        extra = {k: v for k, v in data.items() if k not in names}
        try:
            return cls(**kwargs, extra=extra)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        except TypeError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelConfig:
        """Read ``config.json`` (a file, or a folder that holds one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: malformed JSON ({err})") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` atomically (temporary file + rename)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Heads:
    """Which pre-training heads sit on the encoder.

    The checkpoint decides: a ``BertModel`` file has only the pooler, ``*ForMaskedLM`` only the
    MLM head, ``*ForPreTraining`` all three. Flags rather than a set of names, so a misspelt
    head is an AttributeError at the call site instead of a silent ``False``.
    """

    mlm: bool = False  # masked-LM head (decoder tied to the word embeddings)
    # The 2-class head on the pooler, named by the objective it was trained for: NSP or SOP,
    # in either family (the family only decides the module's weight names).
    sentence: SentenceHead | None = None
    pooler: bool = False  # tanh(dense) on [CLS]; the sentence head reads it

    def __post_init__(self) -> None:
        if self.sentence not in (None, "nsp", "sop"):
            raise ConfigError(f"unknown sentence head {self.sentence!r}; expected 'nsp' or 'sop'")
        if self.sentence is not None and not self.pooler:
            raise ConfigError(
                f"the {self.sentence.upper()} head reads the pooler output: it needs pooler=True"
            )

    @classmethod
    def pretraining(cls, model_type: str, objective: str | None = None) -> Heads:
        """The heads a pretraining run of ``objective`` (None: the family's own, NSP for BERT,
        SOP for ALBERT) trains: MLM, pooler and that sentence head, in the family's
        ``*ForPreTraining`` layout; "none" is MLM alone (``*ForMaskedLM``: no pooler)."""
        objective = objective or family_objective(model_type)
        if objective not in SENTENCE_OBJECTIVES:
            raise ConfigError(
                f"unknown sentence objective {objective!r}; expected one of "
                + ", ".join(SENTENCE_OBJECTIVES)
            )
        if objective == "none":
            return cls(mlm=True)
        return cls(mlm=True, sentence=objective, pooler=True)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Heads:
        """The inverse of :meth:`names` (e.g. a JSON export read back)."""
        names = set(names)
        unknown = names - {"mlm", "nsp", "sop", "pooler"}
        if unknown or {"nsp", "sop"} <= names:
            raise ConfigError(
                f"unknown head names {sorted(names)}: expected some of mlm, nsp or sop, pooler"
            )
        sentence = "nsp" if "nsp" in names else "sop" if "sop" in names else None
        return cls(mlm="mlm" in names, sentence=sentence, pooler="pooler" in names)

    def names(self) -> list[str]:
        """The heads present as sorted names, the stable form written to JSON and shown."""
        present = [("mlm", self.mlm), ("pooler", self.pooler)]
        if self.sentence is not None:
            present.append((self.sentence, True))
        return sorted(name for name, on in present if on)


def family_objective(model_type: str) -> str:
    """The family's own sentence objective: NSP for BERT, SOP for ALBERT."""
    return "nsp" if model_type == "bert" else "sop"


def sentence_objective(config: ModelConfig) -> str:
    """The objective ``config.json`` records under :data:`SENTENCE_OBJECTIVE_KEY`, else the
    family's own (a file from transformers or an earlier BertScope)."""
    recorded = config.extra.get(SENTENCE_OBJECTIVE_KEY)
    if recorded is None:
        return family_objective(config.model_type)
    if recorded not in SENTENCE_OBJECTIVES:
        raise ConfigError(
            f"config.json: unknown {SENTENCE_OBJECTIVE_KEY} {recorded!r}; expected one of "
            + ", ".join(SENTENCE_OBJECTIVES)
        )
    return recorded


# AlbertConfig's defaults where they differ from BertConfig's (used for fields a file omits).
ALBERT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 30000,
    "embedding_size": 128,
    "hidden_size": 4096,
    "num_attention_heads": 64,
    "intermediate_size": 16384,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


def _bert(hidden: int, layers: int, heads: int) -> ModelConfig:
    return ModelConfig(
        model_type="bert",
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
    )


def _albert(hidden: int, layers: int, heads: int, embedding: int) -> ModelConfig:
    return ModelConfig(
        model_type="albert",
        vocab_size=30000,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        hidden_act="gelu_new",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        embedding_size=embedding,
    )


PRESETS: dict[str, ModelConfig] = {
    # Paper sizes: BERT (Devlin et al. 2019), ALBERT (Lan et al. 2020, Table 1).
    "bert-base": _bert(768, 12, 12),
    "bert-large": _bert(1024, 24, 16),
    "albert-base": _albert(768, 12, 12, 128),
    "albert-large": _albert(1024, 24, 16, 128),
    "albert-xlarge": _albert(2048, 24, 16, 128),
    "albert-xxlarge": _albert(4096, 12, 64, 128),
    # Small trainable sizes (Turc et al. 2019); ALBERT variants keep the same L/H/A.
    "bert-tiny": _bert(128, 2, 2),
    "bert-mini": _bert(256, 4, 4),
    "bert-small": _bert(512, 4, 8),
    "albert-tiny": _albert(128, 2, 2, 64),
    "albert-mini": _albert(256, 4, 4, 128),
    "albert-small": _albert(512, 4, 8, 128),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A named preset, optionally with fields replaced (e.g. ``vocab_size``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[name]
    sharing = overrides.pop("sharing", None)
    if overrides:
        try:
            config = config.replace(**overrides)
        except TypeError as err:
            raise ConfigError(f"preset {name!r}: {err}") from None
    if sharing is not None and sharing != config.sharing:
        config = config.with_sharing(sharing)
    return config
