"""Head importance and pruning curves (Michel et al. 2019, "Are sixteen heads really better than
one?", section 4).

Every head h carries a gate ξ_h = 1 (:class:`core.blocks.SelfAttention`); its importance is
I_h = E_x |∂L(x)/∂ξ_h|, the expected absolute change of a sequence's loss L(x) (its masked-LM
loss, the mean over its masked tokens, plus its NSP/SOP loss where the model has that head) if
the head were scaled away. The gradient is taken per sequence — each sequence gets its own
gates, so the absolute value is of one sequence's gradient, not of a batch's sum — and averaged
over held-out sequences. As the paper does, the scores are normalised per layer by their ℓ2
norm (section 4.2 found that essential for pruning across layers).

ALBERT: a head of a shared layer has one gate per depth; masking it in the shared layer moves
all of them, so its shared importance is E_x |Σ_depths ∂L(x)/∂ξ_{d,h}|, reported beside the
per-depth scores. For BERT the two coincide.

The pruning curve masks heads in increasing order of importance, 10% of them at a time, and
scores held-out MLM accuracy and perplexity with :func:`core.training.trainer.evaluate` (so its
0% point is ``python -m core eval``'s figure on the same sequences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    import torch

    from core.data import Batch
    from core.loaded_model import LoadedModel


@dataclass(frozen=True)
class HeadImportance:
    """I_h per effective depth and head, raw and normalised per layer; and per shared layer."""

    raw: np.ndarray  # (L_eff, heads) E_x |∂L/∂ξ_{d,h}|
    normalized: np.ndarray  # (L_eff, heads) each depth's row divided by its ℓ2 norm
    shared_raw: np.ndarray  # (L_eff, heads) E_x |Σ_{d' shares d} ∂L/∂ξ_{d',h}|, per depth's layer
    shared_normalized: np.ndarray  # (L_eff, heads)
    n_sequences: int

    def table_rows(self) -> list[dict]:
        L, nh = self.raw.shape
        return [
            {
                "layer": d + 1,
                "head": h + 1,
                "importance": float(self.normalized[d, h]),
                "raw": float(self.raw[d, h]),
                "shared_importance": float(self.shared_normalized[d, h]),
            }
            for d in range(L)
            for h in range(nh)
        ]


def held_out_batches(
    loaded: LoadedModel,
    corpus: list[str],
    n_sequences: int = 256,
    seq_len: int = 128,
    batch_size: int = 32,
    seed: int = 1234,
) -> list[Batch]:
    """The first ``n_sequences`` evaluation examples of ``corpus`` under ``seed``: the pairs
    and masks ``python -m core eval`` scores with the same settings."""
    from core.data import DataConfig, PretrainingData, TokenizedCorpus, check_corpus

    if n_sequences < 1:
        raise InputError(f"--sequences must be >= 1, got {n_sequences}")
    if seq_len > loaded.config.max_position_embeddings:
        raise InputError(
            f"--seq-len {seq_len} is longer than the model's "
            f"{loaded.config.max_position_embeddings} positions"
        )
    files = check_corpus(corpus)
    data_config = DataConfig.for_model(loaded.config.model_type, seq_len)
    tokenized = TokenizedCorpus.build(files, loaded.tokenizer)
    data = PretrainingData(tokenized, loaded.tokenizer, data_config, seed=seed)
    return list(data.eval_batches(batch_size, n_sequences, seed=seed))


def _per_sequence_loss(out, batch: Batch) -> torch.Tensor:
    """(B,) each sequence's MLM loss (mean over its masked tokens) plus its sentence loss."""
    import torch
    import torch.nn.functional as F

    B, T = batch.input_ids.shape
    dtype = torch.promote_types(out.hidden_states[-1].dtype, torch.float32)  # fp32 or fp64
    losses = torch.zeros(B, dtype=dtype, device=batch.input_ids.device)
    if out.mlm_logits is not None:
        if batch.mlm_positions.dtype == torch.bool:
            seq = batch.mlm_positions.nonzero()[:, 0]
        else:
            seq = batch.mlm_positions // T
        token_loss = F.cross_entropy(out.mlm_logits.to(dtype), batch.mlm_labels, reduction="none")
        keep = (batch.mlm_labels != -100).to(dtype)
        total = losses.index_add(0, seq, token_loss * keep)
        count = losses.index_add(0, seq, keep)
        losses = total / count.clamp(min=1.0)
    sentence = out.nsp_logits if out.nsp_logits is not None else out.sop_logits
    if sentence is not None:
        losses = losses + F.cross_entropy(
            sentence.to(dtype), batch.sentence_labels, reduction="none"
        )
    return losses


def _normalize(scores: np.ndarray) -> np.ndarray:
    norms = np.sqrt((scores**2).sum(axis=-1, keepdims=True))
    return scores / (norms + 1e-20)


def head_importance(
    loaded: LoadedModel,
    batches: list[Batch],
    on_progress: Callable[[int, int], None] | None = None,
) -> HeadImportance:
    """I_h over ``batches`` (see the module docstring); ``on_progress(done, total)`` after
    each batch."""
    import torch

    from core.analysis.ablation import depth_groups

    model = loaded.model
    model.eval()
    L, nh = loaded.config.effective_layers, loaded.config.num_attention_heads
    groups = depth_groups(loaded)
    per_depth = torch.zeros(L, nh, dtype=torch.float64)
    shared = torch.zeros(L, nh, dtype=torch.float64)
    n = 0
    for i, batch in enumerate(batches):
        b = batch.to(loaded.device)
        B = b.input_ids.shape[0]
        gates = torch.ones(L, B, nh, device=loaded.device, requires_grad=True)
        out = model(
            input_ids=b.input_ids,
            attention_mask=b.attention_mask,
            token_type_ids=b.token_type_ids,
            mlm_positions=b.mlm_positions,
            head_mask=gates,
        )
        (grad,) = torch.autograd.grad(_per_sequence_loss(out, b).sum(), gates)
        grad = grad.double().cpu()  # (L, B, nh): ∂L(x_b)/∂ξ_{d,h}
        per_depth += grad.abs().sum(1)
        summed = torch.stack([grad[g].sum(0) for g in groups])  # (L, B, nh)
        shared += summed.abs().sum(1)
        n += B
        if on_progress is not None:
            on_progress(i + 1, len(batches))
    if n == 0:
        raise InputError("head importance: the held-out data has no sequences")
    raw = (per_depth / n).numpy()
    shared_raw = (shared / n).numpy()
    return HeadImportance(
        raw=raw,
        normalized=_normalize(raw),
        shared_raw=shared_raw,
        shared_normalized=_normalize(shared_raw),
        n_sequences=n,
    )


@dataclass(frozen=True)
class PruningCurve:
    """Held-out MLM accuracy and perplexity as the least important heads are removed."""

    mode: str  # "depth" (each effective head on its own) or "shared" (ALBERT: a layer's head)
    fractions: np.ndarray  # (K,) share of the effective heads removed
    removed: np.ndarray  # (K,) effective heads removed
    accuracy: np.ndarray  # (K,) MLM accuracy
    perplexity: np.ndarray  # (K,)

    def table_rows(self) -> list[dict]:
        return [
            {
                "mode": self.mode,
                "fraction": float(f),
                "removed": int(r),
                "mlm_accuracy": float(a),
                "perplexity": float(p),
            }
            for f, r, a, p in zip(
                self.fractions, self.removed, self.accuracy, self.perplexity, strict=True
            )
        ]


class _Masked:
    """The model with fixed head gates, callable as the evaluation loop calls a model."""

    def __init__(self, model, gates):
        self.model = model
        self.gates = gates
        self.training = False

    def __call__(self, **inputs):
        return self.model(**inputs, head_mask=self.gates)

    def eval(self):
        self.model.eval()
        return self

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self


def pruning_curve(
    loaded: LoadedModel,
    batches: list[Batch],
    importance: HeadImportance,
    shared: bool = False,
    step: float = 0.1,
    on_progress: Callable[[int, int], None] | None = None,
) -> PruningCurve:
    """Mask heads in increasing order of (normalised) importance, ``step`` of them at a time,
    and evaluate each point. ``shared`` ranks and removes ALBERT's shared-layer heads (every
    depth at once) by their shared importance; otherwise each effective head on its own."""
    import torch

    from core.analysis.ablation import depth_groups
    from core.training.trainer import evaluate

    L, nh = importance.raw.shape
    if shared:
        groups = depth_groups(loaded)
        firsts = sorted({g[0] for g in groups})
        units = [(groups[d], h) for d in firsts for h in range(nh)]
        scores = [importance.shared_normalized[d, h] for d in firsts for h in range(nh)]
    else:
        units = [([d], h) for d in range(L) for h in range(nh)]
        scores = [importance.normalized[d, h] for d in range(L) for h in range(nh)]
    order = np.argsort(np.asarray(scores), kind="stable")
    counts = sorted({round(f * len(units)) for f in np.arange(0.0, 1.0 + 1e-9, step)})
    fractions, removed, accuracy, perplexity = [], [], [], []
    for i, k in enumerate(counts):
        gates = torch.ones(L, nh, device=loaded.device)
        for u in order[:k]:
            depths, h = units[u]
            gates[depths, h] = 0.0
        model = loaded.model if k == 0 else _Masked(loaded.model, gates)
        metrics = evaluate(model, batches, loaded.device)
        off = int((gates == 0).sum())
        fractions.append(off / (L * nh))
        removed.append(off)
        accuracy.append(metrics.mlm_accuracy)
        perplexity.append(metrics.perplexity)
        if on_progress is not None:
            on_progress(i + 1, len(counts))
    return PruningCurve(
        mode="shared" if shared else "depth",
        fractions=np.array(fractions),
        removed=np.array(removed, dtype=np.int64),
        accuracy=np.array(accuracy),
        perplexity=np.array(perplexity),
    )
