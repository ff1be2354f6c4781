"""Training throughput: our trainer step vs transformers' *ForPreTraining, same everything.

Both sides get the same config (the mini presets with their full vocabularies), the same
initial weights, the same batches from ``core.data`` (batch 32 x 128 by default), the same
fused AdamW with the same parameter groups, gradient clipping and schedule, and the same
precision. Ours is ``Trainer.train_step``: the vocabulary projection runs only on the ~15% of
positions that carry a label (``mlm_positions``) and Q, K, V come from one fused matmul;
transformers decodes every position and projects Q, K, V separately. Steps are timed in
alternation (ours, theirs, ours, ...) so a busy spell on a shared machine hits both alike;
the table shows medians.

MFU = model FLOPs per second / the machine's measured matmul peak, where *model FLOPs* are
what the pretraining objective needs (forward + backward = 3 x forward; attention included;
the MLM head on the masked positions only), the same number for both implementations.
*Executed* FLOPs count what each implementation actually computes (transformers' head on every
position), so HFU = executed FLOPs per second / peak.

    python -m benchmarks.bench_training [--batch 32] [--seq 128] [--steps 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine
from core.config import PRESETS, ModelConfig
from core.precision import autocast as precision_autocast
from core.tokenizer_train import train_tokenizer
from core.training import TrainConfig, build_optimizer, prepare_training, warmup_linear
from core.training import run_checkpoints as ckpt

CORPUS = Path(__file__).resolve().parent.parent / "resources" / "corpus" / "heldout.txt"


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeat: int = 5) -> float:
    """Best FLOP/s of an n x n matmul with the current torch threads."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def forward_flops(config: ModelConfig, batch, head_rows: int) -> float:
    """Forward FLOPs of a batch; ``head_rows`` = rows the MLM head decodes."""
    B, T = batch.input_ids.shape
    H, I, V, E = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
        config.embedding_dim,
    )
    tokens = B * T
    layer = 2 * tokens * (3 * H * H + H * H + 2 * H * I) + 2 * 2 * B * T * T * H
    flops = config.effective_layers * layer
    if config.model_type == "albert":
        flops += 2 * tokens * E * H  # E -> H projection
    flops += 2 * B * (H * H + 2 * H)  # pooler and NSP/SOP classifier
    head = H * H if config.model_type == "bert" else H * E
    flops += 2 * head_rows * (head + E * V)
    return float(flops)


def hf_step(model, optimizer, scheduler, batch, arch: str, max_grad_norm: float, autocast):
    labels = torch.full_like(batch.input_ids, -100)
    labels[batch.mlm_positions] = batch.mlm_labels
    sentence = "next_sentence_label" if arch == "bert" else "sentence_order_label"
    with autocast():
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
            labels=labels,
            **{sentence: batch.sentence_labels},
        )
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return out.loss.item()


def bench(arch: str, args, tokenizer, work: Path) -> dict:
    import transformers

    preset_name = f"{arch}-{args.size}"
    vocab = PRESETS[preset_name].vocab_size  # the preset's full vocabulary, as transformers'
    config = TrainConfig(
        arch=arch,
        preset=preset_name,
        steps=10_000,
        batch_size=args.batch,
        seq_len=args.seq,
        lr=1e-4,
        warmup=0,
        device="cpu",
        precision=args.precision,
        heldout_every=0,
        config_overrides={
            "vocab_size": vocab,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "classifier_dropout_prob": 0.0,
        },
    )
    trainer = prepare_training(config, [CORPUS], tokenizer=tokenizer)
    folder = ckpt.write_model_folder(work / arch, trainer.model, trainer.model.config, tokenizer)
    cls = transformers.BertForPreTraining if arch == "bert" else transformers.AlbertForPreTraining
    ref = cls.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32).train()
    opt = build_optimizer(
        ref, "adamw", config.lr, config.weight_decay, config.adam_betas, config.adam_eps
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_linear(s, 0, config.steps))
    batches = [next(trainer._batches)[0][0] for _ in range(args.steps + 1)]
    precision = trainer.precision

    def autocast():
        return precision_autocast(torch.device("cpu"), precision)

    ours_t, theirs_t = [], []
    trainer.train_step([batches[0]])  # warm-up (allocations, kernel choice)
    hf_step(ref, opt, sched, batches[0], arch, config.max_grad_norm, autocast)
    for _ in range(args.repeat):
        start = time.perf_counter()
        for b in batches[1:]:
            trainer.train_step([b])
        ours_t.append((time.perf_counter() - start) / args.steps)
        start = time.perf_counter()
        for b in batches[1:]:
            hf_step(ref, opt, sched, b, arch, config.max_grad_norm, autocast)
        theirs_t.append((time.perf_counter() - start) / args.steps)
    mc = trainer.model.config
    tokens = statistics.mean(b.n_tokens for b in batches[1:])
    model_flops = statistics.mean(3 * forward_flops(mc, b, b.n_masked) for b in batches[1:])
    hf_flops = statistics.mean(3 * forward_flops(mc, b, b.input_ids.numel()) for b in batches[1:])
    masked = statistics.mean(b.n_masked / b.input_ids.numel() for b in batches[1:])
    ours, theirs = statistics.median(ours_t), statistics.median(theirs_t)
    return {
        "arch": preset_name,
        "vocab": vocab,
        "masked_share": masked,
        "tokens": tokens,
        "ours_s": ours,
        "theirs_s": theirs,
        "model_flops": model_flops,
        "hf_flops": hf_flops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--size", default="mini", help="preset size: tiny, mini, small, base")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--arch", nargs="+", default=["bert", "albert"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = matmul_peak(dtype)
    print(f"machine: {machine()}")
    print(f"measured {args.precision} matmul peak (2048^3): {peak / 1e9:.1f} GFLOP/s")
    print(
        f"batch {args.batch} x {args.seq}, fused AdamW, grad clipping 1.0, {args.precision}, "
        f"{args.steps} steps x {args.repeat} alternating rounds (medians)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for arch in args.arch:
            tokenizer = train_tokenizer(
                [CORPUS], arch, vocab_size=8000, max_length=max(args.seq, 512)
            )
            r = bench(arch, args, tokenizer, work)
            rows.append(r)
            start_peak = matmul_peak(dtype)  # re-measured: the machine may be busier now
            r["peak"] = max(peak, start_peak)
    header = (
        "| model | vocab | masked | ours tok/s | transformers tok/s | speed-up | ours step ms "
        "| transformers step ms | MFU ours | MFU transformers | HFU transformers |"
    )
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        ours_tps, theirs_tps = r["tokens"] / r["ours_s"], r["tokens"] / r["theirs_s"]
        print(
            f"| {r['arch']} | {r['vocab']} | {r['masked_share']:.1%} | {ours_tps:,.0f} | "
            f"{theirs_tps:,.0f} | {ours_tps / theirs_tps:.2f}x | {r['ours_s'] * 1e3:,.0f} | "
            f"{r['theirs_s'] * 1e3:,.0f} | {r['model_flops'] / r['ours_s'] / r['peak']:.1%} | "
            f"{r['model_flops'] / r['theirs_s'] / r['peak']:.1%} | "
            f"{r['hf_flops'] / r['theirs_s'] / r['peak']:.1%} |"
        )
    print(f"\npeak used for MFU/HFU: {max(r['peak'] for r in rows) / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
