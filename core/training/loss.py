"""The pretraining loss, written once: masked-LM cross-entropy on the masked positions plus
the sentence task's (NSP for BERT, SOP for ALBERT), as in Devlin et al. 2019 and Lan et al.
2020. The trainer, the held-out evaluation and the cost module's training-memory measurement
all call :func:`pretraining_loss`.

Normalisation: the MLM term is the *summed* cross-entropy over the masked positions divided by
``mlm_count``, the sentence term the summed cross-entropy over the sequences divided by
``sentence_count``. By default the counts are the batch's own (a plain mean); the trainer
passes the counts of the whole optimizer step over every micro-batch and process, so that
accumulation and DistributedDataParallel give exactly the update of one big batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from core.precision import autocast


class PretrainingBatch(Protocol):
    """What the loss reads from a batch (``core.data.Batch`` and the cost module's synthetic
    batch both fit)."""

    input_ids: torch.Tensor  # (B, T)
    token_type_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor | None  # (B, T), 0 on padding; None: no padding
    mlm_positions: torch.Tensor  # (B, T) bool
    mlm_labels: torch.Tensor  # (N,) targets of the masked positions, row-major
    sentence_labels: torch.Tensor  # (B,) NSP/SOP labels


@dataclass(frozen=True)
class Losses:
    """One forward pass's losses. ``loss`` is what backward runs on (None if the model has no
    pretraining head); the sums are float32 tensors that keep their graph."""

    loss: torch.Tensor | None  # mlm_sum / mlm_count + sentence_sum / sentence_count
    mlm_sum: torch.Tensor | None  # summed CE over masked positions; None without MLM head
    sentence_sum: torch.Tensor | None  # summed NSP/SOP CE; None without that head
    mlm_logits: torch.Tensor | None  # (N, V) float32, for accuracies
    sentence_logits: torch.Tensor | None  # (B, 2) float32
    output: object  # the model's output (hidden states etc.)


def sentence_logits(out) -> torch.Tensor | None:
    """The NSP (BERT) or SOP (ALBERT) logits of a model output, whichever it has."""
    return out.nsp_logits if out.nsp_logits is not None else out.sop_logits


def pretraining_loss(
    model: nn.Module,
    batch: PretrainingBatch,
    precision: str = "fp32",
    mlm_count: int | None = None,
    sentence_count: int | None = None,
) -> Losses:
    """Forward ``batch`` through ``model`` (under ``precision``'s autocast; only the masked
    positions are decoded) and compute the pretraining loss in float32."""
    with autocast(batch.input_ids.device, precision):
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
            mlm_positions=batch.mlm_positions,
        )
    loss = None
    mlm_logits = mlm_sum = sent_sum = None
    if out.mlm_logits is not None:
        mlm_logits = out.mlm_logits.float()
        mlm_sum = F.cross_entropy(mlm_logits, batch.mlm_labels, reduction="sum")
        loss = mlm_sum / (batch.mlm_labels.numel() if mlm_count is None else mlm_count)
    sent = sentence_logits(out)
    if sent is not None:
        sent = sent.float()
        sent_sum = F.cross_entropy(sent, batch.sentence_labels, reduction="sum")
        n_seq = batch.input_ids.shape[0] if sentence_count is None else sentence_count
        loss = sent_sum / n_seq if loss is None else loss + sent_sum / n_seq
    return Losses(loss, mlm_sum, sent_sum, mlm_logits, sent, out)
