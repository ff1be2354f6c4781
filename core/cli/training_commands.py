"""``python -m core train`` and ``python -m core eval``: pretraining from the command line.

``train`` checks every setting and file first, then shows a progress line on stderr (redrawn
in place on a terminal, one line every few seconds in a log file) and a summary at the end.
Ctrl-C (or SIGTERM, which the window sends for Pause/Stop) stops at the next step boundary
and saves a checkpoint that ``--resume`` continues; a second one aborts at once. Under
``torchrun`` only rank 0 prints.

``--events jsonl`` is the machine-readable contract the window's Train view reads: every
:class:`ProgressEvent` (``prepare``, ``step``, ``eval``, ``checkpoint``, ``done``,
``cancelled``, ``error``) is one JSON line on stdout, flushed per line, and everything meant
for a person goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path

import torch

from core.atomic import write_text_atomic
from core.cli.model_commands import add_tokenizer_mismatch_option, print_warnings
from core.config import PRESETS, SENTENCE_OBJECTIVES
from core.data.sentence_tasks import SENTENCE_TASKS
from core.device import describe_device, startup_summary
from core.errors import BertScopeError, InputError
from core.loaded_model import load_model
from core.output_paths import check_output_file, check_output_folder
from core.precision import PRECISION_CHOICES
from core.timefmt import format_duration
from core.training import OPTIMIZERS
from core.training import run_checkpoints as ckpt
from core.training.config import SAVE_DTYPES, TrainConfig, model_sizes_from_file
from core.training.distributed import init_distributed, shutdown
from core.training.sentence_eval import score_sentence_files
from core.training.setup import (
    RunFinished,
    evaluate_model,
    find_resume_checkpoint,
    prepare_training,
    saved_run_settings,
)
from core.training.trainer import EVAL_SEED_OFFSET, EvalMetrics, ProgressEvent

log = logging.getLogger(__name__)

_EVAL_EXAMPLES = TrainConfig.__dataclass_fields__["eval_examples"].default  # no check at import

# CLI option -> TrainConfig field, for options that map one to one.
_FIELDS = {
    "arch": "arch",
    "preset": "preset",
    "sentence_objective": "sentence_objective",
    "steps": "steps",
    "batch_size": "batch_size",
    "seq_len": "seq_len",
    "lr": "lr",
    "warmup": "warmup",
    "optimizer": "optimizer",
    "grad_accum": "grad_accum",
    "device": "device",
    "precision": "precision",
    "vocab_size": "vocab_size",
    "eval_every": "eval_every",
    "save_every": "save_every",
    "seed": "seed",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "max_positions": "max_positions",
    "save_dtype": "save_dtype",
    "eval_examples": "eval_examples",
    "keep_checkpoints": "keep_checkpoints",
    "init_from": "init_from",
    "compile": "compile",
    "tf32": "tf32",
    "log_every": "log_every",
    "data_workers": "data_workers",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="pretrain a BERT (MLM+NSP) or ALBERT (MLM+SOP) model on text files",
        description="Pretrain from plain text: one document per blank-line-separated block, "
        "one sentence per line. Also runs under torchrun --nproc_per_node N.",
    )
    train.add_argument(
        "--arch", choices=("bert", "albert"), help="model family (required unless resuming)"
    )
    train.add_argument(
        "--preset", metavar="NAME", help=f"size preset (default ARCH-mini): {', '.join(PRESETS)}"
    )
    train.add_argument(
        "--sentence-objective",
        choices=SENTENCE_OBJECTIVES,
        help="the sentence loss beside MLM, in either family: nsp, sop or none (MLM alone); "
        "default the family's own (NSP for BERT, SOP for ALBERT)",
    )
    train.add_argument(
        "--config-file",
        metavar="TRAIN_JSON",
        help="the run's settings from a JSON file (TrainConfig.save writes one; the window "
        "writes OUT/train_config.json): the options below, given beside it, override its "
        "values; a key that is not a setting is refused; not with --resume, which keeps the "
        "settings its checkpoint saved",
    )
    train.add_argument(
        "--corpus", nargs="+", required=True, metavar="FILE", help="UTF-8 training text files"
    )
    train.add_argument(
        "--eval-corpus",
        nargs="+",
        metavar="FILE",
        help="held-out text files (default: every 50th document of the corpus is held out)",
    )
    train.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: checkpoint-N/, final/, train_log.jsonl",
    )
    train.add_argument("--steps", type=int, help="optimizer steps (default 1000)")
    train.add_argument(
        "--batch-size", type=int, help="sequences per micro-batch and process (default 32)"
    )
    train.add_argument("--seq-len", type=int, help="sequence length in tokens (default 128)")
    train.add_argument("--lr", type=float, help="peak learning rate (default 5e-4)")
    train.add_argument("--warmup", type=int, help="warm-up steps (default 5%% of --steps)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="adamw (default) or lamb")
    train.add_argument("--grad-accum", type=int, help="micro-batches per step (default 1)")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    train.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        help="auto (default): bf16 on GPUs that support it, else fp16 on GPU; fp32 on CPU/MPS",
    )
    train.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model (GPUs: faster after the first steps compile)",
    )
    train.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help="steps between reads of the losses from the GPU (default 1 on CPU, 10 on GPUs; "
        "each read waits for the GPU)",
    )
    train.add_argument(
        "--data-workers",
        type=int,
        metavar="N",
        help="processes that build batches ahead (default 0 on CPU/MPS, up to 4 on CUDA)",
    )
    train.add_argument(
        "--no-tf32",
        dest="tf32",
        action="store_false",
        default=None,
        help="exact fp32 matmuls on Ampere+ GPUs (default: TF32 for --precision fp32)",
    )
    train.add_argument(
        "--vocab-size",
        type=int,
        help="tokenizer size when it is trained from the corpus (default 8000)",
    )
    train.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="use this tokenizer.json (or a folder holding one) instead of training one",
    )
    train.add_argument(
        "--eval-every", type=int, help="steps between evaluations (default: only at the end)"
    )
    train.add_argument(
        "--eval-examples", type=int, help="held-out sequences per evaluation (default 1000)"
    )
    train.add_argument(
        "--save-every", type=int, help="steps between checkpoints (default: only at the end)"
    )
    train.add_argument(
        "--config",
        metavar="CONFIG_JSON",
        help="model sizes from a config.json (e.g. saved from the Compare tab's calculator): "
        "its fields replace the preset's; the vocabulary stays the tokenizer's",
    )
    train.add_argument("--keep-checkpoints", type=int, help="newest checkpoints kept (default 2)")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--weight-decay", type=float, help="default 0.01")
    train.add_argument("--max-grad-norm", type=float, help="gradient clipping (default 1.0; 0 off)")
    train.add_argument(
        "--dropout",
        type=float,
        help="hidden, attention and classifier "
        "dropout (default: the preset's: 0.1 for BERT, 0 for ALBERT but 0.1 "
        "before its SOP classifier)",
    )
    train.add_argument(
        "--max-positions",
        type=int,
        help="override the preset's max_position_embeddings (e.g. = --seq-len for a smaller model)",
    )
    train.add_argument(
        "--save-dtype",
        choices=tuple(SAVE_DTYPES),
        help="weights of final/ (default float32; float16 halves the file)",
    )
    train.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this model folder's weights and tokenizer with a fresh optimizer and "
        "schedule (continued pretraining, e.g. a second phase at a longer --seq-len)",
    )
    train.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue the newest checkpoint in --out (or the one given)",
    )
    train.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's; 1 is often faster on a busy machine)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.add_argument(
        "--events",
        choices=("jsonl",),
        help="jsonl: every progress event as one JSON line on stdout (all other output on "
        "stderr), for programs that drive training",
    )
    train.set_defaults(func=run_train)

    ev = subparsers.add_parser(
        "eval", help="held-out MLM accuracy/perplexity and NSP/SOP accuracy of a model"
    )
    ev.add_argument("model", help="Hugging Face-format BERT/ALBERT folder")
    ev.add_argument("--corpus", nargs="+", required=True, metavar="FILE", help="UTF-8 text files")
    ev.add_argument(
        "--seq-len",
        type=int,
        help="sequence length (default: the run's --seq-len for a folder `train` wrote, else 128)",
    )
    ev.add_argument(
        "--batch-size", type=int, help="default: the run's evaluation batch size, else 32"
    )
    ev.add_argument(
        "--max-examples",
        type=int,
        help=f"sequences scored, the first N (default: the run's --eval-examples, as `train`'s "
        f"held-out evaluation scores, else {_EVAL_EXAMPLES})",
    )
    ev.add_argument(
        "--seed",
        type=int,
        help=f"masking/pairing seed (default: the run's --seed + {EVAL_SEED_OFFSET}, as "
        f"`train`'s evaluation, else {EVAL_SEED_OFFSET})",
    )
    ev.add_argument(
        "--task",
        choices=(*SENTENCE_TASKS, "all"),
        help="also score sentence tasks built from the text (fixed seed, 50/50): nsp (negative "
        "from another document), sop (swapped), hard-nsp (negative from the same document "
        "--distance sentences away), all; zero-shot through the model's own sentence head "
        "and with a linear probe on the pooled output",
    )
    ev.add_argument(
        "--probe-examples",
        type=int,
        default=256,
        help="pairs the linear probe trains on, and as many it is scored on (default 256)",
    )
    ev.add_argument(
        "--distance",
        type=int,
        default=3,
        help="hard-NSP: sentences between A and its negative, at least (default 3)",
    )
    ev.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    ev.add_argument("--precision", choices=PRECISION_CHOICES, default="auto")
    add_tokenizer_mismatch_option(ev)
    ev.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    ev.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the scores as JSON instead (or, given FILE, also write them there)",
    )
    ev.set_defaults(func=run_eval)


# -- train ---------------------------------------------------------------------------------------
def _config_from_args(args: argparse.Namespace, saved: dict | None) -> TrainConfig:
    """The run's settings, each layer over the one before: TrainConfig's defaults, then the
    checkpoint's saved settings (``--resume``) or the ``--config-file``, then the options."""
    data = dict(saved) if saved else {}
    if saved and args.arch and args.arch != saved.get("arch"):
        raise InputError(f"--arch {args.arch} but the checkpoint is a {saved.get('arch')} run")
    if getattr(args, "config_file", None):
        if saved:
            raise InputError(
                "--config-file starts a new run; --resume continues with the settings its "
                "checkpoint saved (drop --config-file)"
            )
        data = TrainConfig.load(args.config_file).to_dict()
    for option, name in _FIELDS.items():
        value = getattr(args, option, None)
        if value is not None:
            data[name] = value
    if getattr(args, "config", None):
        if saved:
            raise InputError("--config starts a new run; a resumed run keeps its model sizes")
        arch = data.get("arch")
        if not arch:
            raise InputError("--arch is required (bert or albert)")
        data["config_overrides"] = {
            **data.get("config_overrides", {}),
            **model_sizes_from_file(args.config, arch),
        }
    if getattr(args, "dropout", None) is not None:
        if not 0.0 <= args.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {args.dropout}")
        data["config_overrides"] = {
            **data.get("config_overrides", {}),
            "hidden_dropout_prob": args.dropout,
            "attention_probs_dropout_prob": args.dropout,
            "classifier_dropout_prob": args.dropout,  # ALBERT's SOP head
        }
    if "arch" not in data:
        raise InputError("--arch is required (bert or albert)")
    return TrainConfig.from_dict(data)  # checked as it is made


def _heldout_files(args: argparse.Namespace, config: TrainConfig) -> str:
    """The text the run's held-out examples come from."""
    if args.eval_corpus:
        return _file_names(args.eval_corpus)
    return f"every {config.heldout_every}th document of {_file_names(args.corpus)}"


class ProgressPrinter:
    """A progress line on stderr: redrawn in place on a terminal, else every ``period`` s."""

    def __init__(self, stream=None, period: float = 10.0):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.period = period
        self._last = 0.0

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.kind == "prepare":
            # Phase starts and ends get a line; the percentages between only on a terminal.
            if ev.fraction is None or ev.fraction in (0.0, 1.0):
                self.stream.write(("\r\x1b[2K" if self.tty else "") + f"{ev.message}\n")
            elif self.tty:
                self.stream.write(f"\r\x1b[2K{ev.message}")
        elif ev.kind == "step":
            now = time.monotonic()
            if not self.tty and now - self._last < self.period and ev.step != ev.total_steps:
                return
            self._last = now
            frac = ev.step / ev.total_steps
            bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
            losses = " ".join(f"{k} {v:.3f}" for k, v in ev.losses.items() if k != "total")
            mem = f" | {ev.memory_bytes / 2**20:,.0f} MiB" if ev.memory_bytes else ""
            line = (
                f"step {ev.step}/{ev.total_steps} [{bar}] {frac:4.0%} | loss "
                f"{ev.losses.get('total', float('nan')):.3f} ({losses}) | lr {ev.lr:.2e} | "
                f"{ev.tokens_per_s:,.0f} tok/s | epoch {ev.epoch:.2f} | "
                f"{format_duration(ev.elapsed_s)} < {format_duration(ev.eta_s)}{mem}"
            )
            if self.tty:
                self.stream.write("\r\x1b[2K" + line)
            else:
                self.stream.write(line + "\n")
        elif ev.kind == "eval" and ev.metrics is not None:
            self._newline()
            self.stream.write(f"eval at step {ev.step}: {format_metrics(ev.metrics)}\n")
        elif ev.kind in ("checkpoint", "cancelled") and ev.checkpoint:
            self._newline()
            what = "saved" if ev.kind == "checkpoint" else "cancelled; saved"
            self.stream.write(f"{what} {ev.checkpoint}\n")
        elif ev.kind == "done":
            self._newline()
        self.stream.flush()

    def _newline(self) -> None:
        if self.tty:
            self.stream.write("\n")


def format_metrics(m: EvalMetrics) -> str:
    """Held-out scores in the units ``eval`` prints too: accuracy in %, perplexity as a
    number, losses in nats (natural-log cross-entropy)."""
    text = (
        f"MLM accuracy {m.mlm_accuracy:.2%}, perplexity {m.perplexity:,.2f} "
        f"(loss {m.mlm_loss:.4f} nats)"
    )
    if m.sentence_task:
        text += (
            f", {m.sentence_task.upper()} accuracy {m.sentence_accuracy:.2%} "
            f"(loss {m.sentence_loss:.4f} nats)"
        )
    return text + f"; {m.n_sequences} sequences, {m.n_masked} masked tokens"


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


class JsonlEvents:
    """``--events jsonl``: each event as one JSON line on ``stream`` (stdout), flushed."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout

    def __call__(self, ev: ProgressEvent) -> None:
        self.stream.write(json.dumps(ev.to_dict(), allow_nan=False) + "\n")
        self.stream.flush()


def run_train(args: argparse.Namespace) -> int:
    events = JsonlEvents() if getattr(args, "events", None) == "jsonl" else None
    try:
        return _run_train(args, events)
    except BertScopeError as err:
        # The same one line the CLI prints as "error: ..." (core.cli.main), for the window.
        if events is not None:
            events(ProgressEvent.note("error", str(err)))
        raise
    except KeyboardInterrupt:
        if events is not None:
            events(ProgressEvent.note("error", "interrupted"))
        raise


def _run_train(args: argparse.Namespace, events: JsonlEvents | None) -> int:
    _set_threads(args.threads)
    out = check_output_folder(args.out)
    saved = None
    if args.resume:
        folder = find_resume_checkpoint(out, args.resume)
        saved = ckpt.load_training_args(folder).get("train")
    config = _config_from_args(args, saved)
    ctx, device = init_distributed(config.device)
    # SIGTERM (the window's Pause/Stop) is a Ctrl-C: during set-up it stops at once (nothing
    # to save yet); once training runs, it finishes the step, saves a checkpoint and stops.
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stop_signals}
    trainer = None

    def on_interrupt(signum, frame):
        if trainer is None or trainer.cancelled:
            raise KeyboardInterrupt
        trainer.cancel()
        sys.stderr.write("\nstopping at the end of this step (Ctrl-C again to abort)\n")

    for sig in stop_signals:
        signal.signal(sig, on_interrupt)
    try:
        show = ctx.is_main and not args.quiet
        emit = events if ctx.is_main else None
        printer = ProgressPrinter() if show else None
        listeners = [f for f in (emit, printer) if f is not None]

        said_device = not show

        def say_device() -> None:
            # The torch build and device first, before set-up's lines (README "GPU"); once
            # the settings and files passed, so a bad one is still a one-line error.
            nonlocal said_device
            if not said_device:
                said_device = True
                sys.stderr.write(startup_summary(device) + "\n")
                sys.stderr.flush()

        def on_prepare(ev: ProgressEvent) -> None:
            say_device()
            for listener in listeners:
                listener(ev)

        try:
            trainer = prepare_training(
                config,
                args.corpus,
                args.eval_corpus,
                tokenizer=args.tokenizer,
                out_dir=out,
                resume=args.resume,
                ctx=ctx,
                device=device,
                on_progress=on_prepare,
            )
        except RunFinished as done:
            # Not an error: nothing to do. Said once, on stderr (and as a "prepare" note).
            if ctx.is_main:
                if emit is not None:
                    emit(ProgressEvent.note("prepare", str(done), 1.0, config.steps))
                sys.stderr.write(f"{done}\n")
            return 0
        if emit is not None:
            trainer.add_listener(emit)
        if show:
            say_device()
            n_params = sum(p.numel() for p in trainer.model.parameters())
            sys.stderr.write(
                f"training {config.preset} ({n_params / 1e6:.2f}M parameters, vocabulary "
                f"{trainer.model.config.vocab_size}) on {describe_device(device)} x "
                f"{ctx.world_size}, precision {trainer.precision}, global batch "
                f"{config.batch_size * config.grad_accum * ctx.world_size} x {config.seq_len}"
                + (f", resuming at step {trainer.step}" if trainer.step else "")
                + "\n"
            )
            trainer.add_listener(printer)
        result = trainer.run()
        if ctx.is_main:
            lines = [
                "",
                f"{'stopped' if result.cancelled else 'finished'} after {result.steps} steps, "
                f"{result.tokens_seen:,} tokens, {format_duration(result.elapsed_s)}",
            ]
            if result.final_losses:
                lines.append(
                    "final losses (last step, nats): "
                    + ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items())
                )
            if result.metrics is not None:
                lines.append("held-out: " + format_metrics(result.metrics))
                lines.append(
                    heldout_line(
                        result.metrics.n_sequences,
                        config.eval_examples,
                        _heldout_files(args, config),
                        config.seed + EVAL_SEED_OFFSET,
                    )
                )
            if result.final_model is not None:
                lines.append(f"model: {result.final_model}")
            if result.checkpoint is not None:
                lines.append(f"checkpoint (for --resume): {result.checkpoint}")
            # With --events, stdout carries only the JSON lines.
            print("\n".join(lines), file=sys.stderr if events is not None else sys.stdout)
        return 130 if result.cancelled else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutdown(ctx)


# -- eval ----------------------------------------------------------------------------------------
def heldout_line(n_sequences: int, cap: int | None, files: str, seed: int) -> str:
    """Which examples were scored, in the words ``train`` and ``eval`` both print."""
    which = "the first" if cap is not None and n_sequences >= cap else "all"
    return f"held-out examples: {which} {n_sequences} sequences of {files}, seed {seed}"


def _file_names(paths: list[str]) -> str:
    return ", ".join(str(p) for p in paths)


def run_eval(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    # A folder `train` wrote: by default the examples its held-out evaluation scored.
    run = saved_run_settings(args.model)

    def given_or(value, default):
        return default if value is None else value

    seq_len = given_or(args.seq_len, run.seq_len if run else 128)
    batch_size = given_or(args.batch_size, (run.eval_batch_size or run.batch_size) if run else 32)
    max_examples = given_or(args.max_examples, run.eval_examples if run else _EVAL_EXAMPLES)
    seed = given_or(args.seed, (run.seed if run else 0) + EVAL_SEED_OFFSET)
    model = args.model
    if args.task is not None:
        if args.probe_examples < 2:
            raise InputError(f"--probe-examples must be >= 2, got {args.probe_examples}")
        if args.distance < 1:
            raise InputError(f"--distance must be >= 1 sentence, got {args.distance}")
        model = load_model(
            args.model, device=args.device, allow_tokenizer_mismatch=args.allow_tokenizer_mismatch
        )
    metrics = evaluate_model(
        model,
        args.corpus,
        seq_len=seq_len,
        batch_size=batch_size,
        max_examples=max_examples,
        seed=seed,
        precision=args.precision,
        device=args.device,
        allow_tokenizer_mismatch=args.allow_tokenizer_mismatch,
        on_warning=lambda w: print_warnings((w,)),
    )
    scored = heldout_line(metrics.n_sequences, max_examples, _file_names(args.corpus), seed)
    tasks = []
    if args.task is not None:
        tasks = score_sentence_files(
            model,
            args.corpus,
            SENTENCE_TASKS if args.task == "all" else (args.task,),
            n_train=args.probe_examples,
            n_test=args.probe_examples,
            seq_len=seq_len,
            min_distance=args.distance,
            batch_size=batch_size,
        )
    if args.json is not None:
        text = json.dumps(
            {
                "model": str(args.model),
                **metrics.to_dict(),
                "corpus": [str(p) for p in args.corpus],
                "max_examples": max_examples,
                "seed": seed,
                "seq_len": seq_len,
                "sentence_tasks": [t.to_dict() for t in tasks],
            },
            indent=2,
        )
        if args.json == "-":
            print(text)
            print(scored, file=sys.stderr)
            return 0
        write_text_atomic(Path(args.json), text + "\n")
        print(f"wrote {args.json}")
    # The units of `train`'s held-out line: accuracy in %, losses in nats.
    print(f"model: {args.model}")
    print(scored)
    print(f"MLM accuracy:   {metrics.mlm_accuracy:.2%}")
    print(f"MLM perplexity: {metrics.perplexity:,.2f}  (loss {metrics.mlm_loss:.4f} nats)")
    if metrics.sentence_task:
        print(
            f"{metrics.sentence_task.upper()} accuracy:   {metrics.sentence_accuracy:.2%}"
            f"  (loss {metrics.sentence_loss:.4f} nats)"
        )
    print(f"sequences: {metrics.n_sequences}, masked tokens: {metrics.n_masked}")
    for t in tasks:
        head = f"{t.zero_shot:.2%} zero-shot ({t.head.upper()} head)" if t.head else "no head"
        print(
            f"{t.task.upper():<9} {head}, {t.probe:.2%} linear probe "
            f"({t.n_train} train / {t.n_test} test pairs)"
        )
    return 0
