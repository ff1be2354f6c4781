"""The sentence objective as a training setting, free of the family (the ALBERT paper's Table 5):
it changes only the sentence head's name and its labels; "none" trains MLM alone; a BERT
trained with SOP and an ALBERT with NSP save checkpoints transformers loads with equal logits,
and the objective, recorded in config.json, names the head when the folder is loaded back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core import load_model
from core.analysis import probe
from core.cli import build_parser
from core.config import SENTENCE_OBJECTIVE_KEY, Heads, sentence_objective
from core.data import DataConfig, PretrainingData, TokenizedCorpus
from core.errors import InputError
from core.training import TrainConfig, pretraining_loss
from tests.core.training_text import (
    counting_tokenizer,
    tiny_train_config,
    word_tokenizer,
    write_corpus,
    write_counting_corpus,
)
from tests.tiny_models import engine_checkpoint, tiny_config

transformers = pytest.importorskip("transformers")

TOL = 1e-5


def test_the_default_is_the_familys_own_and_a_bad_one_is_refused():
    assert TrainConfig(arch="bert").sentence_objective == "nsp"
    assert TrainConfig(arch="albert").sentence_objective == "sop"
    assert TrainConfig(arch="bert", sentence_objective="sop").sentence_objective == "sop"
    # A checkpoint's settings from before the setting existed read back as the family's own.
    saved = TrainConfig(arch="albert").to_dict()
    del saved["sentence_objective"]
    assert TrainConfig.from_dict(saved).sentence_objective == "sop"
    with pytest.raises(InputError, match="unknown sentence objective 'mlm'; choose none, nsp"):
        TrainConfig(arch="bert", sentence_objective="mlm")


def test_heads_of_each_objective():
    assert Heads.pretraining("bert", "sop").names() == ["mlm", "pooler", "sop"]
    assert Heads.pretraining("albert", "nsp").names() == ["mlm", "nsp", "pooler"]
    assert Heads.pretraining("albert", "none") == Heads(mlm=True)  # *ForMaskedLM's layout


def test_the_cli_option_reaches_the_config():
    args = build_parser().parse_args(
        ["train", "--arch", "bert", "--sentence-objective", "sop", "--corpus", "c", "--out", "o"]
    )
    assert args.sentence_objective == "sop"
    from core.cli.training_commands import _config_from_args

    assert _config_from_args(args, None).sentence_objective == "sop"


def test_a_bert_sop_batch_has_sop_labels_and_berts_masking(tmp_path):
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(3, 13, size=30)) for _ in range(8)]
    n = write_counting_corpus(tmp_path / "c.txt", docs)
    tok = counting_tokenizer(n)
    corpus = TokenizedCorpus.build([tmp_path / "c.txt"], tok)
    config = DataConfig.for_model("bert", 40, "sop")
    assert (config.task, config.max_ngram, config.whole_word) == ("sop", 1, False)
    labels = []
    for epoch in range(10):
        for ex in PretrainingData(corpus, tok, config, seed=3).examples(epoch):
            a, b = ex.a.astype(int), ex.b.astype(int)
            # SOP: label 0 in order, label 1 swapped; never a segment of another document.
            assert (b[0] == a[-1] + 1) if ex.label == 0 else (a[0] == b[-1] + 1)
            labels.append(ex.label)
    assert abs(np.mean(labels) - 0.5) < 0.06
    none = PretrainingData(corpus, tok, DataConfig.for_model("albert", 40, "none"), seed=3)
    pairs = list(none.examples(0))
    assert pairs and all(ex.label == 0 and ex.b[0] == ex.a[-1] + 1 for ex in pairs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("objective")
    write_corpus(folder / "train.txt", n_docs=16, seed=1)
    return folder / "train.txt"


@pytest.mark.parametrize(("arch", "objective"), [("bert", "sop"), ("albert", "none")])
def test_training_sees_the_objectives_labels_and_loss(corpus, arch, objective):
    from core.training import prepare_training

    overrides = {"embedding_size": 16} if arch == "albert" else {}
    config = tiny_train_config(
        arch=arch,
        preset=f"{arch}-tiny",
        sentence_objective=objective,
        steps=1,
        warmup=0,
        config_overrides={"hidden_size": 32, "num_hidden_layers": 2, **overrides},
    )
    trainer = prepare_training(config, [corpus], tokenizer=word_tokenizer(arch))
    assert trainer.train_data.config.task == objective
    assert trainer.model.heads == Heads.pretraining(arch, objective)
    batch = next(iter(trainer.train_data.eval_batches(4, 4, seed=0)))
    with torch.no_grad():
        losses = pretraining_loss(trainer.model, batch)
    if objective == "none":
        assert losses.sentence_sum is None and losses.sentence_logits is None
        torch.testing.assert_close(losses.loss, losses.mlm_sum / batch.n_masked)
    else:
        assert losses.sentence_sum is not None
    (shown,) = [ev.losses for ev in trainer.events() if ev.kind == "step"]
    expected = {"mlm", "total"} | ({objective} if objective != "none" else set())
    assert set(shown) == expected


SWAPPED = [
    ("bert", "sop", "BertForPreTraining", "seq_relationship_logits"),
    ("albert", "nsp", "AlbertForPreTraining", "sop_logits"),
]


@pytest.mark.parametrize(("family", "objective", "architecture", "ref_name"), SWAPPED)
def test_a_swapped_objective_loads_in_transformers_with_equal_logits(
    tmp_path, family, objective, architecture, ref_name
):
    config = tiny_config(family).replace(extra={SENTENCE_OBJECTIVE_KEY: objective})
    folder = engine_checkpoint(tmp_path / "ckpt", config, seed=5)
    saved = json.loads((folder / "config.json").read_text())
    assert saved[SENTENCE_OBJECTIVE_KEY] == objective
    assert saved["architectures"] == [architecture]
    loaded = load_model(folder, device="cpu")
    assert sentence_objective(loaded.config) == objective
    assert loaded.heads == Heads.pretraining(family, objective)
    ref = getattr(transformers, architecture).from_pretrained(folder, attn_implementation="eager")
    enc = loaded.encode("the king went to the city .", "he saw water .")
    with torch.no_grad():
        ours = loaded.model(**enc.tensors())
        theirs = ref.eval()(**enc.tensors())
    torch.testing.assert_close(ours.mlm_logits, theirs.prediction_logits, atol=TOL, rtol=0)
    other = "nsp" if objective == "sop" else "sop"
    assert getattr(ours, f"{other}_logits") is None
    torch.testing.assert_close(
        getattr(ours, f"{objective}_logits"), getattr(theirs, ref_name), atol=TOL, rtol=0
    )
    # The Probe tab's verdict names the head by what it learnt.
    result = probe(loaded, "the king went to the city .", "he saw water .")
    assert result.sentence_head == objective.upper()
    assert result.sentence.head == objective.upper()
