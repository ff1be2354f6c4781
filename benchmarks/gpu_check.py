"""The GPU check: one prepared script that says whether BertScope is right and fast on a CUDA GPU.

    python benchmarks/gpu_check.py                 # about 8 minutes on one H100/H200
    python benchmarks/gpu_check.py --dry-run       # the same code paths on the CPU, tiny sizes

1. **Build and device**: which torch build, which GPU, what ``auto`` precision picks there.
2. **Parity, fp32, TF32 off**: the demo bert-mini and albert-mini against transformers on the
   GPU (every hidden state, attention map and head's logits; tolerance 1e-4 on a GPU, whose
   reduction orders differ from the CPU's, 1e-5 on the CPU).
3. **Training speed**: bert-mini/albert-mini and bert-base/albert-base (full vocabularies),
   ``--steps`` steps each at batch 256 x 128 in bf16, eager and ``torch.compile``: tokens/s,
   MFU (model FLOPs per second over the GPU's dense bf16 peak: the table below by device name,
   or ``--peak-tflops``), peak memory against the memory model (``core.cost.memory``).
   **Goal: >= 45% MFU for bert-base at 256 x 128 bf16.**
4. **Resume on the GPU**: a run cancelled half-way and resumed gives the losses of the
   uninterrupted run (dropout on, its RNG restored from the checkpoint).
5. **Probe**: a sentence with attentions on the GPU equals the CPU's.

It prints one table per section and ends with PASS/FAIL lines; exit status 1 if a check
failed. ``--dry-run`` uses tiny models, few steps and fp32 on the CPU, the compiled run with
torch.compile's "eager" backend (same tracing, no code generation); it is what the test suite
runs (``tests/core/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_training import forward_flops  # noqa: E402
from core.analysis.probe import probe  # noqa: E402
from core.config import PRESETS  # noqa: E402
from core.cost.memory import training_memory  # noqa: E402
from core.device import (  # noqa: E402
    cuda_unavailable_reason,
    describe_device,
    resolve_device,
    startup_summary,
    torch_build,
)
from core.errors import InputError  # noqa: E402
from core.loaded_model import load_model  # noqa: E402
from core.precision import resolve_precision  # noqa: E402
from core.tokenizer import load_tokenizer  # noqa: E402
from core.training import TrainConfig, Trainer, prepare_data, prepare_training  # noqa: E402
from core.training.setup import build_pretraining_model  # noqa: E402

MODELS = ROOT / "resources" / "models"
CORPUS = ROOT / "resources" / "corpus"
GOAL_MFU = 0.45  # bert-base, 256 x 128, bf16

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets; the
# longest name contained in torch.cuda.get_device_name() wins ("H100 PCIe" before "H100").
PEAK_BF16_TFLOPS = {
    "B200": 2250.0,
    "H200": 989.0,
    "GH200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H800": 989.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
    "RTX A6000": 155.0,
}


@dataclasses.dataclass
class Outcome:
    name: str
    ok: bool
    detail: str


def peak_flops(device: torch.device, given_tflops: float | None) -> tuple[float | None, str]:
    """(FLOP/s, where the figure comes from)."""
    if given_tflops:
        return given_tflops * 1e12, "--peak-tflops"
    if device.type != "cuda":
        return None, "none on the CPU (pass --peak-tflops for an MFU)"
    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_BF16_TFLOPS[key] * 1e12, f"table ({key})"
    return None, f"{name} not in the table: pass --peak-tflops"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def exact_fp32() -> None:
    """No TF32 anywhere: parity and resume compare fp32 numbers."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


# -- 2. parity ------------------------------------------------------------------------------
def check_parity(device: torch.device, tol: float) -> list[Outcome]:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    exact_fp32()
    out = []
    text = [
        "the captain of the ship [MASK] the old harbour before dawn .",
        "she read the letter twice and put it away .",
    ]
    for name in ("bert-mini", "albert-mini"):
        folder = MODELS / name
        loaded = load_model(folder, device=device)
        ref = transformers.AutoModelForPreTraining.from_pretrained(
            folder, attn_implementation="eager", dtype=torch.float32
        )
        ref = ref.to(device).eval()
        enc = [loaded.encode(t) for t in text]
        width = max(len(e) for e in enc)
        ids = torch.zeros(len(enc), width, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(enc):
            n = len(e)
            ids[i, :n] = torch.tensor(e.input_ids)
            types[i, :n] = torch.tensor(e.token_type_ids)
            mask[i, :n] = 1
        inputs = {
            "input_ids": ids.to(device),
            "token_type_ids": types.to(device),
            "attention_mask": mask.to(device),
        }
        with torch.no_grad():
            theirs = ref(**inputs, output_hidden_states=True, output_attentions=True)
            ours = loaded.model(**inputs, output_attentions=True)
        sentence = "nsp_logits" if name.startswith("bert") else "sop_logits"
        pairs = [
            *zip(ours.hidden_states, theirs.hidden_states, strict=True),
            *zip(ours.attentions, theirs.attentions, strict=True),
            (ours.mlm_logits, theirs.prediction_logits),
            (
                getattr(ours, sentence),
                theirs.seq_relationship_logits if name.startswith("bert") else theirs.sop_logits,
            ),
        ]
        worst = max(float((a.float() - b.float()).abs().max()) for a, b in pairs)
        out.append(
            Outcome(
                f"parity {name} fp32 on {device.type}",
                worst <= tol,
                f"max |ours - transformers| = {worst:.2e} over {len(pairs)} tensors (tol {tol:g})",
            )
        )
        del loaded, ref
    return out


_DATA: dict = {}


# -- 3. training speed ------------------------------------------------------------------------
@dataclasses.dataclass
class SpeedRow:
    model: str
    mode: str
    tokens_per_s: float
    step_ms: float
    mfu: float | None
    peak_bytes: int | None
    model_bytes: int
    loss_first: float
    loss_last: float


class CountedFlops:
    """Wraps a trainer's batch source to add up each step's model FLOPs as it is fetched
    (the masked count, and so the decoder's cost, varies by step)."""

    def __init__(self, trainer: Trainer, config):
        self.per_step: list[float] = []
        self._source, self._config = trainer._batches, config
        trainer._batches = self

    def __iter__(self):
        return self

    def __next__(self):
        micro, position = next(self._source)
        self.per_step.append(sum(3 * forward_flops(self._config, b, b.n_masked) for b in micro))
        return micro, position

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def train_speed(
    preset: str,
    mode: str,
    args,
    device: torch.device,
    tokenizer_folder: Path,
    corpus: Path,
    peak: float | None,
) -> SpeedRow:
    arch = preset.split("-")[0]
    # The warm-up ends on a read (a multiple of the log interval): there the clock starts.
    warmup = -(-args.warmup_steps // args.log_every) * args.log_every
    tokenizer = load_tokenizer(tokenizer_folder, arch, PRESETS[preset].max_position_embeddings)
    # The preset's full vocabulary (as transformers' and the papers' models), at least the
    # tokenizer's; the dry run keeps the tokenizer's.
    vocab = tokenizer.vocab_size if args.dry_run else PRESETS[preset].vocab_size
    config = TrainConfig(
        arch=arch,
        preset=preset,
        steps=args.steps + warmup,
        log_every=args.log_every,
        batch_size=args.batch,
        seq_len=args.seq,
        lr=1e-4,
        warmup=0,
        device=str(device),
        precision=args.precision,
        heldout_every=0,
        compile=mode == "compile",  # the trainer's own path: fixed shapes, compiled forward
        config_overrides={"vocab_size": vocab},
    )
    key = (arch, config.seq_len)
    if key not in _DATA:  # tokenize the corpus once per family
        _DATA[key] = prepare_data(config, [corpus], tokenizer=tokenizer)
    data = _DATA[key]
    model = build_pretraining_model(config, config.model_config(data.tokenizer))
    compile_fn = torch.compile
    if args.compile_backend != "inductor":  # the dry run: tracing without code generation
        torch.compile = functools.partial(compile_fn, backend=args.compile_backend)
    try:
        trainer = Trainer(model, data.train, config, device=device)
    finally:
        torch.compile = compile_fn
    # The trainer's own loop (batches built ahead, numbers read every --log-every steps);
    # the clock runs from the read that ends the warm-up to the last read, both of which
    # wait for the GPU, so the interval is the GPU's time for the timed steps.
    step_flops = CountedFlops(trainer, model.config)
    losses, timed = [], {}
    for ev in trainer.events():
        if ev.kind != "step":
            continue
        losses.append(ev.losses["total"])
        if ev.step == warmup:
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            timed.update(start=time.perf_counter(), tokens=ev.tokens_seen)
    sync(device)
    elapsed = time.perf_counter() - timed["start"]
    tokens = trainer.tokens_seen - timed["tokens"]
    flops = sum(step_flops.per_step[warmup:])
    peak_bytes = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    modelled = training_memory(
        model,
        args.batch,
        args.seq,
        trainer.precision,
        "adamw",
        device="cuda" if device.type == "cuda" else "cpu",
    ).total
    row = SpeedRow(
        model=preset,
        mode=mode,
        tokens_per_s=tokens / elapsed,
        step_ms=elapsed / args.steps * 1e3,
        mfu=flops / elapsed / peak if peak else None,
        peak_bytes=peak_bytes,
        model_bytes=modelled,
        loss_first=losses[0],
        loss_last=losses[-1],
    )
    del trainer, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


# -- 4. resume ------------------------------------------------------------------------------
def check_resume(device: torch.device, args, corpus: Path, work: Path) -> Outcome:
    exact_fp32()
    tokenizer = load_tokenizer(MODELS / "bert-mini", "bert", 128)
    steps = args.resume_steps
    config = TrainConfig(
        arch="bert",
        preset="bert-mini" if not args.dry_run else "bert-tiny",
        steps=steps,
        batch_size=min(args.batch, 32),
        seq_len=min(args.seq, 128),
        lr=5e-4,
        warmup=2,
        device=str(device),
        precision="fp32",
        heldout_every=0,
        max_positions=128,
        config_overrides={"vocab_size": tokenizer.vocab_size},
    )

    def losses(out: Path, resume: bool = False, stop_at: int | None = None) -> dict[int, float]:
        trainer = prepare_training(
            config, [corpus], tokenizer=tokenizer, out_dir=out, resume=resume, device=device
        )
        seen = {}

        def listen(ev):
            if ev.kind == "step":
                seen[ev.step] = ev.losses["total"]
                if ev.step == stop_at:
                    trainer.cancel()

        trainer.add_listener(listen)
        trainer.run()
        return seen

    whole = losses(work / "whole")
    half = steps // 2
    first = losses(work / "split", stop_at=half)
    second = losses(work / "split", resume=True)
    # Asked to stop after step `half`, the run stops where it next reads its numbers back
    # (every --log-every steps on a GPU) and the resumed run continues from there.
    stopped = max(first)
    continues = min(second) == stopped + 1 and max(second) == steps
    worst = max(abs(second[s] - whole[s]) / abs(whole[s]) for s in second)
    tol = 1e-4 if device.type == "cuda" else 1e-6
    return Outcome(
        f"resume on {device.type}",
        continues and worst <= tol,
        f"steps {min(second)}-{max(second)} after resuming at {stopped}: max relative loss "
        f"difference {worst:.1e} from the uninterrupted run (tol {tol:g})",
    )


# -- 5. probe -------------------------------------------------------------------------------
def check_probe(device: torch.device, tol: float) -> Outcome:
    text = "the old sailor [MASK] the letter slowly ."
    here = probe(load_model(MODELS / "bert-mini", device=device), text)
    cpu = probe(load_model(MODELS / "bert-mini", device="cpu"), text)
    worst = float(abs(here.attentions - cpu.attentions).max())
    same_top = [m.tokens[0] for m in here.masked] == [m.tokens[0] for m in cpu.masked]
    return Outcome(
        f"probe with attentions on {device.type}",
        worst <= tol and same_top and here.attentions.shape == cpu.attentions.shape,
        f"attentions {here.attentions.shape}, max |{device.type} - cpu| = {worst:.1e}; "
        f"top guesses {[m.tokens[0] for m in here.masked]} (cpu: {[m.tokens[0] for m in cpu.masked]})",
    )


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f}"


def no_gpu_message(asked: str | None, err: InputError) -> str:
    """One line for a device the check cannot use: for the default (CUDA) on a machine without
    a visible CUDA device, what to run instead."""
    if asked is not None and not asked.startswith("cuda"):
        return str(err)
    if torch.cuda.is_available():  # CUDA works, but not the device asked for (cuda:N)
        return str(err)
    why = cuda_unavailable_reason()
    return (
        f"no CUDA device is visible ({torch_build()}{'; ' + why if why else ''}); this check "
        "needs a GPU: run `python benchmarks/gpu_check.py --dry-run` for the same code paths "
        "on the CPU at tiny sizes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--log-every", type=int, default=10, help="steps between reads")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--resume-steps", type=int, default=40)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["bert-mini", "albert-mini", "bert-base", "albert-base"],
    )
    args = parser.parse_args(argv)
    if args.dry_run:
        args.steps, args.warmup_steps, args.batch, args.seq = 4, 2, 4, 32
        args.log_every = 2
        args.precision, args.compile_backend, args.resume_steps = "fp32", "eager", 4
        args.models = ["bert-tiny", "albert-tiny"]
    try:
        device = resolve_device(args.device or ("cpu" if args.dry_run else "cuda"))
    except InputError as err:
        print(f"gpu_check: {no_gpu_message(args.device, err)}", file=sys.stderr)
        return 2
    corpus = CORPUS / ("heldout.txt" if args.dry_run else "train.txt")
    tol = 1e-5 if device.type == "cpu" else 1e-4
    outcomes: list[Outcome] = []

    print("== 1. build and device")
    print(startup_summary(device))
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        print(f"compute capability {major}.{minor}")
    print(f"auto precision on {describe_device(device)}: {resolve_precision('auto', device)}")
    peak, source = peak_flops(device, args.peak_tflops)
    print(f"bf16 peak: {f'{peak / 1e12:,.0f} TFLOP/s' if peak else '-'} ({source})")

    print("\n== 2. parity with transformers (fp32, TF32 off)")
    for o in check_parity(device, tol):
        outcomes.append(o)
        print(f"{o.name}: {o.detail}")

    print(
        f"\n== 3. training speed: batch {args.batch} x {args.seq}, {args.precision}, "
        f"{args.steps} timed steps after {args.warmup_steps}"
    )
    torch.backends.cuda.matmul.allow_tf32 = True  # speed runs: bf16 autocast anyway
    rows = []
    for name in args.models:
        arch = name.split("-")[0]
        for mode in ("eager", "compile"):
            row = train_speed(name, mode, args, device, MODELS / f"{arch}-mini", corpus, peak)
            rows.append(row)
            print(
                f"  {row.model} {row.mode}: {row.tokens_per_s:,.0f} tok/s, {row.step_ms:,.1f} "
                f"ms/step" + (f", MFU {row.mfu:.1%}" if row.mfu is not None else ""),
                flush=True,
            )
    print(
        "\n| model | mode | tokens/s | ms/step | MFU | peak MiB (measured) | peak MiB (model) "
        "| loss first → last |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.model} | {r.mode} | {r.tokens_per_s:,.0f} | {r.step_ms:,.1f} | "
            f"{'-' if r.mfu is None else f'{r.mfu:.1%}'} | {mib(r.peak_bytes)} | "
            f"{mib(r.model_bytes)} | {r.loss_first:.3f} → {r.loss_last:.3f} |"
        )
    for r in rows:
        outcomes.append(
            Outcome(
                f"training {r.model} {r.mode}",
                r.loss_last == r.loss_last and r.tokens_per_s > 0,
                f"finite loss {r.loss_last:.3f}",
            )
        )
        if r.peak_bytes is not None:
            ratio = r.peak_bytes / r.model_bytes
            outcomes.append(
                Outcome(
                    f"memory {r.model} {r.mode}",
                    0.7 <= ratio <= 1.3,
                    f"measured peak / modelled = {ratio:.2f} (within 0.7-1.3)",
                )
            )
    base = [r for r in rows if r.model == "bert-base" and r.mfu is not None]
    if base and args.batch == 256 and args.seq == 128 and args.precision == "bf16":
        best = max(base, key=lambda r: r.mfu)
        outcomes.append(
            Outcome(
                "goal: bert-base MFU",
                best.mfu >= GOAL_MFU,
                f"{best.mfu:.1%} ({best.mode}) against the goal {GOAL_MFU:.0%}",
            )
        )

    print("\n== 4. resume round trip")
    with tempfile.TemporaryDirectory() as tmp:
        o = check_resume(device, args, corpus, Path(tmp))
    outcomes.append(o)
    print(f"{o.name}: {o.detail}")

    print("\n== 5. probe")
    o = check_probe(device, tol)
    outcomes.append(o)
    print(f"{o.name}: {o.detail}")

    print("\n== summary")
    for o in outcomes:
        print(f"{'PASS' if o.ok else 'FAIL'} {o.name}: {o.detail}")
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
