"""Head importance (Michel et al. 2019) against a finite-difference estimate per sequence, the
shared-layer importance of ALBERT as the gradient of one gate used at every depth, and the
pruning curve, whose 0% point is ``evaluate_model``'s (``python -m core eval``) figure."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from core import load_model
from core.analysis.importance import head_importance, held_out_batches, pruning_curve
from core.data import Batch
from core.errors import InputError
from core.training.setup import evaluate_model
from tests.tiny_models import WORDS, engine_checkpoint, tiny_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    words = [w for w in WORDS if w.isalpha()]
    docs = [
        "\n".join(" ".join(rng.choice(words) for _ in range(9)) + " ." for _ in range(6))
        for _ in range(4)
    ]
    path = tmp_path_factory.mktemp("c") / "heldout.txt"
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = engine_checkpoint(
        tmp_path_factory.mktemp("m") / "bert", tiny_config("bert", initializer_range=0.2), seed=7
    )
    return load_model(folder, device="cpu")


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    config = tiny_config("albert", num_hidden_layers=3, initializer_range=0.2)
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "albert", config, seed=8)
    return load_model(folder, device="cpu")


def one(batch: Batch, b: int) -> Batch:
    """Sequence ``b`` of ``batch`` as a batch of its own."""
    rows = batch.mlm_positions.flatten().nonzero()[:, 0] // batch.input_ids.shape[1]
    keep = rows == b
    return Batch(
        input_ids=batch.input_ids[b : b + 1],
        token_type_ids=batch.token_type_ids[b : b + 1],
        attention_mask=None if batch.attention_mask is None else batch.attention_mask[b : b + 1],
        mlm_positions=batch.mlm_positions[b : b + 1],
        mlm_labels=batch.mlm_labels[keep],
        sentence_labels=batch.sentence_labels[b : b + 1],
        n_tokens=0,
        n_masked=int(keep.sum()),
    )


def loss_with_gates(model, batch, gates):
    from core.analysis.importance import _per_sequence_loss

    with torch.no_grad():
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
            mlm_positions=batch.mlm_positions,
            head_mask=gates,
        )
        return float(_per_sequence_loss(out, batch).sum())


def finite_difference(loaded, batches, depths_of, eps=1e-5):
    """E_x |(L(ξ + ε) − L(ξ − ε)) / 2ε| for each (depth, head); ``depths_of(d)`` the depths one
    gate moves. In float64."""
    model = loaded.model.double()
    L, nh = loaded.config.effective_layers, loaded.config.num_attention_heads
    total, n = np.zeros((L, nh)), 0
    try:
        for batch in batches:
            for b in range(batch.input_ids.shape[0]):
                seq = one(batch, b)
                for d in range(L):
                    for h in range(nh):
                        up = torch.ones(L, nh, dtype=torch.float64)
                        down = up.clone()
                        up[depths_of(d), h] += eps
                        down[depths_of(d), h] -= eps
                        diff = loss_with_gates(model, seq, up) - loss_with_gates(model, seq, down)
                        total[d, h] += abs(diff / (2 * eps))
                n += 1
    finally:
        loaded.model.float()
    return total / n


def test_importance_equals_finite_differences_bert(bert, corpus):
    batches = held_out_batches(bert, [corpus], n_sequences=3, seq_len=32, batch_size=2, seed=1)
    bert.model.double()
    try:
        imp = head_importance(bert, batches)
    finally:
        bert.model.float()
    fd = finite_difference(bert, batches, lambda d: [d])
    assert imp.n_sequences == 3
    np.testing.assert_allclose(imp.raw, fd, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(imp.normalized, axis=-1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(imp.shared_raw, imp.raw)  # BERT: nothing shared


def test_albert_shared_importance_is_one_gate_at_every_depth(albert, corpus):
    batches = held_out_batches(albert, [corpus], n_sequences=2, seq_len=32, batch_size=2, seed=2)
    albert.model.double()
    try:
        imp = head_importance(albert, batches)
    finally:
        albert.model.float()
    fd = finite_difference(albert, batches, lambda d: [0, 1, 2])
    np.testing.assert_allclose(imp.shared_raw, fd, rtol=1e-6, atol=1e-10)
    assert not np.allclose(imp.shared_raw, imp.raw)


def test_pruning_curve_starts_at_eval(bert, corpus):
    batches = held_out_batches(bert, [corpus], n_sequences=8, seq_len=32, batch_size=4, seed=3)
    imp = head_importance(bert, batches)
    curve = pruning_curve(bert, batches, imp)
    metrics = evaluate_model(bert, [corpus], seq_len=32, batch_size=4, max_examples=8, seed=3)
    assert curve.accuracy[0] == metrics.mlm_accuracy
    assert curve.perplexity[0] == metrics.perplexity
    assert curve.removed[0] == 0 and curve.removed[-1] == 8
    assert np.all(np.diff(curve.removed) > 0)
    assert curve.fractions[-1] == 1.0


def test_albert_shared_pruning_removes_every_depth(albert, corpus):
    batches = held_out_batches(albert, [corpus], n_sequences=4, seq_len=32, batch_size=4, seed=4)
    imp = head_importance(albert, batches)
    curve = pruning_curve(albert, batches, imp, shared=True)
    assert set(np.asarray(curve.removed) % 3) == {0}  # a shared head is 3 effective heads
    assert curve.removed[-1] == 12


def test_bad_settings(bert, corpus):
    with pytest.raises(InputError, match="--sequences must be >= 1"):
        held_out_batches(bert, [corpus], n_sequences=0)
    with pytest.raises(InputError, match="--seq-len 128 is longer"):
        held_out_batches(bert, [corpus], seq_len=128)
