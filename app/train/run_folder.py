"""What a run's folder holds, by name: the files the window and the trainer write there.

One place for the names, so the runner, the follower, the history and the view agree on them.
"""

from __future__ import annotations

import json
from pathlib import Path

TRAIN_CONFIG_FILE = "train_config.json"  # the run's TrainConfig, read by --config-file
MODEL_CONFIG_FILE = "model_config.json"  # the calculator's sizes, passed as --config
TRAIN_LOG = "train_log.jsonl"  # the trainer's own log (step/eval/checkpoint/done events)
EVENTS_FILE = "events.jsonl"  # stdout of a run started in the background
STDERR_FILE = "train.log"  # stderr of a run started in the background
CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE = "trainer_state.pt"  # in a checkpoint: what resuming needs


def _checkpoint_step(name: str) -> int | None:
    step = name.removeprefix(CHECKPOINT_PREFIX)
    return int(step) if name.startswith(CHECKPOINT_PREFIX) and step.isdigit() else None


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint in ``out``, oldest first."""
    found = []
    if out.is_dir():
        for p in out.iterdir():
            step = _checkpoint_step(p.name)
            if step is not None and p.is_dir():
                found.append((step, p))
    return sorted(found)


def resumable_checkpoints(out: Path) -> list[Path]:
    """The checkpoints a run can resume from, oldest first: those with their trainer state (a
    kill mid-save leaves only a temporary folder, never listed)."""
    return [folder for _, folder in checkpoints(out) if (folder / TRAINER_STATE).is_file()]


def looks_like_a_run(folder: Path) -> bool:
    """A folder a run wrote: its log, its events, a checkpoint or its export."""
    try:
        if not folder.is_dir():
            return False
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return bool(
        names & {TRAIN_LOG, EVENTS_FILE, "final"}
        or any(_checkpoint_step(name) is not None for name in names)
    )


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; ``{}`` for a file that is missing, unreadable or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
