"""The sentence head's verdict on a pair (BERT's NSP, ALBERT's SOP): the probability equals a
softmax of the model's own logits, class 0 reads as "is next" / "in order", and it reaches the
exports and the CLI; one sentence, or a model without the head, shows none."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core import load_model
from core.analysis import probe
from core.analysis.summary import analyze
from core.config import Heads
from core.export import load_csv, load_json, write
from tests.tiny_models import engine_checkpoint, tiny_config

TEXT, PAIR = "the king went to the city .", "he saw water ."


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentence")
    albert = tiny_config("albert", num_hidden_layers=2)
    return {
        "bert": engine_checkpoint(root / "bert", tiny_config("bert"), seed=3),
        "albert": engine_checkpoint(root / "albert", albert, seed=4),
        "bare": engine_checkpoint(root / "bare", tiny_config("bert"), heads=Heads(pooler=True)),
    }


def own_logits(loaded) -> torch.Tensor:
    """The sentence head's logits for (TEXT, PAIR), straight from the model's forward pass."""
    loaded.model.eval()
    with torch.no_grad():
        out = loaded.model(**loaded.encode(TEXT, PAIR).tensors(loaded.device))
    return (out.nsp_logits if out.nsp_logits is not None else out.sop_logits)[0]


@pytest.mark.parametrize(
    ("name", "head", "label"), [("bert", "NSP", "is next"), ("albert", "SOP", "in order")]
)
def test_the_probability_is_the_softmax_of_the_heads_own_logits(folders, name, head, label):
    loaded = load_model(folders[name], device="cpu")
    logits = own_logits(loaded)
    expected = float(torch.softmax(logits.double(), dim=-1)[0])
    r = probe(loaded, TEXT, pair=PAIR)
    s = r.sentence
    assert s is not None and s.head == head and s.label == label
    assert abs(s.prob - expected) < 1e-6
    np.testing.assert_allclose(s.logits, logits.numpy(), atol=1e-6)
    assert r.sentence_head == head
    assert r.sentence_summary == f"P({label}) = {expected:.2f} ({head} head)"


@pytest.mark.parametrize("name", ["bert", "albert"])
def test_class_zero_is_is_next_and_in_order(folders, name):
    """A head biased towards class 0 (the data's label 0: B follows A / not swapped) reads as a
    high P(is next) / P(in order): 1 / (1 + e^-6) whatever the encoder says."""
    loaded = load_model(folders[name], device="cpu")
    model = loaded.model
    layer = model.cls.seq_relationship if name == "bert" else model.sop_classifier.classifier
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([3.0, -3.0]))
    s = probe(loaded, TEXT, pair=PAIR).sentence
    assert s is not None and abs(s.prob - 1 / (1 + math.exp(-6))) < 1e-6
    assert s.describe() == f"P({s.label}) = 1.00 ({s.head} head)"


def test_one_sentence_or_no_head_shows_none(folders):
    bert = load_model(folders["bert"], device="cpu")
    albert = load_model(folders["albert"], device="cpu")
    bare = load_model(folders["bare"], device="cpu")
    one = probe(bert, TEXT)
    assert one.sentence is None and one.sentence_summary == "P(is next): pair only (NSP head)"
    assert probe(albert, TEXT).sentence_summary == "P(in order): pair only (SOP head)"
    assert "sentence_logits" not in analyze(bert, TEXT).arrays()
    assert not [row for row in one.table_rows() if row["table"] == "sentence"]
    none = probe(bare, TEXT, pair=PAIR)
    assert none.sentence is None and none.sentence_head is None
    assert none.sentence_summary == "no sentence head"


def test_exports_carry_the_prediction(folders, tmp_path):
    loaded = load_model(folders["albert"], device="cpu")
    analysis = analyze(loaded, TEXT, PAIR)
    s = analysis.result.sentence
    assert s is not None
    back, _ = load_json(write(analysis.result, tmp_path / "p.json"))
    assert back.sentence.prob == s.prob and back.sentence.head == "SOP"
    np.testing.assert_array_equal(back.sentence.logits, s.logits)
    rows = load_csv(write(analysis.result, tmp_path / "p.csv"))
    (row,) = [row for row in rows if row["table"] == "sentence"]
    assert row["sentence_head"] == "SOP" and row["label"] == "in order"
    assert row["prob"] == s.prob and row["logit_1"] == float(s.logits[1])
    data = np.load(write(analysis, tmp_path / "p.npz"))
    assert float(data["sentence_prob"]) == s.prob
    np.testing.assert_array_equal(data["sentence_logits"], s.logits)


def test_the_cli_prints_the_prediction(folders, capsys):
    from core.cli import main

    loaded = load_model(folders["bert"], device="cpu")
    expected = probe(loaded, TEXT, pair=PAIR).sentence
    assert main(["probe", str(folders["bert"]), TEXT, "--pair", PAIR]) == 0
    assert f"sentence: P(is next) = {expected.prob:.2f} (NSP head)\n" in capsys.readouterr().out
    assert main(["probe", str(folders["bare"]), TEXT, "--pair", PAIR]) == 0
    assert "sentence: no sentence head\n" in capsys.readouterr().out
