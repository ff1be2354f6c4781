"""Building training batches: in-process vs worker processes, and where the time goes.

bert-base-like data (sequences of 128, batches of 256) from the shipped corpus
``resources/corpus/train.txt`` with the demo models' tokenizers: BERT (NSP, single-token
masking, ``resources/models/bert-mini``) and ALBERT (SOP, whole-word n-gram masking,
``resources/models/albert-mini``). For each:

- *in-process*: ``PretrainingData.step_batches`` (and ``StepBatchLoader(workers=0)``, the CPU
  training path, which must cost the same) — steps/s and sequences/s after a warm-up step;
- the split of that time into the *pair stream* (walking ``stream``: documents -> NSP/SOP
  pairs, shuffled; no masking) and *masking + collating*, and so what walking the whole stream
  on every rank (each keeps only its 1/world share to mask) costs at larger worlds;
- *workers* k: ``StepBatchLoader(workers=k)`` consumed back to back (start-up shown apart):
  the rate the workers sustain, and the main process's cost per step once a step is ready
  (unpickling it from shared memory: what the training loop still pays).

Every worker walks the whole pair stream too, so k workers cost k x the stream's CPU time.
On a machine with few free cores, workers compete with each other and with this process.

    python -m benchmarks.bench_data [--batch 256] [--seq 128] [--steps 16] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from core.data import DataConfig, DataPosition, PretrainingData, TokenizedCorpus
from core.tokenizer import load_tokenizer
from core.training.batch_loader import StepBatchLoader

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "resources" / "corpus" / "train.txt"
MODELS = {
    "bert": ROOT / "resources/models/bert-mini",
    "albert": ROOT / "resources/models/albert-mini",
}


def timed_steps(iterator, steps: int) -> float:
    """Seconds for ``steps`` items after one warm-up item."""
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return time.perf_counter() - start


def timed_walk(data: PretrainingData, examples: int, warmup: int) -> float:
    """Seconds to walk ``examples`` pairs of the stream after ``warmup`` pairs."""
    stream = data.stream(DataPosition())
    for _ in range(warmup):
        next(stream)
    start = time.perf_counter()
    for _ in range(examples):
        next(stream)
    return time.perf_counter() - start


def bench_workers(data: PretrainingData, args, workers: int, step_s: float) -> dict:
    loader = StepBatchLoader(data, DataPosition(), args.batch, 1, 0, 1, workers=workers)
    try:
        start = time.perf_counter()
        next(loader)
        first = time.perf_counter() - start
        run = timed_steps(loader, args.steps)
        main_costs = []
        for _ in range(3):  # let the next step be built, then time only handing it over
            time.sleep(2 * step_s)
            start = time.perf_counter()
            next(loader)
            main_costs.append(time.perf_counter() - start)
    finally:
        loader.close()
    return {"first": first, "run": run, "main": statistics.median(main_costs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=16, help="timed steps per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--arch", nargs="+", default=["bert", "albert"])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"corpus: {CORPUS.relative_to(ROOT)}, batch {args.batch} x seq {args.seq}")
    with tempfile.TemporaryDirectory() as cache:
        for arch in args.arch:
            tokenizer = load_tokenizer(MODELS[arch], arch, args.seq)
            start = time.perf_counter()
            corpus = TokenizedCorpus.build([CORPUS], tokenizer, cache_dir=cache)
            built = time.perf_counter() - start
            data = PretrainingData(corpus, tokenizer, DataConfig.for_model(arch, args.seq))
            cfg = data.config
            print(
                f"\n## {arch}: {cfg.task.upper()}, max_ngram {cfg.max_ngram}, whole_word "
                f"{cfg.whole_word}; {corpus.n_tokens:,} tokens, {corpus.n_documents:,} documents, "
                f"~{data.examples_per_epoch_estimate:,} pairs/epoch (tokenized in {built:.1f} s)"
            )
            seqs = args.steps * args.batch
            plain = timed_steps(data.step_batches(DataPosition(), args.batch), args.steps)
            loader = StepBatchLoader(data, DataPosition(), args.batch, 1, 0, 1, workers=0)
            in_loader = timed_steps(loader, args.steps)
            walk = timed_walk(data, seqs, warmup=args.batch)
            step_s = plain / args.steps
            print("| build | steps/s | sequences/s | ms/step |")
            print("|---|---|---|---|")
            for name, secs in (("step_batches", plain), ("StepBatchLoader(workers=0)", in_loader)):
                print(
                    f"| {name} | {args.steps / secs:.2f} | {seqs / secs:,.0f} | "
                    f"{1e3 * secs / args.steps:.0f} |"
                )
            rows = {}
            for k in args.workers:
                rows[k] = bench_workers(data, args, k, step_s)
                r = rows[k]
                print(
                    f"| {k} worker(s) | {args.steps / r['run']:.2f} | {seqs / r['run']:,.0f} | "
                    f"{1e3 * r['run'] / args.steps:.0f} |"
                )
            stream_share = min(1.0, walk / plain)
            print(
                f"\nin-process time per step: pair stream {1e3 * walk / args.steps:.0f} ms "
                f"({100 * stream_share:.0f}%), masking + collating "
                f"{1e3 * (plain - walk) / args.steps:.0f} ms ({100 * (1 - stream_share):.0f}%)"
            )
            per_walk, per_mask = walk / seqs, max(0.0, plain - walk) / seqs
            costs = []
            for world in (1, 2, 4, 8):
                rank = world * per_walk + per_mask  # walks the global batch, masks its share
                costs.append(f"world {world}: {100 * world * per_walk / rank:.0f}%")
            print(
                "share of a rank's build time spent walking the whole stream: " + ", ".join(costs)
            )
            # Worker w of k walks all k steps of its round for the one it builds, each step
            # the whole global batch: a rank's k workers then sustain k / (k W walk + mask).
            ceilings = []
            for world in (1, 8):
                for k in (1, 2, 4):
                    per_step = (k * world * per_walk + per_mask) * args.batch
                    ceilings.append(f"W={world} k={k}: {k / per_step:.0f}")
            print("steps/s a rank's k workers sustain at most: " + ", ".join(ceilings))
            for k, r in rows.items():
                print(
                    f"{k} worker(s): first step after {1e3 * r['first']:.0f} ms (start-up); "
                    f"main process per ready step {1e3 * r['main']:.1f} ms "
                    f"(in-process build {1e3 * step_s:.0f} ms)"
                )


if __name__ == "__main__":
    main()
