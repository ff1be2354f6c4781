"""Forward pass: BertScope's engine vs transformers on the same weights and inputs (CPU).

Rows: mini and base presets of both families x batch {1, 32} x sequence {32, 128} x with or
without attention output. transformers runs eager attention when attentions are returned and
SDPA otherwise (its fastest path for each case). Ratio = ours / theirs (lower is better).

    python benchmarks/bench_forward.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime

import torch

from benchmarks.common import machine, median_ms, random_preset, transformers_twin


def time_both(
    ours_model, theirs_model, inputs, attentions: bool, repeat: int
) -> tuple[float, float]:
    """Median ms of our forward and transformers' on the same inputs."""
    ids, mask, types = inputs
    ours = median_ms(
        lambda: ours_model(ids, mask, types, output_attentions=attentions), repeat=repeat, warmup=1
    )
    theirs = median_ms(
        lambda: theirs_model(
            input_ids=ids,
            attention_mask=mask,
            token_type_ids=types,
            output_attentions=attentions,
            output_hidden_states=True,
        ),
        repeat=repeat,
        warmup=1,
    )
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="mini presets only, fewer repeats")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    names = ["bert-mini", "albert-mini"] + ([] if args.quick else ["bert-base", "albert-base"])
    print(f"# forward pass, {datetime.date.today()}, {machine()}")
    print("| model | batch | seq | attentions | ours ms | transformers ms | ratio |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name in names:
        loaded = random_preset(name)
        eager = transformers_twin(loaded, "eager")
        sdpa = transformers_twin(loaded, "sdpa")
        for batch in (1, 32):
            for seq in (32, 128):
                ids = torch.randint(5, loaded.config.vocab_size, (batch, seq))
                mask = torch.ones_like(ids)
                types = torch.zeros_like(ids)
                work = batch * seq * loaded.config.hidden_size
                repeat = (
                    3
                    if work > 32 * 128 * 256
                    else (5 if args.quick or work > 32 * 32 * 256 else 15)
                )
                for attentions in (False, True):
                    ours, theirs = time_both(
                        loaded.model,
                        eager if attentions else sdpa,
                        (ids, mask, types),
                        attentions,
                        repeat,
                    )
                    print(
                        f"| {name} | {batch} | {seq} | {'yes' if attentions else 'no'} | "
                        f"{ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
