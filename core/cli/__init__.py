"""Headless command line: ``python -m core COMMAND ...`` (also ``bertscope-cli``).

Each command module registers its sub-commands with ``register(subparsers)``; a handler takes
the parsed arguments and returns an exit status. Any :class:`BertScopeError` becomes a one-line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.errors import BertScopeError

COMMAND_MODULES = (
    "core.cli.model_commands",
    "core.cli.training_commands",
    "core.cli.cost_commands",
    "core.cli.analysis_commands",
    "core.cli.finetune_commands",
    "core.cli.experiment_commands",
)


def program_name(argv0: str | None = None) -> str:
    """``bertscope-cli`` (or whatever the console script is called) when run as one, else
    ``python -m core``: usage and help name the command the user typed."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if not name or name in ("-c", "-m") or name.endswith(".py"):
        return "python -m core"
    return name


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or program_name(),
        description="BertScope engine: inspect, probe, compare and train "
        "BERT and ALBERT models without the window.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _numeric_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings, in every sub-command, whose value is a number."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _numeric_options(sub)
        elif action.option_strings and action.type in (int, float) and action.nargs is None:
            found.update(s for s in action.option_strings if s.startswith("--"))
    return found


def join_negative_numbers(argv: list[str], options: set[str]) -> list[str]:
    """``--lr -1e-4`` -> ``--lr=-1e-4`` for options that take a number. argparse reads a
    value that starts with "-" as an option unless it looks like a plain negative integer or
    decimal, so ``--lr -1e-4`` would die with "expected one argument"; joined, the value
    reaches the range check that names the setting."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        if token in options and i + 1 < len(argv) and _is_negative_number(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _is_negative_number(text: str) -> bool:
    if not text.startswith("-"):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(join_negative_numbers(argv, _numeric_options(parser)))
    try:
        return int(args.func(args) or 0)
    except BertScopeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
