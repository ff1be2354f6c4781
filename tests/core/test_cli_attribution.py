"""``python -m core attribute`` and ``probe --mask-heads / --layers-lens``: what they print
equals the API's numbers, and bad input is one ``error:`` line with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import load_model
from core.analysis.ablation import ablate, head_mask
from core.analysis.attribution import Target, attribute
from core.cli import main
from tests.tiny_models import engine_checkpoint, tiny_config

TEXT = "the king [MASK] to the city ."


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    config = tiny_config("bert", initializer_range=0.2)
    return engine_checkpoint(tmp_path_factory.mktemp("cli") / "bert", config, seed=5)


@pytest.fixture(scope="module")
def albert_folder(tmp_path_factory):
    config = tiny_config("albert", num_hidden_layers=3, initializer_range=0.2)
    return engine_checkpoint(tmp_path_factory.mktemp("cli") / "albert", config, seed=6)


def test_attribute_json_equals_the_api(bert_folder, capsys):
    argv = ["attribute", str(bert_folder), TEXT, "--target", "mask:3:word", "--steps", "16"]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = attribute(load_model(bert_folder), TEXT, Target("mask", 3), steps=16, words=True)
    assert got["target"] == ref.target and got["baseline"] == "pad" and got["steps"] == 16
    np.testing.assert_allclose(got["scores"], ref.scores, rtol=1e-12)
    np.testing.assert_allclose(got["word_scores"], ref.word_scores, rtol=1e-12)
    assert got["completeness_error"] == pytest.approx(ref.completeness_error)
    assert main(argv) == 0
    assert "completeness error" in capsys.readouterr().out


def test_attribute_out_csv(bert_folder, tmp_path, capsys):
    out = tmp_path / "attr.csv"
    argv = ["attribute", str(bert_folder), TEXT, "--target", "mask:3", "--out", str(out)]
    assert main(argv) == 0
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("table,") and sum(r.startswith("attribution,") for r in rows) == 9
    assert main([*argv[:-1], str(tmp_path / "attr.png")]) == 2
    assert "--out" in capsys.readouterr().err


def test_attribute_albert_hidden_saliency_with_heads_off(albert_folder, capsys):
    argv = ["attribute", str(albert_folder), TEXT, "--target", "mask:3", "--method", "saliency"]
    assert (
        main([*argv, "--layer", "hidden", "--mask-heads", "1.2", "--shared-depth", "all", "--json"])
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert (
        got["layer"].startswith("output of embedding_hidden_mapping_in")
        and got["masked_heads"] == 3
    )


def test_probe_mask_heads_and_lens(albert_folder, capsys):
    assert (
        main(["probe", str(albert_folder), TEXT, "--mask-heads", "2.1,3.4", "--layers-lens"]) == 0
    )
    out = capsys.readouterr().out
    loaded = load_model(albert_folder)
    x = ablate(loaded, TEXT, None, head_mask(loaded, [(1, 0), (2, 3)]))
    c = x.changes[0]
    assert "heads off: 2.1, 3.4 (at the named depth only): 2 of 12 effective heads" in out
    assert f"intact top {c.intact_top} {c.intact_prob:.3f} -> {c.ablated_prob:.3f}" in out
    assert out.count("layer ") >= 3 and "embeddings:" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["attribute", "{m}", TEXT, "--target", "mask:1"], "token 1 is 'the', not [MASK]"),
        (["attribute", "{m}", TEXT, "--target", "mask:3", "--steps", "0"], "--steps must be"),
        (["attribute", "{m}", TEXT, "--target", "sentence"], "needs a pair"),
        (["attribute", "{m}", TEXT, "--target", "mask:3", "--token", "zebra"], "zebra"),
        (["attribute", "{m}", TEXT, "--target", "nope"], "--target 'nope'"),
        (["probe", "{m}", TEXT, "--mask-heads", "3.1"], "layer 3 is outside the model (1..2)"),
        (["probe", "{m}", TEXT, "--mask-heads", "1.9"], "head 9 is outside layer 1 (1..4)"),
        (["probe", "{m}", TEXT, "--mask-heads", "x"], "not LAYER.HEAD"),
    ],
)
def test_bad_input_is_one_error_line(bert_folder, capsys, argv, message):
    assert main([a.format(m=bert_folder) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_heads_importance_and_curve(bert_folder, tmp_path, capsys):
    from core.analysis.importance import head_importance, held_out_batches
    from tests.tiny_models import WORDS

    corpus = tmp_path / "heldout.txt"
    corpus.write_text(
        "\n\n".join(
            " ".join(WORDS[i : i + 9]) + " .\n" + " ".join(WORDS[i + 9 : i + 18]) + " ."
            for i in range(0, 60, 6)
        ),
        encoding="utf-8",
    )
    common = ["--corpus", str(corpus), "--sequences", "6", "--seq-len", "32"]
    assert main(["heads", str(bert_folder), "--importance", *common, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    loaded = load_model(bert_folder)
    ref = head_importance(loaded, held_out_batches(loaded, [str(corpus)], 6, 32))
    np.testing.assert_allclose(got["importance"], ref.normalized, rtol=1e-6)
    out = tmp_path / "curve.csv"
    assert main(["heads", str(bert_folder), "--prune-curve", *common, "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "mode,fraction,removed,mlm_accuracy,perplexity"
    assert main(["heads", str(bert_folder), "--importance", *common, "--out", str(out)]) == 2
    assert "--out is for --prune-curve" in capsys.readouterr().err
