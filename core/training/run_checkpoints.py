"""Training checkpoints: a Hugging Face-format model folder plus what resuming needs.

``OUT/checkpoint-0000500/`` holds config.json, model.safetensors, tokenizer.json and
tokenizer_config.json (so ``core.load_model`` and transformers' ``from_pretrained`` read it),
plus ``trainer_state.pt`` (optimizer, scheduler, grad scaler, every rank's RNG states: CPU
and its own training device, data position) and ``training_args.json``. Every folder is
written under a temporary name and renamed when complete (``core.hf_checkpoint.atomic_folder``),
so a crash mid-save leaves the previous checkpoint intact; an old checkpoint is renamed before
it is deleted. What a kill leaves (those temporary folders) is recognised by name and removed
by the next run in the folder (:func:`remove_debris`). ``trainer_state.pt`` is read with
``weights_only=True``: it holds
only tensors and plain Python values, never pickled code.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.config import ModelConfig
from core.errors import CheckpointError
from core.hf_checkpoint import WEIGHT_FILES, atomic_folder, hf_architecture, save_weights
from core.tokenizer import Tokenizer

log = logging.getLogger(__name__)

PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.pt"
ARGS_FILE = "training_args.json"
SUMMARY_FILE = "training_summary.json"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:07d}"


# -- RNG ----------------------------------------------------------------------------------------
def rng_state(device: torch.device | None = None) -> dict:
    """Python, numpy and torch CPU generator states as plain values and tensors, plus the
    generator of the training ``device`` (one GPU, the one this rank uses; not every visible
    GPU, so a resume where fewer GPUs are visible still restores it)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["device"] = torch.cuda.get_rng_state(device)
    elif device is not None and device.type == "mps":
        state["device"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore :func:`rng_state`; the device generator goes to ``device`` whichever GPU index it
    has now. Older checkpoints kept every visible GPU's state (``"cuda"``, a list): the entry of
    this device's index is used when it exists, else the device generator is left seeded."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if device is None or device.type == "cpu":
        return
    saved = state.get("device")
    if saved is None and "cuda" in state and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        states = state["cuda"]
        if index < len(states):
            saved = states[index]
        else:
            log.warning(
                "checkpoint has GPU generator states for %d device(s), none for %s: its "
                "dropout stream restarts from the seed",
                len(states),
                device,
            )
    if saved is None:
        return
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(saved)


# -- writing ------------------------------------------------------------------------------------
def write_model_folder(
    folder: Path,
    model: nn.Module,
    config: ModelConfig,
    tokenizer: Tokenizer,
    extra: Callable[[Path], None] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Atomically write an HF-format model folder; ``extra(tmp)`` adds more files first.

    ``dtype`` (e.g. float16) stores the weights at that precision (exports only: a checkpoint
    meant for resuming keeps full precision).
    """
    config = config.replace(
        extra={**config.extra, "architectures": [hf_architecture(config, model.heads)]}
    )

    def write(tmp: Path) -> None:
        config.save(tmp / "config.json")
        to_save = model if dtype is None else copy.deepcopy(model).to(dtype)
        save_weights(to_save, config, tmp)
        tokenizer.save(tmp)
        if extra is not None:
            extra(tmp)

    atomic_folder(Path(folder), write)
    return Path(folder)


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: nn.Module,
    config: ModelConfig,
    tokenizer: Tokenizer,
    trainer_state: dict,
    args: dict,
    keep: int = 2,
) -> Path:
    """``out_dir/checkpoint-NNNNNNN`` with the trainer state; keeps the newest ``keep``."""

    def extra(tmp: Path) -> None:
        # Through a Python file, so a full disk is an OSError in the error's chain (torch's
        # own writer reports only "unexpected pos"): atomic_folder names the reason.
        with (tmp / STATE_FILE).open("wb") as f:
            torch.save(trainer_state, f)
        (tmp / ARGS_FILE).write_text(json.dumps(args, indent=2) + "\n", encoding="utf-8")

    folder = write_model_folder(out_dir / checkpoint_name(step), model, config, tokenizer, extra)
    if keep > 0:
        for old in list_checkpoints(out_dir)[:-keep]:
            remove_folder(old)
    return folder


def remove_folder(folder: Path) -> None:
    """Delete a checkpoint safely: renamed to ``.deleting-NAME-PID`` first (one atomic step),
    then removed, so a kill mid-way leaves a folder recognisably ours to finish off
    (:func:`remove_debris`), never a half-deleted ``checkpoint-N`` that looks like a model."""
    folder = Path(folder)
    doomed = folder.with_name(f"{DELETING}{folder.name}-{os.getpid()}")
    try:
        os.replace(folder, doomed)
    except OSError:
        return  # already gone (or not ours to move): nothing half-deleted is left by us
    shutil.rmtree(doomed, ignore_errors=True)


# Temporary folders this code leaves only if killed: atomic_folder's ``.NAME.tmp-*`` (and the
# ``.NAME.old-PID`` it swaps out), remove_folder's ``.deleting-NAME-PID``, and the corpus
# cache's ``.corpus-DIGEST.tmp-*``. Only these names (and a checkpoint-N that lost its trainer
# state) are ever removed: other folders in --out are the user's.
DELETING = ".deleting-"
_OUR_NAMES = rf"(?:{PREFIX}\d+|final)"
_DEBRIS = re.compile(
    rf"^(?:\.{_OUR_NAMES}\.(?:tmp-.+|old-\d+)|{re.escape(DELETING)}{_OUR_NAMES}-\d+)$"
)
_CACHE_DEBRIS = re.compile(r"^\.corpus-[0-9a-f]{16}\.tmp-.+$")
# What a checkpoint folder holds: one without its trainer state but with nothing else was
# being deleted by an older version (plain rmtree) when it was killed.
_CHECKPOINT_FILES = {
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    STATE_FILE,
    ARGS_FILE,
}


def find_debris(out_dir: Path) -> list[Path]:
    """The stale temporary and half-deleted folders an interrupted run left in ``out_dir``
    (and its ``cache/``), and nothing else."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for child in sorted(out_dir.iterdir()):
        if not child.is_dir() or child.is_symlink():
            continue
        if _DEBRIS.match(child.name):
            found.append(child)
        elif _NAME.match(child.name) and not (child / STATE_FILE).exists():
            entries = list(child.iterdir())
            if all(e.is_file() and e.name in _CHECKPOINT_FILES for e in entries):
                found.append(child)
    cache = out_dir / "cache"
    if cache.is_dir() and not cache.is_symlink():
        found += [
            c
            for c in sorted(cache.iterdir())
            if c.is_dir() and not c.is_symlink() and _CACHE_DEBRIS.match(c.name)
        ]
    return found


_SWAPPED_OUT = re.compile(rf"^\.({_OUR_NAMES})\.old-\d+$")


def remove_debris(out_dir: Path) -> list[Path]:
    """Remove :func:`find_debris`'s folders; returns what was removed. A ``.NAME.old-PID``
    whose ``NAME`` is missing is the previous folder of a swap that a kill interrupted between
    its two renames (:func:`core.hf_checkpoint.atomic_folder`): it is renamed back, not
    removed."""
    removed = []
    for folder in find_debris(out_dir):
        swapped = _SWAPPED_OUT.match(folder.name)
        if swapped and not (folder.parent / swapped.group(1)).exists():
            try:
                os.replace(folder, folder.parent / swapped.group(1))
                log.info("%s: restored from %s (a swap was interrupted)", swapped.group(1), folder)
                continue
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


# -- reading ------------------------------------------------------------------------------------
def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (with trainer state) in ``out_dir``, oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for child in out_dir.iterdir():
        match = _NAME.match(child.name)
        if match and child.is_dir() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def is_complete(folder: Path) -> bool:
    """Whether a checkpoint folder holds all a resume reads: its config, weights, trainer state
    and run arguments (one damaged by hand, or by a tool that copied it half-way, does not)."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in ("config.json", STATE_FILE, ARGS_FILE)) and (
        any((folder / name).is_file() for name in WEIGHT_FILES)
    )


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint (:func:`is_complete`); newer incomplete ones are skipped
    with a warning naming them."""
    for folder in reversed(list_checkpoints(out_dir)):
        if is_complete(folder):
            return folder
        log.warning("%s: incomplete checkpoint (files missing), skipped for --resume", folder)
    return None


def load_trainer_state(folder: Path) -> dict:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {STATE_FILE} (not a resumable training checkpoint)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have many types, and messages of many lines
        raise CheckpointError(
            f"{path}: unreadable trainer state (damaged, or not written by BertScope: "
            f"{type(err).__name__})"
        ) from None
    if not isinstance(state, dict) or not {"step", "optimizer", "scheduler"} <= state.keys():
        raise CheckpointError(f"{path}: not a BertScope trainer state (keys missing)")
    return state


def load_training_args(folder: Path) -> dict:
    path = Path(folder) / ARGS_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {ARGS_FILE}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: malformed JSON ({err})") from None
