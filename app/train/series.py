"""The curves' numbers: one run's events as growing arrays, x in tokens seen."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from app.train.event_stream import load_events
from app.train.run_folder import TRAIN_LOG
from core.training import ProgressEvent


def _num(value: object) -> float:
    # The event stream writes a non-finite number (a NaN loss, a skipped step's norm) as null.
    return float(value) if isinstance(value, (int, float)) else math.nan


class RunSeries:
    """The growing arrays of one run: per step and per evaluation, x in tokens seen.

    A resumed run repeats no step: an event for a step at or before the last one recorded
    (the trainer restarts from its checkpoint) drops the later points first, so the curves
    show exactly what the trainer's ``train_log.jsonl`` holds.
    """

    STEP_KEYS = ("step", "tokens", "mlm", "sentence", "total", "lr", "grad_norm", "tokens_per_s")
    EVAL_KEYS = ("step", "tokens", "mlm_accuracy", "perplexity", "sentence_accuracy")

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {k: [] for k in self.STEP_KEYS}
        self.evals: dict[str, list[float]] = {k: [] for k in self.EVAL_KEYS}
        self.sentence_task: str | None = None
        self.last: ProgressEvent | None = None  # newest event of any kind
        self.last_step: ProgressEvent | None = None
        self.total_steps = 0

    def add(self, event: ProgressEvent) -> None:
        self.last = event
        if event.total_steps:
            self.total_steps = event.total_steps
        if event.kind == "step":
            self._truncate(self.steps, event.step - 1)
            self._truncate(self.evals, event.step - 1)
            losses = event.losses or {}
            task = next((k for k in ("nsp", "sop") if k in losses), None)
            if task:
                self.sentence_task = task
            values = {
                "step": event.step,
                "tokens": float(event.tokens_seen),
                "mlm": _num(losses.get("mlm")),
                "sentence": _num(losses.get(task)) if task else math.nan,
                "total": _num(losses.get("total")),
                "lr": _num(event.lr),
                "grad_norm": _num(event.grad_norm),
                "tokens_per_s": _num(event.tokens_per_s),
            }
            for key, value in values.items():
                self.steps[key].append(value)
            self.last_step = event
        elif event.kind == "eval" and event.metrics is not None:
            self._truncate(self.evals, event.step - 1)
            m = event.metrics
            values = {
                "step": event.step,
                "tokens": float(event.tokens_seen),
                "mlm_accuracy": _num(m.mlm_accuracy),
                "perplexity": _num(m.perplexity),
                "sentence_accuracy": _num(m.sentence_accuracy),
            }
            for key, value in values.items():
                self.evals[key].append(value)

    @staticmethod
    def _truncate(series: dict[str, list[float]], last_step: int) -> None:
        steps = series["step"]
        keep = len(steps)
        while keep and steps[keep - 1] > last_step:
            keep -= 1
        if keep < len(steps):
            for values in series.values():
                del values[keep:]

    def array(self, key: str) -> np.ndarray:
        source = self.steps if key in self.steps else self.evals
        return np.asarray(source[key], dtype=np.float64)

    def eval_array(self, key: str) -> np.ndarray:
        return np.asarray(self.evals[key], dtype=np.float64)

    @property
    def n_steps(self) -> int:
        return len(self.steps["step"])

    @classmethod
    def from_events(cls, events: Iterable[ProgressEvent]) -> RunSeries:
        series = cls()
        for event in events:
            series.add(event)
        return series

    @classmethod
    def from_log(cls, out: str | os.PathLike) -> RunSeries:
        """A run's curves from its folder's ``train_log.jsonl`` (empty if it has none yet)."""
        return cls.from_events(load_events(Path(out) / TRAIN_LOG))
