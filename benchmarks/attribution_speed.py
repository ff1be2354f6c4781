"""Attribution and head-toggle latency on the demo models (CPU).

ig 32x32       Integrated Gradients, 32 steps, for a masked word in a 32-token sentence:
               one batched forward + one backward over the 32 interpolated inputs, plus the
               baseline's forward and the two end points' (target <= 150 ms);
saliency       one forward + backward;
head toggle    ``ablate``: the intact and the masked probe (the guesses and their change
               after a click in the head grid; target <= 60 ms);
ig 512x64 peak (``--long``) peak RSS growth of IG over 64 steps for a 512-token input on
               bert-base-size random weights (target <= 2 GB).

  python -m benchmarks.attribution_speed [--threads N] [--repeat N] [--long]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from benchmarks.common import machine, median_ms
from core import load_model
from core.analysis.ablation import ablate, head_mask
from core.analysis.attribution import Target, attribute

DEMO = Path(__file__).resolve().parents[1] / "resources" / "models"
# 30 word pieces + [CLS] and [SEP] = 32 tokens with both demo tokenizers (checked below)
SENTENCE = (
    "the old man said that he [MASK] to the house in the city after the long day , "
    "and then he saw the light of the new king and queen"
)


def long_peak() -> None:
    """Peak RSS growth of 64-step IG on a 512-token input with a base-size BERT."""
    from benchmarks.common import random_preset

    text = "he [MASK] " + " ".join(["the king went to the city ."] * 72)  # 510 words
    loaded = random_preset("bert-base", text)
    enc = loaded.encode(text)
    pos = enc.input_ids.index(loaded.tokenizer.token_id("mask"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    a = attribute(loaded, text, Target("mask", pos), steps=64)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"ig 512x64 bert-base: {len(enc)} tokens, peak RSS growth {(after - before) / 1024:.0f} MB, "
        f"completeness error {a.completeness_error:.2e}"
    )


def bench(name: str, repeat: int) -> None:
    loaded = load_model(DEMO / name, device="cpu")
    enc = loaded.encode(SENTENCE)
    target = Target("mask", enc.input_ids.index(loaded.tokenizer.token_id("mask")))
    ig = median_ms(lambda: attribute(loaded, SENTENCE, target, steps=32), repeat)
    sal = median_ms(lambda: attribute(loaded, SENTENCE, target, method="saliency"), repeat)
    mask = head_mask(loaded, [(1, 2)])
    toggle = median_ms(lambda: ablate(loaded, SENTENCE, None, mask), repeat)
    print(f"{name:<12}{len(enc):>7}{ig:>13.1f}{sal:>13.1f}{toggle:>11.1f}")


def importance_time(name: str) -> None:
    from core.analysis.importance import head_importance, held_out_batches

    loaded = load_model(DEMO / name, device="cpu")
    corpus = str(DEMO.parent / "corpus" / "heldout.txt")
    batches = held_out_batches(loaded, [corpus], 256, 128)
    start = time.perf_counter()
    imp = head_importance(loaded, batches)
    took = time.perf_counter() - start
    print(f"importance {name}: {imp.n_sequences} sequences x 128 tokens in {took:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--long", action="store_true", help="also the 512-token memory check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    print(f"{'model':<12}{'tokens':>7}{'ig 32x32 ms':>13}{'saliency ms':>13}{'toggle ms':>11}")
    for name in ("bert-mini", "albert-mini"):
        bench(name, args.repeat)
    if args.long:
        for name in ("bert-mini", "albert-mini"):
            importance_time(name)
        long_peak()


if __name__ == "__main__":
    main()
