"""Tokenizer training: WordPiece (BERT) and Unigram (ALBERT) from text files."""

from __future__ import annotations

import json

import pytest

from core.errors import InputError, TokenizerError
from core.tokenizer import load_tokenizer
from core.tokenizer_train import load_tokenizer_file, special_tokens, train_tokenizer
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
