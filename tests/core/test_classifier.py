"""Classification heads: a folder saved here loads in transformers'
AutoModelForSequenceClassification with the same logits, and one saved there loads here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.classifier import LabelSet, SequenceClassifier, predict, with_classifier
from core.errors import ConfigError, InputError
from core.loaded_model import load_model, save_model
from tests.tiny_models import engine_checkpoint, hf_checkpoint, tiny_config

TEXTS = ["the king went to the city", "she said that the water was good"]
PAIRS = ["he saw a great house", "they came at first light"]


def _hf_logits(folder, texts, pairs):
    import transformers

    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        folder, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    model.eval()
    loaded = load_model(folder)
    rows = []
    with torch.no_grad():
        for i, text in enumerate(texts):
            enc = loaded.encode(text, pairs[i] if pairs else None)
            rows.append(model(**enc.tensors()).logits[0])
    return model, torch.stack(rows).numpy()


def _fine_tunable(tmp_path, family, labels, seed=3):
    base = load_model(engine_checkpoint(tmp_path / f"{family}-base", tiny_config(family)))
    tuned = with_classifier(base, labels, seed=seed)
    with torch.no_grad():  # a head far from its init, so a wrong tensor cannot hide
        tuned.classifier.classifier.weight.normal_(0.0, 0.5)
        tuned.classifier.classifier.bias.normal_(0.0, 0.5)
    return tuned


@pytest.mark.parametrize("family", ["bert", "albert"])
@pytest.mark.parametrize("pair", [False, True])
def test_saved_classifier_loads_in_transformers_with_equal_logits(tmp_path, family, pair):
    labels = LabelSet(("neg", "neutral", "pos"))
    tuned = _fine_tunable(tmp_path, family, labels)
    folder = save_model(tuned, tmp_path / "tuned")
    config = json.loads((folder / "config.json").read_text())
    assert config["num_labels"] == 3
    assert config["id2label"] == {"0": "neg", "1": "neutral", "2": "pos"}
    assert config["label2id"] == {"neg": 0, "neutral": 1, "pos": 2}
    assert config["problem_type"] == "single_label_classification"
    family_name = "Bert" if family == "bert" else "Albert"
    assert config["architectures"] == [f"{family_name}ForSequenceClassification"]
    pairs = PAIRS if pair else None
    hf_model, hf = _hf_logits(folder, TEXTS, pairs)
    assert type(hf_model).__name__ == f"{family_name}ForSequenceClassification"
    assert hf_model.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    ours = predict(tuned, TEXTS, pairs)
    np.testing.assert_allclose(ours.logits, hf, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours.probabilities.sum(1), 1.0, atol=1e-6)
    again = predict(load_model(folder), TEXTS, pairs)  # and read back here
    np.testing.assert_allclose(again.logits, ours.logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "architecture", ["BertForSequenceClassification", "AlbertForSequenceClassification"]
)
@pytest.mark.parametrize("num_labels", [1, 4])
def test_transformers_saved_classifier_loads_here(tmp_path, architecture, num_labels):
    config = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    if architecture.startswith("Albert"):
        config.update(embedding_size=16)
    folder = hf_checkpoint(tmp_path / "hf", architecture, **config)
    loaded = load_model(folder)
    assert loaded.classifier is not None
    assert loaded.classifier.labels.num_labels == num_labels
    expected = "regression" if num_labels == 1 else "single_label_classification"
    assert loaded.classifier.labels.problem_type == expected
    _, hf = _hf_logits(folder, TEXTS, PAIRS)
    ours = predict(loaded, TEXTS, PAIRS)
    np.testing.assert_allclose(ours.logits, hf, atol=1e-5, rtol=0)
    assert (ours.probabilities is None) == (num_labels == 1)


def test_regression_head_round_trips_through_transformers(tmp_path):
    tuned = _fine_tunable(tmp_path, "bert", LabelSet.regression())
    folder = save_model(tuned, tmp_path / "reg")
    hf_model, hf = _hf_logits(folder, TEXTS, None)
    assert hf_model.config.problem_type == "regression" and hf_model.num_labels == 1
    np.testing.assert_allclose(predict(tuned, TEXTS).logits, hf, atol=1e-5, rtol=0)


def test_head_from_a_pretraining_model_keeps_the_encoder_and_leaves_the_base_alone(tmp_path):
    base = load_model(engine_checkpoint(tmp_path / "base", tiny_config("albert")))
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    tuned = with_classifier(base, LabelSet(("a", "b")))
    assert not tuned.heads.mlm and tuned.heads.sentence is None and tuned.heads.pooler
    for key, value in tuned.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, value in base.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    joined = SequenceClassifier(tuned.model, tuned.classifier)
    n_params = sum(p.numel() for p in joined.parameters())
    assert n_params == sum(p.numel() for p in tuned.model.parameters()) + 32 * 2 + 2


def test_num_labels_mismatch_with_an_existing_head_is_refused(tmp_path):
    tuned = _fine_tunable(tmp_path, "bert", LabelSet(("a", "b", "c")))
    with pytest.raises(
        ConfigError, match="already has a classifier head with 3 outputs but the task has 2"
    ):
        with_classifier(tuned, LabelSet(("x", "y")))
    assert (
        with_classifier(tuned, LabelSet(("x", "y")), new_head=True).classifier.labels.num_labels
        == 2
    )


def test_predict_command_prints_the_class_probabilities(tmp_path, capsys):
    from core.cli import main

    tuned = _fine_tunable(tmp_path, "bert", LabelSet(("neg", "pos")))
    folder = save_model(tuned, tmp_path / "tuned")
    assert main(["predict", str(folder), TEXTS[0], "--pair", PAIRS[0], "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    expected = predict(tuned, TEXTS[:1], PAIRS[:1]).probabilities[0]
    assert row == pytest.approx({"neg": expected[0], "pos": expected[1]}, abs=1e-6)
    assert main(["predict", str(folder), TEXTS[0]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and {line.split()[0] for line in lines} == {"neg", "pos"}


def test_predict_on_a_model_without_a_head_is_one_line(tmp_path, capsys):
    from core.cli import main

    base = engine_checkpoint(tmp_path / "base", tiny_config("bert"))
    assert main(["predict", str(base), "the king"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no classifier head: fine-tune it first" in err


def test_pair_on_a_model_without_segment_embeddings_is_refused(tmp_path):
    base = load_model(engine_checkpoint(tmp_path / "b", tiny_config("bert", type_vocab_size=1)))
    tuned = with_classifier(base, LabelSet(("a", "b")))
    with pytest.raises(InputError, match="no segment embeddings for a second text"):
        predict(tuned, TEXTS[:1], PAIRS[:1])


def test_a_random_calculator_model_fine_tunes_into_a_transformers_folder(tmp_path):
    from core.random_models import build_random_model

    base = build_random_model("albert-tiny", seed=4)
    tuned = with_classifier(base, LabelSet(("x", "y")), seed=1)
    folder = save_model(tuned, tmp_path / "random-tuned")
    _, hf = _hf_logits(folder, TEXTS, PAIRS)
    np.testing.assert_allclose(predict(tuned, TEXTS, PAIRS).logits, hf, atol=1e-5, rtol=0)
