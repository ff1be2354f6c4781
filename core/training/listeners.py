"""What a run leaves on disk, as listeners on the trainer's events (minGPT's callbacks):
resumable checkpoints, the Hugging Face export ``final/`` and the ``train_log.jsonl`` log.

:func:`core.training.setup.prepare_training` attaches them, in this order, when there is an
output folder; each gets what it needs explicitly (the model, its config and tokenizer, and
for checkpoints the trainer's :meth:`~core.training.trainer.Trainer.state_dict`). A listener
that writes a folder answers the event with a copy naming it, so the listeners after it (the
log, the CLI, the window) see where it went.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from core.config import ModelConfig
from core.errors import CheckpointError, TrainingError
from core.hf_checkpoint import write_failure
from core.tokenizer import Tokenizer
from core.training import run_checkpoints as ckpt
from core.training.distributed import DistContext, barrier
from core.training.events import ProgressEvent

LOG_FILE = "train_log.jsonl"


def check_run_folder(out_dir: Path) -> None:
    """Raise :class:`TrainingError` if the run folder is gone: deleted while training, nothing
    more can be saved there (a checkpoint would make a new folder holding only itself)."""
    if not Path(out_dir).is_dir():
        raise TrainingError(f"run folder {out_dir} was deleted while training: stopped")


class CheckpointWriter:
    """``checkpoint-N/`` (model, tokenizer, trainer state, run arguments) when the trainer
    asks for one ("checkpoint"), on "cancelled" and on "done"; keeps the newest ``keep``.

    Under torchrun every rank must have one: the trainer state gathers all ranks' RNG states;
    rank 0 writes.
    """

    KINDS = ("checkpoint", "cancelled", "done")

    def __init__(
        self,
        out_dir: Path,
        trainer_state: Callable[[], dict],
        model: nn.Module,
        model_config: ModelConfig,
        tokenizer: Tokenizer,
        args: dict,
        keep: int = 2,
        ctx: DistContext | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.trainer_state = trainer_state
        self.model = model
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.args = args
        self.keep = keep
        self.ctx = ctx or DistContext()

    def __call__(self, ev: ProgressEvent) -> ProgressEvent | None:
        if ev.kind not in self.KINDS:
            return None
        state = self.trainer_state()  # every rank takes part
        folder = None
        if self.ctx.is_main:
            check_run_folder(self.out_dir)
            try:
                folder = ckpt.save_checkpoint(
                    self.out_dir,
                    ev.step,
                    self.model,
                    self.model_config,
                    self.tokenizer,
                    state,
                    self.args,
                    self.keep,
                )
            except CheckpointError as err:
                check_run_folder(self.out_dir)  # deleted while the checkpoint was written
                previous = ckpt.latest_checkpoint(self.out_dir)
                kept = (
                    f"; {previous.name} is intact (--resume continues from it)"
                    if previous is not None
                    else "; no earlier checkpoint to resume from"
                )
                raise CheckpointError(f"{err}{kept}") from None
        barrier(self.ctx)
        folder = folder or self.out_dir / ckpt.checkpoint_name(ev.step)
        return dataclasses.replace(ev, checkpoint=str(folder))


class FinalExport:
    """``final/`` on "done": the Hugging Face-format model (weights in ``dtype``) and a
    ``training_summary.json`` of the run (``summary`` plus the step count, tokens, time and
    held-out scores of the event). Rank 0 only."""

    def __init__(
        self,
        out_dir: Path,
        model: nn.Module,
        model_config: ModelConfig,
        tokenizer: Tokenizer,
        summary: dict,
        dtype: torch.dtype | None = None,
    ):
        self.folder = Path(out_dir) / "final"
        self.model = model
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.summary = summary
        self.dtype = dtype

    def __call__(self, ev: ProgressEvent) -> ProgressEvent | None:
        if ev.kind != "done":
            return None
        run = {
            "steps": ev.step,
            "tokens_seen": ev.tokens_seen,
            "elapsed_s": round(ev.elapsed_s, 1),
        }
        base = dict(self.summary)
        # Key order as before: arch, preset, steps, tokens, time, then the rest.
        head = {k: base.pop(k) for k in ("arch", "preset") if k in base}
        summary = {
            **head,
            **run,
            **base,
            "eval": ev.metrics.to_dict() if ev.metrics else None,
        }

        def extra(tmp: Path) -> None:
            (tmp / ckpt.SUMMARY_FILE).write_text(
                json.dumps(summary, indent=2) + "\n", encoding="utf-8"
            )

        folder = ckpt.write_model_folder(
            self.folder, self.model, self.model_config, self.tokenizer, extra, self.dtype
        )
        return dataclasses.replace(ev, checkpoint=str(folder))


class JsonlLog:
    """``train_log.jsonl``: one JSON line per event (``ProgressEvent.to_dict``). A resumed run
    first drops the lines past the step it starts from, left by an interrupted run."""

    def __init__(self, path: Path, start_step: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._trim(start_step)

    def _trim(self, start_step: int) -> None:
        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= start_step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        self.path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")

    def __call__(self, ev: ProgressEvent) -> None:
        line = json.dumps(ev.to_dict(), allow_nan=False) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError as err:
            check_run_folder(self.path.parent)
            raise TrainingError(f"could not write {self.path}: {write_failure(err)}") from None
