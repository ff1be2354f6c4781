"""The data settings of a run: sequence length, sentence task and masking rates, checked once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError

# "none": in-order pairs only (label 0), for a model trained on MLM alone.
TASKS = ("nsp", "sop", "none")


@dataclass(frozen=True)
class DataConfig:
    seq_len: int = 128  # longest sequence, [CLS] A [SEP] B [SEP] included
    task: str = "nsp"  # sentence task: "nsp", "sop" or "none", in either family
    short_seq_prob: float = 0.1  # chance that a sequence gets a random shorter target length
    mlm_probability: float = 0.15  # share of non-special positions the model must predict
    mask_token_prob: float = 0.8  # of those: replaced by the mask token ...
    random_token_prob: float = 0.1  # ... by a random token (the rest stay unchanged)
    max_predictions: int | None = None  # cap per sequence; None: round(0.15 * seq_len) + 1
    max_ngram: int = 1  # ALBERT: spans of up to 3 words, p(n) proportional to 1/n
    whole_word: bool = False  # mask all pieces of a word together
    shuffle_buffer: int = 1000  # examples mixed across documents before batching

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(
                f"unknown sentence task {self.task!r}; expected 'nsp', 'sop' or 'none'"
            )
        if not isinstance(self.seq_len, int) or self.seq_len < 8:
            raise InputError(f"sequence length must be an integer >= 8, got {self.seq_len!r}")
        for name in ("short_seq_prob", "mlm_probability", "mask_token_prob", "random_token_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value!r}")
        if self.mask_token_prob + self.random_token_prob > 1.0:
            raise InputError("mask_token_prob + random_token_prob must not exceed 1")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise InputError(f"max_predictions must be >= 1, got {self.max_predictions!r}")
        if not 1 <= self.max_ngram <= 10:
            raise InputError(f"max_ngram must be in 1..10, got {self.max_ngram!r}")

    @classmethod
    def for_model(
        cls, model_type: str, seq_len: int = 128, task: str | None = None, **changes
    ) -> DataConfig:
        """BERT: single-token masking; ALBERT: whole-word n-gram masking. The sentence task
        is ``task``, by default the family's own (NSP for BERT, SOP for ALBERT)."""
        if model_type == "bert":
            return cls(
                seq_len=seq_len, task=task or "nsp", max_ngram=1, whole_word=False, **changes
            )
        if model_type == "albert":
            return cls(seq_len=seq_len, task=task or "sop", max_ngram=3, whole_word=True, **changes)
        raise InputError(f"unknown model type {model_type!r}; expected 'bert' or 'albert'")

    @property
    def predictions_cap(self) -> int:
        if self.max_predictions is not None:
            return self.max_predictions
        return round(self.mlm_probability * self.seq_len) + 1  # 20 at 128, as in BERT

    @property
    def ngram_probs(self) -> np.ndarray:
        """p(n) for n = 1..max_ngram, proportional to 1/n (ALBERT's n-gram masking)."""
        inv = 1.0 / np.arange(1, self.max_ngram + 1)
        return inv / inv.sum()
