"""Every model scored on every sentence task (the ALBERT paper's Table 5 grid): zero-shot
through its own sentence head, and a frozen-feature linear probe on the pooled output ([CLS]'s
last hidden state for a model without a pooler), so an MLM-only model has a row too.

Zero-shot maps the head's coherent class onto the task's: NSP's "is next" and SOP's "in
order" are both class 0 (as the training data labels them), and class 0 is the coherent pair
of every task, so an NSP head predicts SOP's "in order" where it says "is next". The probe is a
logistic regression on standardised features, full-batch gradient descent for a fixed number of
iterations from zero weights: the same features give the same accuracy, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from core.data.corpus_cache import TokenizedCorpus
from core.data.sentence_tasks import EVAL_TASK_SEED, SENTENCE_TASKS, build_sentence_task
from core.errors import InputError
from core.loaded_model import LoadedModel

# The class each sentence head gives a coherent pair (transformers' label 0 for both).
COHERENT_CLASS = {"nsp": 0, "sop": 0}
PROBE_ITERATIONS = 500
PROBE_LR = 0.5
PROBE_L2 = 1e-3


@dataclass(frozen=True)
class SentenceTaskScore:
    """One model on one task: accuracies in [0, 1] over ``n_test`` held-out pairs."""

    task: str
    head: str | None  # the model's sentence head ("nsp"/"sop"), None without one
    zero_shot: float | None  # the head's accuracy through COHERENT_CLASS; None without a head
    probe: float  # the linear probe's, trained on ``n_train`` other pairs of the task
    n_train: int
    n_test: int

    def to_dict(self) -> dict:
        return asdict(self)


def fit_linear_probe(
    features: np.ndarray, labels: np.ndarray, iterations: int = PROBE_ITERATIONS
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Logistic-regression weights, bias and the standardisation (mean, scale) for
    ``features`` (n, d) and 0/1 ``labels``; deterministic (no sampling, zero start)."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad = p - y
        w -= PROBE_LR * (z.T @ grad / len(y) + PROBE_L2 * w)
        b -= PROBE_LR * float(grad.mean())
    return w, b, mean, scale


def probe_accuracy(probe: tuple, features: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a :func:`fit_linear_probe` result on other features."""
    w, b, mean, scale = probe
    z = (np.asarray(features, np.float64) - mean) / scale
    return float(np.mean(((z @ w + b) > 0).astype(np.int64) == labels))


def zero_shot_accuracy(head: str, logits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a sentence head's argmax on a task: coherent where it predicts its
    COHERENT_CLASS, the task's label 0."""
    coherent = np.asarray(logits).argmax(-1) == COHERENT_CLASS[head]
    return float(np.mean(coherent == (np.asarray(labels) == 0)))


@torch.no_grad()
def pair_outputs(
    loaded: LoadedModel, corpus: TokenizedCorpus, task_set, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pooled (or [CLS]) features (n, H) and the sentence head's logits (n, 2) or None."""
    tok = loaded.tokenizer
    cls, sep, pad = tok.token_id("cls"), tok.token_id("sep"), tok.token_id("pad")
    head = loaded.heads.sentence
    features, logits = [], []
    model, device = loaded.model, loaded.device
    model.eval()
    for lo in range(0, len(task_set), batch_size):
        rows, types = [], []
        hi = lo + batch_size
        for a, b in zip(task_set.a[lo:hi], task_set.b[lo:hi], strict=True):
            ta, tb = corpus.tokens[a[0] : a[1]].tolist(), corpus.tokens[b[0] : b[1]].tolist()
            rows.append([cls, *ta, sep, *tb, sep])
            types.append([0] * (len(ta) + 2) + [1] * (len(tb) + 1))
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        tt = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (r, t) in enumerate(zip(rows, types, strict=True)):
            ids[i, : len(r)] = torch.tensor(r)
            tt[i, : len(t)] = torch.tensor(t)
            mask[i, : len(r)] = 1
        out = model(ids.to(device), mask.to(device), tt.to(device))
        pooled = out.pooler_output if out.pooler_output is not None else out.hidden_states[-1][:, 0]
        features.append(pooled.float().cpu().numpy())
        if head is not None:
            logits.append(getattr(out, f"{head}_logits").float().cpu().numpy())
    return np.concatenate(features), (np.concatenate(logits) if head is not None else None)


def score_sentence_tasks(
    loaded: LoadedModel,
    corpus: TokenizedCorpus,
    tasks: tuple[str, ...] = SENTENCE_TASKS,
    n_train: int = 256,
    n_test: int = 256,
    seq_len: int = 128,
    seed: int = EVAL_TASK_SEED,
    min_distance: int = 3,
    batch_size: int = 32,
) -> list[SentenceTaskScore]:
    """Each task's zero-shot and linear-probe accuracy: one set of ``n_train + n_test``
    pairs per task (built from ``corpus`` under ``seed``), the probe fitted on its first
    ``n_train`` and everything scored on the rest. Tasks are checked before any forward pass."""
    unknown = [t for t in tasks if t not in SENTENCE_TASKS]
    if unknown:
        raise InputError(
            f"unknown sentence task {unknown[0]!r}; choose {', '.join(SENTENCE_TASKS)}"
        )
    if n_train < 2 or n_test < 2:
        raise InputError(f"the probe needs >= 2 training and test pairs, got {n_train}, {n_test}")
    sets = {
        t: build_sentence_task(corpus, t, n_train + n_test, seq_len, seed, min_distance)
        for t in tasks
    }
    scores = []
    for task, task_set in sets.items():
        features, logits = pair_outputs(loaded, corpus, task_set, batch_size)
        split = min(n_train, len(task_set) // 2)
        labels = task_set.labels
        fitted = fit_linear_probe(features[:split], labels[:split])
        head = loaded.heads.sentence
        scores.append(
            SentenceTaskScore(
                task=task,
                head=head,
                zero_shot=None
                if logits is None
                else zero_shot_accuracy(head, logits[split:], labels[split:]),
                probe=probe_accuracy(fitted, features[split:], labels[split:]),
                n_train=split,
                n_test=len(labels) - split,
            )
        )
    return scores


def score_sentence_files(
    loaded: LoadedModel, files: list, tasks: tuple[str, ...] = SENTENCE_TASKS, **settings
) -> list[SentenceTaskScore]:
    """:func:`score_sentence_tasks` on text files (``python -m core eval --task``)."""
    from core.data import check_corpus

    corpus = TokenizedCorpus.build(check_corpus(files), loaded.tokenizer)
    return score_sentence_tasks(loaded, corpus, tasks, **settings)
