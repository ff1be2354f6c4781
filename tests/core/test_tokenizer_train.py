"""Tokenizer training: WordPiece (BERT) and Unigram (ALBERT) from text files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError, TokenizerError
from core.tokenizer import load_tokenizer
from core.tokenizer_train import (
    learn_wordpiece,
    load_tokenizer_file,
    special_tokens,
    train_tokenizer,
)
from tests.core.training_text import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "text.txt"
    write_corpus(path, n_docs=30)
    with path.open("a", encoding="utf-8") as f:
        f.write("\nThe Captain's LETTER arrived; unbelievably, nobody answered it.\n")
    return path


def test_bert_wordpiece_specials_pipeline_and_round_trip(corpus, tmp_path):
    tok = train_tokenizer([corpus], "bert", vocab_size=120)
    assert 40 <= tok.vocab_size <= 120
    assert [tok.backend.token_to_id(t) for t in special_tokens("bert")] == [0, 1, 2, 3, 4]
    assert special_tokens("bert") == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    enc = tok.encode("The CAPTAIN watched the whale.", "The sailor slowly answered.")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.tokens[1:3] == ["the", "captain"]  # uncased
    sep = enc.tokens.index("[SEP]")
    assert enc.token_type_ids == [0] * (sep + 1) + [1] * (len(enc.tokens) - sep - 1)
    # A word unseen as a whole is split into ## pieces, never [UNK] (all its letters were seen).
    pieces = tok.encode("unbelievably").tokens[1:-1]
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:])
    assert "[UNK]" not in pieces
    assert tok.decode(tok.encode("the sailor watched the whale .").input_ids) == (
        "the sailor watched the whale."  # the WordPiece decoder's cleanup joins punctuation
    )
    tok.save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True and config["pad_token"] == "[PAD]"
    again = load_tokenizer(tmp_path, "bert", 512)
    text = "The stubborn neighbour forgot the letter."
    assert again.encode(text).input_ids == tok.encode(text).input_ids
    assert load_tokenizer_file(tmp_path / "tokenizer.json", "bert").vocab_size == tok.vocab_size


def test_albert_unigram_uses_metaspace_lowercase_and_albert_specials(corpus, tmp_path):
    tok = train_tokenizer([corpus], "albert", vocab_size=100)
    assert 30 <= tok.vocab_size <= 100
    ids = [tok.backend.token_to_id(t) for t in ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")]
    assert ids == [0, 1, 2, 3, 4]  # as in albert-base-v2
    assert tok.token_id("pad") == 0 and tok.mask_token == "[MASK]"
    enc = tok.encode("The GARDEN  village", "the whale")
    words = enc.tokens[1 : enc.tokens.index("[SEP]")]
    assert words[0].startswith("▁") and "".join(words).replace("▁", " ").strip() == (
        "the garden village"
    )
    assert enc.token_type_ids[-1] == 1 and enc.tokens[-1] == "[SEP]"
    assert type(tok.backend.model).__name__ == "Unigram"
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path, "albert", 512)
    assert again.encode("the quiet harbour").input_ids == tok.encode("the quiet harbour").input_ids


def test_transformers_reads_the_trained_tokenizer(corpus, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = train_tokenizer([corpus], "bert", vocab_size=120)
    tok.save(tmp_path)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    text, pair = "The curious sister visited the village.", "The teacher rarely praised."
    assert hf(text, pair)["input_ids"] == tok.encode(text, pair).input_ids


def test_bad_inputs(corpus, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        train_tokenizer([tmp_path / "missing.txt"], "bert", 100)
    with pytest.raises(InputError, match="vocab size"):
        train_tokenizer([corpus], "bert", 5)
    with pytest.raises(InputError, match="unknown model type"):
        train_tokenizer([corpus], "gpt", 100)
    with pytest.raises(TokenizerError, match="no such tokenizer"):
        load_tokenizer_file(tmp_path / "nothing", "bert")


# -- determinism -------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
TRAIN_IN_A_PROCESS = """
import sys
from core.tokenizer_train import train_tokenizer
train_tokenizer([sys.argv[1]], sys.argv[2], vocab_size=int(sys.argv[3])).save(__import__("pathlib").Path(sys.argv[4]))
"""


def run_fresh(args: list[str], hash_seed: str) -> None:
    """Run ``python args`` in a new process of this checkout, with its own hash seeds."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_learn_wordpiece_by_hand():
    # words as pieces: a ##b (x2), a ##b ##a ##b, b ##a (x3), c ##a ##b
    counts = {"ab": 2, "abab": 1, "ba": 3, "cab": 1}
    vocab = learn_wordpiece(counts, 100, ["[PAD]"], min_frequency=2)
    # pairs: (a,##b) 2+1+0 = 3, (##a,##b) 1+1 = 2, (##b,##a) 1, (b,##a) 3, (c,##a) 1
    # tie at 3: ("a", "##b") < ("b", "##a") by text; then (b,##a) 3; then (##a,##b) 2
    assert vocab == ["[PAD]", "##a", "##b", "a", "b", "c", "ab", "ba", "##ab"]
    assert learn_wordpiece(counts, 7, ["[PAD]"]) == vocab[:7]
    assert learn_wordpiece(counts, 100, ["[PAD]"], min_frequency=3) == vocab[:8]


@pytest.fixture(scope="module")
def tie_corpus(tmp_path_factory):
    """Enough text for ties between merges and between Unigram scores: tokenizers'
    WordPieceTrainer and UnigramTrainer gave a different tokenizer.json in each of 3 processes
    on it."""
    path = tmp_path_factory.mktemp("ties") / "text.txt"
    write_corpus(path, n_docs=200, seed=5)
    with path.open("a", encoding="utf-8") as f:
        f.write("Quixotic zephyrs & jovial 1776 kings; (vexed) 42 quartz jugs!\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("model_type", "vocab_size"), [("bert", 200), ("albert", 150)])
def test_training_twice_in_separate_processes_gives_identical_bytes(
    tie_corpus, tmp_path, model_type, vocab_size
):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        out.mkdir()
        argv = ["-c", TRAIN_IN_A_PROCESS, str(tie_corpus), model_type, str(vocab_size), str(out)]
        run_fresh(argv, seed)
        outs.append((out / "tokenizer.json").read_bytes())
    assert outs[0] == outs[1]
    here = train_tokenizer([tie_corpus], model_type, vocab_size=vocab_size)
    assert json.loads(outs[0])["model"] == json.loads(here.backend.to_str())["model"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bert", "albert"])
def test_the_same_train_command_twice_gives_the_same_model(tie_corpus, tmp_path, arch):
    """Two fresh ``python -m core train`` runs: byte-identical tokenizer.json, equal weights."""
    from safetensors.numpy import load_file

    runs = []
    for seed in ("1", "2"):
        out = tmp_path / f"run{seed}"
        argv = [
            "-m", "core", "train", "--arch", arch, "--preset", f"{arch}-tiny",
            "--corpus", str(tie_corpus), "--out", str(out), "--steps", "5",
            "--batch-size", "4", "--seq-len", "32", "--max-positions", "64",
            "--vocab-size", "150", "--warmup", "1", "--device", "cpu", "--threads", "1",
            "--eval-examples", "8", "--seed", "7", "--quiet",
        ]  # fmt: skip
        run_fresh(argv, seed)
        runs.append(out / "final")
    assert (runs[0] / "tokenizer.json").read_bytes() == (runs[1] / "tokenizer.json").read_bytes()
    a, b = (load_file(str(run / "model.safetensors")) for run in runs)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
