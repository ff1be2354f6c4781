"""Headless command line: ``python -m core COMMAND ...`` (also ``bertscope-cli``).

Each command module registers its sub-commands with ``register(subparsers)``; a handler takes
the parsed arguments and returns an exit status. Any :class:`BertScopeError` becomes a one-line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import BertScopeError

COMMAND_MODULES = (
    "core.cli.model_commands",
    "core.cli.training_commands",
    "core.cli.cost_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="BertScope engine: inspect, probe, compare and train "
        "BERT and ALBERT models without the window.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BertScopeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
