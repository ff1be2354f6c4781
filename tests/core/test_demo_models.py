"""The demo models shipped in ``resources/models`` are what the window opens with: they must
load, stay small, and show learned structure (guesses that depend on the words around the
mask, held-out scores far above a word-frequency model), not noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.analysis.probe import probe
from core.config import Heads
from core.loaded_model import load_model
from core.training import evaluate_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "resources" / "models"
HELDOUT = ROOT / "resources" / "corpus" / "heldout.txt"

# Sentence -> words of which at least one must be among the model's top 5 guesses. ALBERT's
# list is shorter: at the same token budget it learned less (README, "Demo models").
EXPECTED = {
    "bert-mini": {
        "and jesus said unto [MASK] , follow me .": {"him", "them"},
        "he [MASK] to the house and opened the door .": {"came", "went", "walked", "ran"},
        "the whale [MASK] out of the water .": {"is", "was", "came", "went", "rose"},
        "i am sure she will be very [MASK] to see you .": {"glad", "happy", "sorry", "pleased"},
        "the [MASK] of the lord came upon him .": {"son", "word", "spirit", "angel", "hand"},
    },
    "albert-mini": {  # a typed [MASK] with no stray "▁" before it (tests/core/test_tokenizer.py)
        "he [MASK] to the house and opened the door .": {"came", "went", "walked", "ran"},
        "the whale [MASK] out of the water .": {"is", "was", "came", "went", "rose"},
        "the [MASK] of the lord came upon him .": {"son", "word", "spirit", "angel", "hand"},
    },
}
# Held-out bounds (first 128 sequences of heldout.txt at length 128); a word-frequency
# model scores perplexity ~575 and these models ~85 and ~300 (README).
MAX_PERPLEXITY = {"bert-mini": 110.0, "albert-mini": 380.0}
MIN_ACCURACY = {"bert-mini": 0.23, "albert-mini": 0.12}


@pytest.fixture(scope="module", params=["bert-mini", "albert-mini"])
def demo(request):
    return load_model(MODELS / request.param)


def test_demo_model_is_small_and_has_its_pretraining_heads(demo):
    size = sum(f.stat().st_size for f in demo.path.iterdir())
    assert size < 20 * 2**20
    sentence_head = "nsp" if demo.config.model_type == "bert" else "sop"
    assert demo.heads == Heads(mlm=True, sentence=sentence_head, pooler=True)


def test_masked_word_guesses_fit_the_sentence(demo):
    for text, words in EXPECTED[demo.name].items():
        top = {token.lstrip("\u2581") for token in probe(demo, text, top_k=5).masked[0].tokens}
        assert top & words, f"{demo.name}: {text!r} -> {sorted(top)}"


def test_heldout_scores_are_far_above_word_frequencies(demo):
    """Perplexity of always guessing the corpus' word frequencies is about 575 (README)."""
    metrics = evaluate_model(demo, [HELDOUT], seq_len=128, max_examples=128, precision="fp32")
    assert metrics.perplexity < MAX_PERPLEXITY[demo.name]
    assert metrics.mlm_accuracy > MIN_ACCURACY[demo.name]
    assert metrics.sentence_accuracy > 0.65  # chance: 0.5
