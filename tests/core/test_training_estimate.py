"""A run's modelled duration and the unigram baseline its held-out perplexity must beat."""

from __future__ import annotations

import math

import pytest

from core.config import preset
from core.cost.flops import flops_per_token
from core.training.config import TrainConfig
from core.training.estimate import (
    CPU_FLOPS_PER_THREAD,
    SETUP_S,
    estimate_runs,
    model_for,
    unigram_perplexity,
)


def test_unigram_perplexity_is_exp_cross_entropy_under_add_one_frequencies():
    train = [0, 0, 0, 1, 2, 2]  # counts 3, 1, 2, 0 over a vocabulary of 4, +1 each: 4, 2, 3, 1
    heldout = [0, 2, 3]
    p = {0: 4 / 10, 2: 3 / 10, 3: 1 / 10}
    expected = math.exp(-(math.log(p[0]) + math.log(p[2]) + math.log(p[3])) / 3)
    assert unigram_perplexity(train, heldout, 4) == pytest.approx(expected, rel=1e-12)
    # a uniform corpus scores the vocabulary size
    assert unigram_perplexity(list(range(8)) * 5, list(range(8)), 8) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="held-out"):
        unigram_perplexity(train, [], 4)


def test_estimate_is_tokens_times_training_flops_over_the_cpu_rate():
    bert = TrainConfig(arch="bert", steps=800, batch_size=64, seq_len=32)
    albert = TrainConfig(arch="albert", steps=800, batch_size=64, seq_len=32)
    n = 800 * 64 * 32
    f_bert = flops_per_token(preset("bert-mini", vocab_size=8000), 32).training_per_token
    f_albert = flops_per_token(preset("albert-mini", vocab_size=8000), 32).training_per_token
    t_bert = SETUP_S + n * f_bert / CPU_FLOPS_PER_THREAD
    t_albert = SETUP_S + n * f_albert / CPU_FLOPS_PER_THREAD
    one = estimate_runs([bert])
    assert one.tokens == n and one.seconds == pytest.approx(t_bert)
    assert one.tokens_per_s[0] == pytest.approx(CPU_FLOPS_PER_THREAD / f_bert)
    assert estimate_runs([bert, albert]).seconds == pytest.approx(t_bert + t_albert)
    assert estimate_runs([bert, albert], parallel=True).seconds == pytest.approx(t_bert)
    two_threads = estimate_runs([bert], threads=2)
    assert two_threads.seconds == pytest.approx(SETUP_S + (t_bert - SETUP_S) / 2)
    # the measured rates this model rests on: bert-mini 3,040 tokens/s at 64 x 32, 1 thread
    assert one.tokens_per_s[0] == pytest.approx(3040, rel=0.02)


def test_model_for_applies_the_run_settings_to_the_preset():
    config = TrainConfig(arch="bert", seq_len=32, vocab_size=5000, max_positions=64,
                         config_overrides={"hidden_dropout_prob": 0.0})  # fmt: skip
    model = model_for(config)
    assert (model.vocab_size, model.max_position_embeddings, model.hidden_dropout_prob) == (
        5000, 64, 0.0,
    )  # fmt: skip
