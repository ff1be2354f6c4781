"""CLI commands of the analysis: ``compare`` and ``memory`` (``probe`` lives in
``core.cli.model_commands`` and calls :func:`probe_report` for its analysis output)."""

from __future__ import annotations

import argparse
import json

import torch

from core.choices import OPTIMIZERS, PRECISION_NAMES
from core.cli.model_commands import add_tokenizer_mismatch_option, load_for_cli
from core.config import PRESETS, preset
from core.cost.compare import compare, format_comparison, format_memory
from core.cost.measure import measure_inference_memory, measure_training_memory
from core.cost.memory import inference_memory, training_memory
from core.cost.tradeoff import default_seq
from core.device import resolve_device
from core.errors import InputError
from core.export import dumps_json, save_csv, save_json, save_rows, tidy_rows
from core.loaded_model import build_model
from core.output_paths import check_output_file


def _settings(p: argparse.ArgumentParser, batch: int = 8, seq_help: str = "default 128") -> None:
    p.add_argument("--batch", type=int, default=batch, help=f"batch size (default {batch})")
    p.add_argument("--seq", type=int, default=None, help=f"sequence length ({seq_help})")
    p.add_argument(
        "--precision",
        choices=PRECISION_NAMES,
        default="fp32",
        help="fp32, or bf16/fp16 mixed precision (torch.autocast)",
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adamw",
        help="optimizer whose states are counted (default adamw)",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="where to run and measure: cpu (default), cuda, cuda:N, auto",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    cmp = subparsers.add_parser(
        "compare",
        help="two models side by side: parameters, memory, FLOPs, latency, layer transitions",
    )
    cmp.add_argument("model_a", help="first model folder")
    cmp.add_argument("model_b", help="second model folder")
    cmp.add_argument("text", help="sentence whose layer transitions are compared")
    _settings(cmp, seq_help="default: 128, or the shorter of the two models' position limits")
    cmp.add_argument("--runs", type=int, default=5, help="timed forward passes (median)")
    cmp.add_argument(
        "--no-measure",
        action="store_true",
        help="skip measured memory and latency (model figures only)",
    )
    cmp.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    cmp.add_argument("--csv", metavar="FILE", help="also write tidy CSV rows")
    add_tokenizer_mismatch_option(cmp)
    cmp.set_defaults(func=run_compare)

    mem = subparsers.add_parser(
        "memory", help="memory model (and optionally a measurement) for training and inference"
    )
    mem.add_argument("model", nargs="?", help="model folder (or use --preset)")
    mem.add_argument(
        "--preset", choices=sorted(PRESETS), metavar="NAME", help=f"one of {', '.join(PRESETS)}"
    )
    _settings(mem, seq_help="default: 128, or the model's position limit if shorter")
    mem.add_argument("--mode", choices=("training", "inference", "both"), default="both")
    mem.add_argument(
        "--kernels",
        choices=("cuda", "cpu"),
        help="whose kernels the model assumes (default: those of --device)",
    )
    mem.add_argument(
        "--measure",
        action="store_true",
        help="also run a real step on --device and report the measured peak",
    )
    mem.add_argument("--json", action="store_true", help="print JSON instead of tables")
    mem.add_argument("--csv", metavar="FILE", help="also write tidy CSV rows")
    add_tokenizer_mismatch_option(mem)
    mem.set_defaults(func=run_memory)


def run_compare(args: argparse.Namespace) -> int:
    for option, path in (("--json", args.json), ("--csv", args.csv)):
        if path is not None:
            check_output_file(path, option)
    device = resolve_device(args.device)
    a = load_for_cli(args.model_a, args, device=device)
    b = load_for_cli(args.model_b, args, device=device)
    if a.name == b.name:
        a.name, b.name = f"{a.name} (A)", f"{b.name} (B)"
    seq = default_seq(a.config, b.config) if args.seq is None else args.seq
    result = compare(
        a,
        b,
        args.text,
        args.batch,
        seq,
        args.precision,
        args.optimizer,
        measure=not args.no_measure,
        runs=args.runs,
    )
    print(format_comparison(result))
    meta = {"model_a": str(args.model_a), "model_b": str(args.model_b)}
    if args.json:
        save_json(result, args.json, meta)
        print(f"wrote {args.json}")
    if args.csv:
        save_csv(result, args.csv, meta)
        print(f"wrote {args.csv}")
    return 0


def _fresh(config, heads, device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(config, heads)
    model.init_weights()
    return model.to(device)


def run_memory(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.preset is None):
        raise InputError("give a model folder or --preset NAME (one of them)")
    if args.csv is not None:
        check_output_file(args.csv, "--csv")
    device = resolve_device(args.device)
    kernels = args.kernels or ("cpu" if device.type == "cpu" else "cuda")
    if args.preset:
        config, name, heads = preset(args.preset), args.preset, None
    else:
        loaded = load_for_cli(args.model, args, device="cpu")
        config, name, heads = loaded.config, loaded.name, loaded.heads
    if args.seq is None:
        args.seq = default_seq(config)
    results = []
    if args.mode in ("training", "both"):
        est = training_memory(
            config, args.batch, args.seq, args.precision, args.optimizer, kernels, name, heads
        )
        measured = None
        if args.measure:  # on a fresh copy: the step changes weights
            measured = measure_training_memory(
                _fresh(config, heads, device),
                args.batch,
                args.seq,
                args.precision,
                args.optimizer,
                device,
            )
        results.append((est, measured))
    if args.mode in ("inference", "both"):
        est = inference_memory(
            config, args.batch, args.seq, args.precision, True, kernels, name, heads
        )
        measured = None
        if args.measure:
            measured = measure_inference_memory(
                _fresh(config, heads, device), args.batch, args.seq, args.precision, True, device
            )
        results.append((est, measured))
    if args.json:
        print(
            json.dumps(
                [json.loads(dumps_json(est, {"measured": m})) for est, m in results], indent=2
            )
        )
    else:
        print("\n\n".join(format_memory(est, m) for est, m in results))
    if args.csv:
        rows = [
            r
            for est, m in results
            for r in tidy_rows(est) + (tidy_rows(m, {"model": name}) if m else [])
        ]
        save_rows(rows, args.csv)
        if not args.json:
            print(f"wrote {args.csv}")
    return 0
