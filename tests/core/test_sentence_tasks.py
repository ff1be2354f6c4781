"""The NSP / SOP / hard-NSP evaluation sets and their scoring: each set has its stated
construction, 50/50 labels and is the same under the same seed; the linear probe is
deterministic and separates a linearly separable toy set perfectly; an NSP head's "is next"
reads as SOP's "in order" on a hand-made head whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.cli import main
from core.data import TokenizedCorpus
from core.data.sentence_tasks import build_sentence_task
from core.errors import InputError
from core.loaded_model import LoadedModel, build_model
from core.training.sentence_eval import (
    fit_linear_probe,
    probe_accuracy,
    score_sentence_tasks,
    zero_shot_accuracy,
)
from tests.core.training_text import counting_tokenizer, write_counting_corpus
from tests.tiny_models import WORDS, engine_checkpoint, tiny_config

FIELDS = ("a", "b", "labels", "a_doc", "b_doc", "a_end", "b_start")


@pytest.fixture
def counting(tmp_path):
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(3, 9, size=12)) for _ in range(6)]
    n = write_counting_corpus(tmp_path / "c.txt", docs)
    tok = counting_tokenizer(n)
    return TokenizedCorpus.build([tmp_path / "c.txt"], tok), tok


@pytest.mark.parametrize("task", ["nsp", "sop", "hard-nsp"])
def test_each_set_has_its_construction_half_each_label_and_is_deterministic(counting, task):
    corpus, _ = counting
    s = build_sentence_task(corpus, task, 40, seq_len=40, seed=7, min_distance=3)
    assert len(s) == 40 and s.labels.sum() == 20
    again = build_sentence_task(corpus, task, 40, seq_len=40, seed=7, min_distance=3)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(s, name), getattr(again, name))
    other = build_sentence_task(corpus, task, 40, seq_len=40, seed=8, min_distance=3)
    assert any(not np.array_equal(getattr(s, n), getattr(other, n)) for n in FIELDS)
    for i in range(len(s)):
        (a0, a1), (b0, b1) = s.a[i], s.b[i]
        assert a1 > a0 and b1 > b0 and (a1 - a0) + (b1 - b0) <= 37
        if s.labels[i] == 0:
            assert b0 == a1 and s.a_doc[i] == s.b_doc[i]  # B is the text right after A
        elif task == "nsp":
            assert s.b_doc[i] != s.a_doc[i]  # every negative from another document
        elif task == "sop":
            assert a0 == b1 and s.a_doc[i] == s.b_doc[i]  # swapped: A is the text after B
        else:  # the same document, >= 3 sentences from A, never overlapping it
            assert s.b_doc[i] == s.a_doc[i]
            first_a = int(np.searchsorted(corpus.sentence_offsets, a0, side="right") - 1)
            assert s.b_start[i] - (s.a_end[i] - 1) >= 3 or first_a - s.b_start[i] >= 3
            assert b1 <= a0 or b0 >= a1


def test_a_task_that_cannot_be_built_is_one_line(tmp_path):
    n = write_counting_corpus(tmp_path / "one.txt", [[4, 5, 6]])
    corpus = TokenizedCorpus.build([tmp_path / "one.txt"], counting_tokenizer(n))
    with pytest.raises(InputError, match=r"NSP evaluation needs at least 2 documents.* has 1$"):
        build_sentence_task(corpus, "nsp", 10)
    with pytest.raises(InputError, match="HARD-NSP evaluation needs documents of at least 5"):
        build_sentence_task(corpus, "hard-nsp", 10, min_distance=3)
    with pytest.raises(InputError, match="unknown sentence task 'qa'"):
        build_sentence_task(corpus, "qa", 10)


def test_the_probe_is_deterministic_and_separates_a_separable_set():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    margin = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) - 0.2
    x, margin = x[np.abs(margin) > 0.5], margin[np.abs(margin) > 0.5]  # separable, a margin
    y = (margin > 0).astype(np.int64)
    first, second = fit_linear_probe(x, y), fit_linear_probe(x, y)
    for p, q in zip(first, second, strict=True):
        np.testing.assert_array_equal(p, q)
    assert probe_accuracy(first, x, y) == 1.0


def test_an_nsp_heads_is_next_reads_as_sops_in_order():
    # A hand-made head's logits: class 0 ("is next") on the first and third pair.
    logits = np.array([[2.0, -1.0], [-1.0, 3.0], [0.5, 0.1], [0.0, 1.0]])
    in_order = np.array([0, 1, 0, 1])  # SOP labels: 0 in order, 1 swapped
    assert zero_shot_accuracy("nsp", logits, in_order) == 1.0
    assert zero_shot_accuracy("nsp", logits, 1 - in_order) == 0.0
    assert zero_shot_accuracy("sop", logits, np.array([0, 0, 0, 1])) == 0.75


def test_a_hand_made_nsp_head_scores_sop_through_the_mapping(counting):
    """A BERT whose NSP head is its bias alone, "is next" for every pair: on SOP it is right
    exactly on the in-order pairs of the test half."""
    corpus, tok = counting
    config = tiny_config("bert", vocab_size=tok.vocab_size, max_position_embeddings=64)
    torch.manual_seed(0)
    model = build_model(config)
    model.init_weights()
    head = model.cls.seq_relationship
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([1.0, -1.0]))
    loaded = LoadedModel(config, model.eval(), tok, "hand-made")
    (score,) = score_sentence_tasks(loaded, corpus, ("sop",), n_train=20, n_test=20, seq_len=40)
    labels = build_sentence_task(corpus, "sop", 40, seq_len=40).labels
    assert score.head == "nsp"
    assert score.zero_shot == float(np.mean(labels[20:] == 0))
    assert 0.0 <= score.probe <= 1.0 and (score.n_train, score.n_test) == (20, 20)


def _text(path, n_docs: int, n_sentences: int = 8):
    rng = np.random.default_rng(n_docs)
    words = [w for w in WORDS if w.isalpha()]
    docs = [
        "\n".join(" ".join(rng.choice(words, size=6)) + " ." for _ in range(n_sentences))
        for _ in range(n_docs)
    ]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def test_eval_task_all_scores_every_task_and_refuses_what_cannot_be_built(tmp_path, capsys):
    folder = engine_checkpoint(tmp_path / "m", tiny_config("bert"), seed=2)
    text = _text(tmp_path / "held.txt", n_docs=6)
    args = ["eval", str(folder), "--corpus", str(text), "--seq-len", "32", "--device", "cpu"]
    assert main([*args, "--task", "all", "--probe-examples", "8", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["sentence_tasks"]
    assert [s["task"] for s in scores] == ["nsp", "sop", "hard-nsp"]
    assert all(s["head"] == "nsp" and 0 <= s["zero_shot"] <= 1 for s in scores)
    assert all((s["n_train"], s["n_test"]) == (8, 8) for s in scores)
    assert main([*args, "--task", "sop", "--probe-examples", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --probe-examples must be >= 2, got 1"
    one = _text(tmp_path / "one.txt", n_docs=1)
    assert (
        main(["eval", str(folder), "--corpus", str(one), "--seq-len", "32", "--task", "nsp"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "needs at least 2 documents" in err and "\n" not in err
