"""What a run will cost and what it must beat, before and after it runs.

- :func:`estimate_runs`: the wall time of one or more runs on the CPU, from the training FLOPs
  per token (:func:`core.cost.flops.flops_per_token`, 3 x forward) and a CPU rate measured on
  this project's 2-core machine (``CPU_FLOPS_PER_THREAD``), plus a fixed set-up time. A model,
  not a promise: other CPUs run faster or slower, and it is no guide to a GPU.
- :func:`unigram_perplexity`: the held-out perplexity of always predicting the training
  corpus' token frequencies. A masked-LM run whose held-out perplexity stays above it has
  learned no more than those frequencies (the "unigram plateau").

Both are torch-free: the window computes them on the GUI thread or reads them from a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.config import ModelConfig, preset
from core.cost.flops import flops_per_token
from core.training.config import TrainConfig

# Training FLOPs per second of one CPU thread, fp32, measured with `python -m core train
# --arch bert --steps 1000 --batch-size 64 --seq-len 32 --threads 1` (bert-mini, dropout 0.1)
# and the same for albert, both at once on a 2-core machine: 3,040 and 3,550 tokens/s, at
# 21.2 and 20.4 MFLOP per token: 64 and 73 GFLOP/s. The slower of the two.
CPU_FLOPS_PER_THREAD = 64e9
SETUP_S = 30.0  # training the tokenizer, tokenizing the corpus, building the model (measured: 25 s)


@dataclass(frozen=True)
class RunEstimate:
    """The modelled cost of the runs one Start begins."""

    seconds: float  # wall time, set-up included (runs at the same time: the longest)
    tokens: int  # tokens each run trains on, all runs together
    tokens_per_s: tuple[float, ...]  # modelled throughput of each run
    basis: str  # how it was modelled, one line


def model_for(config: TrainConfig, model_config: ModelConfig | None = None) -> ModelConfig:
    """The model a run trains (before its tokenizer exists: the configured vocabulary size)."""
    if model_config is not None:
        return model_config
    changes = {"vocab_size": config.vocab_size, **config.config_overrides}
    if config.max_positions is not None:
        changes["max_position_embeddings"] = config.max_positions
    return preset(config.preset, **changes)


def estimate_runs(
    configs: Sequence[TrainConfig],
    threads: int = 1,
    parallel: bool = False,
    model_configs: Sequence[ModelConfig | None] | None = None,
) -> RunEstimate:
    """Wall time of ``configs`` on the CPU with ``threads`` threads per run: one after the
    other (the sum) or at the same time (the longest)."""
    threads = max(1, int(threads))
    models = list(model_configs or [None] * len(configs))
    times, rates, tokens = [], [], 0
    for config, model in zip(configs, models, strict=True):
        n = config.steps * config.batch_size * config.grad_accum * config.seq_len
        flops = flops_per_token(model_for(config, model), config.seq_len).training_per_token
        rate = CPU_FLOPS_PER_THREAD * threads / flops
        times.append(SETUP_S + n / rate)
        rates.append(rate)
        tokens += n
    seconds = (max(times) if parallel else sum(times)) if times else 0.0
    basis = (
        f"modelled: {CPU_FLOPS_PER_THREAD / 1e9:.0f} GFLOP/s per CPU thread (measured on a "
        f"2-core machine) x {threads} thread(s), + {SETUP_S:.0f} s set-up per run"
    )
    return RunEstimate(seconds, tokens, tuple(rates), basis)


def unigram_perplexity(
    train_tokens: np.ndarray, heldout_tokens: np.ndarray, vocab_size: int
) -> float:
    """exp of the mean negative log-probability of the held-out tokens under the training
    tokens' frequencies (add-one smoothed over the vocabulary, so an unseen token costs a
    finite amount): the perplexity a masked-LM head reaches by predicting the frequent
    tokens everywhere, without looking at the context."""
    train = np.asarray(train_tokens, dtype=np.int64)
    heldout = np.asarray(heldout_tokens, dtype=np.int64)
    if heldout.size == 0:
        raise ValueError("no held-out tokens to score")
    counts = np.bincount(train, minlength=vocab_size)[:vocab_size].astype(np.float64) + 1.0
    log_p = np.log(counts) - math.log(float(counts.sum()))
    return float(math.exp(-float(log_p[heldout].mean())))
