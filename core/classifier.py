"""Sequence classification heads, as transformers' ``BertForSequenceClassification`` and
``AlbertForSequenceClassification`` have them: dropout, then one linear layer on the pooled
[CLS] output. Weight names (``classifier.weight``/``classifier.bias``) and ``config.json``
fields (``num_labels``, ``id2label``, ``label2id``, ``problem_type``) are theirs, so a folder
saved here loads in ``AutoModelForSequenceClassification`` and one saved there loads here
(``core.loaded_model`` reads and writes the head).

The head sits beside the encoder in :class:`~core.loaded_model.LoadedModel` (``classifier``)
rather than inside it, so a fine-tuned model still probes like any other;
:class:`SequenceClassifier` joins the two into the one module training differentiates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.config import Heads, ModelConfig
from core.errors import ConfigError, InputError

SINGLE_LABEL = "single_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (SINGLE_LABEL, REGRESSION)
HEAD_KEYS = ("classifier.weight", "classifier.bias")


@dataclass(frozen=True)
class LabelSet:
    """What the head's outputs mean: class names by id, or one regression score."""

    labels: tuple[str, ...]
    problem_type: str = SINGLE_LABEL

    def __post_init__(self) -> None:
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"problem_type {self.problem_type!r}: expected one of {', '.join(PROBLEM_TYPES)}"
            )
        if self.problem_type == REGRESSION and len(self.labels) != 1:
            raise ConfigError(f"a regression head has one output, not {len(self.labels)}")
        if self.problem_type == SINGLE_LABEL and len(self.labels) < 2:
            raise ConfigError("a classification head needs at least two labels")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels repeat: {list(self.labels)}")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @classmethod
    def regression(cls) -> LabelSet:
        return cls(("LABEL_0",), REGRESSION)

    def config_fields(self) -> dict:
        """The ``config.json`` fields transformers' ``PretrainedConfig`` reads."""
        return {
            "num_labels": self.num_labels,
            "id2label": {str(i): name for i, name in enumerate(self.labels)},
            "label2id": {name: i for i, name in enumerate(self.labels)},
            "problem_type": self.problem_type,
        }

    @classmethod
    def from_config(cls, extra: dict, num_outputs: int, source: str) -> LabelSet:
        """The labels of a saved head with ``num_outputs`` outputs; transformers' rule when
        ``problem_type`` is absent (one output: regression)."""
        id2label = extra.get("id2label") or {}
        try:
            names = {int(k): str(v) for k, v in id2label.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"{source}: id2label must map class ids to names") from None
        if names and sorted(names) != list(range(num_outputs)):
            raise ConfigError(
                f"{source}: id2label has {len(names)} labels but the classifier has "
                f"{num_outputs} outputs"
            )
        labels = tuple(names.get(i, f"LABEL_{i}") for i in range(num_outputs))
        problem = extra.get("problem_type") or (REGRESSION if num_outputs == 1 else SINGLE_LABEL)
        if problem not in PROBLEM_TYPES:
            raise ConfigError(
                f"{source}: problem_type {problem!r} is not supported "
                f"(expected one of {', '.join(PROBLEM_TYPES)})"
            )
        return cls(labels, problem)


def head_dropout(config: ModelConfig) -> float:
    """The dropout transformers puts before the classifier: ALBERT's
    ``classifier_dropout_prob``; BERT's ``classifier_dropout``, else ``hidden_dropout_prob``."""
    if config.model_type == "albert":
        return config.classifier_dropout_prob
    chosen = config.extra.get("classifier_dropout")
    return config.hidden_dropout_prob if chosen is None else float(chosen)


class ClassificationHead(nn.Module):
    """Dropout, then ``classifier`` (H -> num_labels), on the pooled output (B, H)."""

    def __init__(self, config: ModelConfig, labels: LabelSet):
        super().__init__()
        self.labels = labels
        self.dropout = nn.Dropout(head_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, labels.num_labels)

    def init_weights(self, std: float) -> None:
        """transformers' initialisation of a new head: N(0, std) weight, zero bias."""
        nn.init.normal_(self.classifier.weight, mean=0.0, std=std)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))  # (B, num_labels)


class SequenceClassifier(nn.Module):
    """Encoder (with its pooler) and head as one module: ``forward`` returns the logits
    (B, num_labels); its parameters are the encoder's and the head's, shared, not copied."""

    def __init__(self, encoder: nn.Module, head: ClassificationHead):
        super().__init__()
        if encoder.pooler is None:
            raise ConfigError("a classification head reads the pooler output: the model has none")
        self.encoder = encoder
        self.head = head

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return self.head(out.pooler_output)


def head_from_state(
    state: dict[str, torch.Tensor], config: ModelConfig, source: str
) -> ClassificationHead:
    """A head holding a checkpoint's ``classifier.*`` tensors, labelled from its config."""
    missing = [k for k in HEAD_KEYS if k not in state]
    if missing:
        raise ConfigError(f"{source}: classifier weights incomplete: {', '.join(missing)} missing")
    weight, bias = state["classifier.weight"], state["classifier.bias"]
    if weight.ndim != 2 or weight.shape[1] != config.hidden_size or bias.shape != weight.shape[:1]:
        raise ConfigError(
            f"{source}: classifier.weight {tuple(weight.shape)} / classifier.bias "
            f"{tuple(bias.shape)} do not fit hidden_size {config.hidden_size}"
        )
    head = ClassificationHead(config, LabelSet.from_config(config.extra, weight.shape[0], source))
    with torch.no_grad():
        head.classifier.weight.copy_(weight)
        head.classifier.bias.copy_(bias)
    return head.eval()


def with_classifier(loaded, labels: LabelSet, seed: int = 0, new_head: bool = False):
    """``loaded`` (any BERT/ALBERT :class:`~core.loaded_model.LoadedModel`) ready to fine-tune
    for ``labels``: the encoder without pre-training heads (a pooler initialised if it had
    none, as transformers does) and a freshly initialised head, or the model's own head when it
    already has one for the same labels. Its tensors are copies: ``loaded`` is unchanged.

    A model whose head has another number of outputs is refused unless ``new_head``."""
    from core.loaded_model import LoadedModel, build_model

    config = loaded.config
    old = loaded.classifier
    if old is not None and not new_head and old.labels.num_labels != labels.num_labels:
        raise ConfigError(
            f"{loaded.name} already has a classifier head with {old.labels.num_labels} "
            f"outputs but the task has {labels.num_labels} (num_labels); pass --new-head "
            "(new_head=True) to replace it"
        )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        encoder = build_model(config, Heads(pooler=True))
        encoder.init_weights()
        head = ClassificationHead(config, labels)
        head.init_weights(config.initializer_range)
    finally:
        torch.random.set_rng_state(generator_state)
    source = loaded.model.state_dict()
    kept = {k: v for k, v in source.items() if k in encoder.state_dict()}
    encoder.load_state_dict(kept, strict=False)
    if old is not None and not new_head:
        head.load_state_dict(old.state_dict())
    encoder.to(loaded.device)
    head.to(loaded.device)
    return LoadedModel(
        config=config,
        model=encoder.eval(),
        tokenizer=loaded.tokenizer,
        name=loaded.name,
        path=loaded.path,
        classifier=head.eval(),
    )


@dataclass(frozen=True)
class Prediction:
    """A classifier's outputs for N inputs: logits (N, num_labels); ``probabilities`` (N,
    num_labels) are their softmax for a classification head, None for a regression one."""

    labels: tuple[str, ...]
    logits: np.ndarray
    probabilities: np.ndarray | None

    def table_rows(self) -> list[dict]:
        if self.probabilities is None:
            return [{"score": float(row[0])} for row in self.logits]
        return [
            {name: float(p) for name, p in zip(self.labels, row, strict=True)}
            for row in self.probabilities
        ]


@torch.no_grad()
def predict(loaded, texts: list[str], pairs: list[str] | None = None) -> Prediction:
    """Run ``loaded``'s classifier on each text (and its pair), one unpadded pass each."""
    head = loaded.classifier
    if head is None:
        raise InputError(f"{loaded.name} has no classifier head: fine-tune it first")
    if pairs is not None:
        check_pair_support(loaded.config, loaded.name)
        if len(pairs) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(pairs)} pairs")
    model = SequenceClassifier(loaded.model, head).eval()
    rows = []
    for i, text in enumerate(texts):
        enc = loaded.encode(text, pairs[i] if pairs is not None else None)
        rows.append(model(**enc.tensors(loaded.device)).float().cpu()[0])
    logits = torch.stack(rows) if rows else torch.zeros(0, head.labels.num_labels)
    probs = None if head.labels.problem_type == REGRESSION else logits.softmax(-1).numpy()
    return Prediction(head.labels.labels, logits.numpy(), probs)


def check_pair_support(config: ModelConfig, name: str) -> None:
    """A sentence pair needs a second segment embedding."""
    if config.type_vocab_size < 2:
        raise InputError(
            f"{name} has no segment embeddings for a second text (type_vocab_size "
            f"{config.type_vocab_size}): drop the pair column"
        )
