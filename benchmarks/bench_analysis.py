"""Probe + every per-sentence analysis on a 32-token sentence (CPU), and the memory model
against the measured peak.

Table 1, per preset (random weights; speed does not depend on their values):
  forward     the engine's forward pass with attentions and hidden states (no grad);
  probe       ``core.analysis.probe``: forward + numpy conversion + [MASK] predictions;
  analyses    layer statistics, attention statistics with rollout, PCA of every layer and the
              pair blocks, on the probe result;
  total       probe + analyses (the targets: mini < 30 ms, base-size < 250 ms);
  overhead    total - forward, and overhead / forward (target <= 1);
  [MASK] rows only  probe(full_logits=False) + analyses: the MLM head decodes the [MASK]
              position only instead of every token (the vocabulary projection dominates the
              mini models' forward pass);
  hf forward  transformers (eager, attentions + hidden states) on the same weights, for scale.
Table 2: modelled vs measured peak memory of a training step at batch 8, sequence 128.

    python -m benchmarks.bench_analysis [--quick] [--no-memory] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.common import machine, random_preset, transformers_twin
from core.analysis.probe import probe
from core.analysis.summary import analyze_result
from core.config import preset
from core.cost.measure import measure_training_memory
from core.cost.memory import training_memory

# 30 word tokens + [CLS] + [SEP] = 32 tokens, one of them [MASK], with punctuation.
SENTENCE = (
    "the old king went down to the city by the sea , and there he saw [MASK] many people who "
    "had come from far away to hear his word ."
)


def speed(names: list[str], repeat: int) -> None:
    print(
        "| model | tokens | forward ms | probe ms | analyses ms | total ms | target ms | "
        "overhead ms | overhead / forward | total, [MASK] rows only ms | hf forward ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        row(name, repeat)


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median ms of each function, timed in alternation round after round, so that a busy
    spell on a shared machine hits all of them alike instead of one column."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def row(name: str, repeat: int) -> None:
    loaded = random_preset(name, SENTENCE)
    encoded = loaded.encode(SENTENCE)
    assert len(encoded) == 32, len(encoded)
    result = probe(loaded, SENTENCE)
    assert len(result.masked) == 1
    hf = transformers_twin(loaded, "eager")
    tensors = encoded.tensors()

    def hf_forward() -> None:
        with torch.no_grad():
            hf(**tensors, output_attentions=True, output_hidden_states=True)

    ms = interleaved_ms(
        {
            "forward": lambda: loaded.run(encoded, output_attentions=True),
            "probe": lambda: probe(loaded, SENTENCE),
            "analyses": lambda: analyze_result(result),
            "lean": lambda: analyze_result(probe(loaded, SENTENCE, full_logits=False)),
            "hf": hf_forward,
        },
        repeat,
    )
    forward, total = ms["forward"], ms["probe"] + ms["analyses"]
    target = 30 if "mini" in name else 250
    overhead = total - forward
    print(
        f"| {name} | {len(encoded)} | {forward:.2f} | {ms['probe']:.2f} | {ms['analyses']:.2f} | "
        f"{total:.2f} | {target} | {overhead:.2f} | {overhead / forward:.2f} | "
        f"{ms['lean']:.2f} | {ms['hf']:.2f} |",
        flush=True,
    )


def memory(names: list[str]) -> None:
    print("| preset | precision | model MiB | measured MiB | model / measured | peak phase |")
    print("|---|---|---:|---:|---:|---|")
    for name in names:
        for precision in ("fp32", "bf16"):
            est = training_memory(preset(name), 8, 128, precision, "adamw", "cpu", name)
            got = measure_training_memory(preset(name), 8, 128, precision, "adamw", "cpu")
            print(
                f"| {name} | {precision} | {est.total / 2**20:.1f} | {got.peak / 2**20:.1f} | "
                f"{est.total / got.peak:.3f} | {est.peak_phase} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="mini presets only")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory table")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per figure")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ["bert-mini", "albert-mini"] + ([] if args.quick else ["bert-base", "albert-base"])
    print(f"# probe + analyses, 32-token sentence, {datetime.date.today()}, {machine()}")
    speed(names, args.repeat)
    if not args.no_memory:
        print()
        print(
            "# training-step memory, batch 8, seq 128, AdamW, CPU (measured: "
            "TorchDispatchMode live bytes)"
        )
        memory(["bert-tiny", "albert-tiny", "bert-mini", "albert-mini"])


if __name__ == "__main__":
    main()
