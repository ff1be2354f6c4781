"""Tokens as a reader sees them: [MASK] and unknown tokens by id with the characters they
replaced, the text truncation cut, a selection carried by character position, word-level
attention (Clark et al. 2019) and masked-word guesses with the original word's rank."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from core.analysis.probe import MaskPrediction, TokenInfo, carry_selection, predict_masked, probe
from core.analysis.words import (
    bare_token,
    is_piece,
    word_attention,
    word_guesses,
    word_level,
    word_row,
)
from core.loaded_model import load_model
from tests.tiny_models import engine_checkpoint, tiny_config


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "bert", tiny_config("bert"), seed=1)
    return load_model(folder, device="cpu")


def test_mask_and_unknown_tokens_are_found_by_id_with_their_characters(bert):
    text = "the [MASK] saw xyz in 北京 ."
    r = probe(bert, text)
    strings = r.token_strings
    assert strings == [
        "[CLS]",
        "the",
        "[MASK]",
        "saw",
        "[UNK]",
        "in",
        "[UNK]",
        "[UNK]",
        ".",
        "[SEP]",
    ]
    assert r.ids_of("mask").tolist() == [s == "[MASK]" for s in strings]
    assert r.ids_of("unk").tolist() == [s == "[UNK]" for s in strings]
    assert not r.tokens[2].special  # typed [MASK] is not in the special-tokens mask: ids tell
    assert [r.source_text(i) for i in (4, 6, 7)] == ["xyz", "北", "京"]
    assert r.source_text(0) == ""  # [CLS] replaced no characters
    assert r.special_ids == {
        role: bert.tokenizer.token_id(role) for role in ("cls", "sep", "mask", "pad", "unk")
    }


def test_truncation_records_the_text_it_cut(bert):
    words = ["the", "king", "came", "to", "the", "city"] * 20  # 120 words, 64 tokens allowed
    text = " ".join(words)
    r = probe(bert, text)
    assert r.truncated and len(r.tokens) == 64
    kept = 62  # [CLS] 62 words [SEP]
    assert r.dropped == (" ".join(words[kept:]), "")
    assert probe(bert, "the king came .").dropped == ("", "")


def _tokens(spec):
    """TokenInfo list from (text, span or None, sequence) triples."""
    return [
        TokenInfo(text=t, id=i, special=span is None, continuation=t.startswith("##"),
                  span=span, segment=0, sequence=None if span is None else seq)
        for i, (t, span, seq) in enumerate(spec)
    ]  # fmt: skip


class _Result:
    def __init__(self, spec):
        self.tokens = _tokens(spec)


def test_selection_follows_the_characters_not_the_token_number():
    # "the lord came ." as WordPiece and as a SentencePiece model that splits "lord"
    bert = _Result([("[CLS]", None, 0), ("the", (0, 3), 0), ("lord", (4, 8), 0),
                    ("came", (9, 13), 0), (".", (14, 15), 0), ("[SEP]", None, 0)])  # fmt: skip
    albert = _Result([("[CLS]", None, 0), ("▁the", (0, 3), 0), ("▁lo", (4, 6), 0),
                      ("rd", (6, 8), 0), ("▁came", (9, 13), 0), ("▁.", (14, 15), 0),
                      ("[SEP]", None, 0)])  # fmt: skip
    assert carry_selection(bert, 2, albert) == 2  # 'lord' -> '▁lo', the piece at its start
    assert carry_selection(bert, 3, albert) == 4  # 'came' -> '▁came' (not #3 'rd')
    assert carry_selection(albert, 4, bert) == 3
    assert carry_selection(albert, 3, bert) == 2  # 'rd' -> 'lord', which covers its characters
    assert carry_selection(bert, 5, albert) == 6  # the last [SEP] -> the last [SEP]
    assert carry_selection(bert, 0, albert) == 0
    shorter = _Result([("[CLS]", None, 0), ("the", (0, 3), 0), ("[SEP]", None, 0)])
    assert carry_selection(bert, 3, shorter) == 0  # nothing at or after those characters


def test_word_attention_sums_pieces_of_the_target_and_averages_pieces_of_the_source(bert):
    r = probe(bert, "the kingab came to the cityc .")
    assert r.token_strings == ["[CLS]", "the", "king", "##a", "##b", "came", "to", "the",
                               "city", "##c", ".", "[SEP]"]  # fmt: skip
    words = word_level(r)
    assert words.groups == [[0], [1], [2, 3, 4], [5], [6], [7], [8, 9], [10], [11]]
    assert words.labels == ["[CLS]", "the", "kingab", "came", "to", "the", "cityc", ".", "[SEP]"]
    a = r.attentions  # (L, heads, T, T)
    w = word_attention(a, words)
    assert w.shape == (*a.shape[:2], 9, 9)
    for layer in range(a.shape[0]):
        for head in range(a.shape[1]):
            for i, source in enumerate(words.groups):
                for j, target in enumerate(words.groups):
                    expected = np.mean([a[layer, head, s, target].sum() for s in source])
                    assert w[layer, head, i, j] == pytest.approx(expected, abs=1e-6)
    assert_allclose(w.sum(axis=-1), 1.0, atol=1e-5)  # still a distribution per word
    assert words.word_of(4) == 2 and words.word_of(11) == 8
    for word in range(len(words)):
        assert_allclose(word_row(a, words, word), w[..., word, :], atol=1e-6)


def test_masked_guess_reports_the_original_words_rank_and_probability(bert):
    text = "the lord came to the city ."
    guess = predict_masked(bert, text, 2, top_k=5)
    assert guess.original == "lord"
    # the same number from the full distribution of the sentence with [MASK] typed in
    logits = probe(bert, "the [MASK] came to the city .").mlm_logits[2]
    probs = torch.softmax(torch.from_numpy(logits).double(), -1).numpy()
    lord = bert.tokenizer.backend.token_to_id("lord")
    assert guess.original_prob == pytest.approx(probs[lord], rel=1e-4)
    assert guess.original_rank == int((probs > probs[lord]).sum()) + 1
    assert guess.tokens == guess.pool_tokens[:5]
    assert len(guess.pool_tokens) == 50
    assert np.all(np.diff(guess.pool_probs) <= 0)


def test_word_guesses_skip_punctuation_and_pieces():
    prediction = MaskPrediction(
        position=1, tokens=[".", "##a"], ids=[0, 1], probs=np.array([0.3, 0.2], dtype=np.float32),
        pool_tokens=[".", "##a", "king", ",", "lord", "▁x", "y"],
        pool_probs=np.array([0.3, 0.2, 0.1, 0.08, 0.05, 0.04, 0.03], dtype=np.float32),
    )  # fmt: skip
    assert word_guesses(prediction, 2, sentencepiece=False) == [
        ("king", pytest.approx(0.1)),
        ("lord", pytest.approx(0.05)),
    ]
    # SentencePiece: only "▁"-initial tokens start a word
    assert [t for t, _ in word_guesses(prediction, 5, sentencepiece=True)] == ["▁x"]
    assert is_piece("##ing", False) and is_piece("ing", True) and not is_piece("▁the", True)
    assert not is_piece("[MASK]", True) and not is_piece("<unk>", True)
    assert [bare_token(t) for t in ("##ing", "▁the", "▁", "lord")] == ["ing", "the", "▁", "lord"]
