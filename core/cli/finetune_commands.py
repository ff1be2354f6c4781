"""``task-info``: a labelled file's class counts per split and majority baseline, before any
training; ``predict``: a fine-tuned classifier's class probabilities (or regression score) for
one text or text pair."""

from __future__ import annotations

import argparse
import json

from core.cli.model_commands import add_tokenizer_mismatch_option, load_for_cli


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser(
        "task-info", help="class counts and majority baseline of a CSV/TSV/JSONL task file"
    )
    info.add_argument("file", help="a .csv, .tsv or .jsonl file with text and label columns")
    info.add_argument("--text-col", help="text column (default: detected, e.g. text, sentence)")
    info.add_argument("--pair-col", help="second text column of a sentence-pair task")
    info.add_argument("--label-col", help="label column (default: detected, e.g. label)")
    info.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    info.add_argument("--dev", help="a dev file (same columns) instead of splitting FILE")
    info.add_argument("--test", help="a test file (same columns); needs --dev")
    info.set_defaults(func=run_task_info)
    predict = subparsers.add_parser(
        "predict",
        help="class probabilities of a fine-tuned model (a *ForSequenceClassification folder)",
    )
    predict.add_argument("model", help="model folder with a classifier head")
    predict.add_argument("text", help="the text to classify")
    predict.add_argument("--pair", help="second text of a sentence-pair task")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_tokenizer_mismatch_option(predict)
    predict.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from core.classifier import predict

    loaded = load_for_cli(args.model, args)
    result = predict(loaded, [args.text], None if args.pair is None else [args.pair])
    (row,) = result.table_rows()
    if args.json:
        print(json.dumps(row))
        return 0
    width = max(len(name) for name in row)
    for name, value in sorted(row.items(), key=lambda kv: -kv[1]):
        print(f"{name:<{width}}  {value:.4f}")
    return 0


def run_task_info(args: argparse.Namespace) -> int:
    from core.finetune.tasks import count_summary, load_task

    task = load_task(
        args.file,
        args.text_col,
        args.pair_col,
        args.label_col,
        seed=args.seed,
        dev_path=args.dev,
        test_path=args.test,
    )
    print(json.dumps(count_summary(task)))
    return 0
