"""``python -m core experiment RECIPE``: the ALBERT paper's ablations as a grid of training
runs (one at a time here), its commands for another machine's scheduler, or the results table
of run folders made anywhere."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.errors import InputError
from core.training.experiments import (
    RECIPES,
    SCALES,
    collect,
    format_table,
    plan,
    print_commands,
    run_grid,
    torchrun_form,
)

DEFAULT_CORPUS = "resources/corpus/train.txt"
DEFAULT_HELDOUT = "resources/corpus/heldout.txt"


def register(subparsers: argparse._SubParsersAction) -> None:
    ex = subparsers.add_parser(
        "experiment",
        help="rerun an ALBERT-paper ablation (Lan et al. 2020) as a grid of small runs",
        description="Every run of a recipe shares corpus, tokenizer, token budget, schedule "
        "and seeds; only the ablated setting changes. Finished runs are kept, started ones "
        "resume.",
    )
    ex.add_argument("recipe", nargs="?", help=f"one of: {', '.join(RECIPES)}")
    ex.add_argument("--scale", default="tiny", help=f"{', '.join(SCALES)} (default tiny)")
    ex.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default 1)")
    ex.add_argument("--out", metavar="DIR", help="the grid's folder (one folder per run)")
    ex.add_argument("--corpus", nargs="+", default=[DEFAULT_CORPUS], metavar="FILE")
    ex.add_argument("--eval-corpus", nargs="+", default=[DEFAULT_HELDOUT], metavar="FILE")
    ex.add_argument(
        "--print-commands",
        action="store_true",
        help="write each run's settings and print its `python -m core train` line (and the "
        "torchrun form) instead of training; OUT/slurm_array.sh runs them as an array job",
    )
    ex.add_argument(
        "--collect",
        metavar="DIR",
        help="print the results table of the finished run folders under DIR (runs made "
        "anywhere; those not yet scored on the sentence tasks are, on --eval-corpus), and "
        "train nothing",
    )
    ex.set_defaults(func=run_experiment)


def run_experiment(args: argparse.Namespace) -> int:
    if args.collect:
        print(format_table(collect(args.collect, args.eval_corpus)))
        return 0
    if not args.recipe:
        raise InputError(f"a recipe is required: {', '.join(RECIPES)}")
    if not args.out:
        raise InputError("--out is required: the grid's folder")
    runs = plan(args.recipe, args.scale, args.seeds, Path(args.out).resolve())  # checked first
    # Absolute paths: a printed command runs from wherever a scheduler starts it.
    corpus = [str(Path(p).resolve()) for p in args.corpus]
    heldout = [str(Path(p).resolve()) for p in args.eval_corpus]
    if args.print_commands:
        for line in print_commands(runs, corpus, heldout):
            print(line)
            print("  # or: " + torchrun_form(line))
        return 0
    start = time.monotonic()

    def on_run(index: int, run) -> None:
        print(
            f"[{index + 1}/{len(runs)}] {run.variant}, seed {run.seed} -> {run.out}",
            file=sys.stderr,
        )

    trained = run_grid(runs, corpus, heldout, on_run)
    print(
        f"{args.recipe} at {args.scale}: trained {len(trained)} of {len(runs)} runs in "
        f"{time.monotonic() - start:.0f} s",
        file=sys.stderr,
    )
    print(format_table(collect(args.out, heldout)))
    return 0
