"""Random-initialised stand-ins (core.random_models): a vocabulary built from the corpus's
commonest words, the same weights for the same seed, and the preset's shapes."""

from __future__ import annotations

import torch

from core.analysis.probe import probe
from core.config import preset
from core.random_models import build_random_model, random_tokenizer, random_vocab
from core.tokenizer import SPECIAL_DEFAULTS

CORPUS_TEXT = "The whale rose. The whale dived!\nA ship, the sea and the whale.\n"


def _corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS_TEXT, encoding="utf-8")
    return path


def test_vocabulary_is_specials_characters_then_commonest_words(tmp_path):
    special = SPECIAL_DEFAULTS["bert"]
    lines = random_vocab(special, _corpus(tmp_path), words=3).read_text().splitlines()
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert lines[5:7] == ["a", "b"]
    assert "##z" in lines and "##9" in lines
    # counts: the 4, whale 3, then rose, dived, a, ship, sea, and once each (ties in order of
    # first use); the three commonest are kept
    assert lines[-3:] == ["the", "whale", "rose"]
    assert "dived" not in lines
    assert len(lines) == 5 + 36 + 16 + 36 + 3
    # the same content is the same file; no corpus gives characters only
    assert random_vocab(special, _corpus(tmp_path), words=3) == random_vocab(
        special, _corpus(tmp_path), words=3
    )
    assert len(random_vocab(special, None).read_text().splitlines()) == 5 + 36 + 16 + 36


def test_tokenizer_splits_unknown_words_into_characters(tmp_path):
    tokenizer = random_tokenizer("albert", 64, _corpus(tmp_path))
    encoded = tokenizer.encode("The whale sank.")
    assert encoded.tokens == ["[CLS]", "the", "whale", "s", "##a", "##n", "##k", ".", "[SEP]"]
    assert tokenizer.token_id("pad") == 0


def test_same_seed_same_weights_and_the_callers_random_stream_is_untouched(tmp_path):
    corpus = _corpus(tmp_path)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = build_random_model("bert-tiny", seed=7, corpus=corpus)
    assert torch.equal(torch.rand(3), expected_next)
    again = build_random_model("bert-tiny", seed=7, corpus=corpus)
    other = build_random_model("albert-tiny", seed=8, corpus=corpus, name="albert (random)")
    for (key, a), (_, b) in zip(
        first.model.state_dict().items(), again.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), key
    assert first.name == "bert-tiny"
    assert other.name == "albert (random)"
    assert other.config.model_type == "albert"
    assert not first.model.training


def test_vocab_size_follows_the_tokenizer_unless_full_vocab(tmp_path):
    corpus = _corpus(tmp_path)
    small = build_random_model("bert-tiny", corpus=corpus)
    assert (
        small.config.vocab_size == small.tokenizer.vocab_size == 5 + 36 + 16 + 36 + 7
    )  # 7 words: single letters dropped
    assert small.config.hidden_size == preset("bert-tiny").hidden_size
    full = build_random_model("bert-tiny", corpus=corpus, full_vocab=True)
    assert full.config.vocab_size == preset("bert-tiny").vocab_size == 30522
    result = probe(small, "the whale [MASK] .")
    assert result.attentions.shape == (2, 2, 6, 6)  # bert-tiny: 2 layers, 2 heads
    assert len(result.masked) == 1
