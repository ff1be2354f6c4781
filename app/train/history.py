"""The run history: every run the window started, with its settings, status and final metrics,
kept across restarts in one JSON file (``runs.json``, written atomically). A damaged file is
set aside, never overwritten, and the runs are rebuilt from their folders."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.train.event_stream import load_events
from app.train.run_folder import (
    MODEL_CONFIG_FILE,
    TRAIN_LOG,
    checkpoints,
    looks_like_a_run,
    read_json,
    resumable_checkpoints,
)
from app.train.runner import group_alive, pid_alive
from app.train.settings import RunSettings
from core.atomic import write_text_atomic
from core.errors import InputError
from core.training.config import TrainConfig
from core.training.run_status import RunStatus

log = logging.getLogger(__name__)

# Statuses a window that starts finds stale when the process is gone.
LIVE = (RunStatus.RUNNING, RunStatus.BACKGROUND)
# Statuses Resume continues from a checkpoint.
RESUMABLE = (RunStatus.PAUSED, RunStatus.STOPPED, RunStatus.FAILED)


@dataclass
class RunRecord:
    """One run the window knows: where it writes, how it was set up, how it stands."""

    name: str  # e.g. "bert-mini-184002"
    settings: dict  # RunSettings.to_dict()
    status: RunStatus = RunStatus.NEW
    pid: int | None = None  # of its process (the process group of a background run)
    message: str = ""  # one-line error of a failed run
    metrics: dict | None = None  # the last held-out evaluation (EvalMetrics.to_dict())
    steps_done: int = 0
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)  # the history file holds its value

    @property
    def out(self) -> Path:
        return Path(self.settings["out"])

    @property
    def arch(self) -> str:
        return self.settings.get("arch", "?")

    def run_settings(self) -> RunSettings:
        return RunSettings.from_dict(self.settings)

    @property
    def resumable(self) -> bool:
        # a record rebuilt from its folder may not know its corpus: nothing to resume on
        known = bool(self.settings.get("corpus"))
        return self.status in RESUMABLE and known and bool(resumable_checkpoints(self.out))

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of every checkpoint on disk, oldest first."""
        return checkpoints(self.out)


def rebuild_record(folder: Path) -> RunRecord:
    """A run's record from what its folder holds, for a history that was lost: the settings of
    its newest checkpoint (``training_args.json``) or export (``training_summary.json``), the
    steps, metrics and end of its ``train_log.jsonl``. The corpus is not in the folder: a
    record rebuilt cannot be resumed from the window."""
    folder = Path(folder)
    train: dict = {}
    for _, checkpoint in reversed(checkpoints(folder)):
        train = read_json(checkpoint / "training_args.json").get("train") or {}
        if train:
            break
    if not train:
        train = read_json(folder / "final" / "training_summary.json").get("train") or {}
    try:
        config = TrainConfig.from_dict(train)
    except (InputError, TypeError):  # settings this version cannot read: its defaults
        config = TrainConfig()
    sizes = read_json(folder / MODEL_CONFIG_FILE) or None
    settings = RunSettings(config=config, out=folder, model_config=sizes)
    events = load_events(folder / TRAIN_LOG) or load_events(folder / "events.jsonl")
    steps = [e for e in events if e.kind == "step"]
    metrics = next((e.metrics for e in reversed(events) if e.metrics is not None), None)
    done = (folder / "final").is_dir() or bool(events and events[-1].kind == "done")
    try:
        created = folder.stat().st_mtime
    except OSError:
        created = time.time()
    return RunRecord(
        name=folder.name,
        settings=settings.to_dict(),
        status=RunStatus.DONE if done else RunStatus.STOPPED,
        message="rebuilt from its folder (corpus unknown: start a new run to train on)",
        metrics=metrics.to_dict() if metrics is not None else None,
        steps_done=steps[-1].step if steps else 0,
        created=created,
    )


_OUT = re.compile(r'"out"\s*:\s*("(?:[^"\\]|\\.)*")')
_RECORD_START = re.compile(r'\{\s*"name"\s*:')


def salvage_records(text: str) -> tuple[list[dict], list[Path]]:
    """What can be read from a damaged history: the run records that are still whole, and the
    output folders named anywhere in it (those of cut-off records too)."""
    decoder = json.JSONDecoder()
    whole: list[dict] = []
    for match in _RECORD_START.finditer(text):
        try:
            item, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("settings"), dict):
            whole.append(item)
    outs = []
    for match in _OUT.finditer(text):
        with contextlib.suppress(ValueError):
            outs.append(Path(json.loads(match.group(1))))
    return whole, outs


class RunHistory:
    """The runs the window knows, kept across restarts in one JSON file (written atomically).

    A file that cannot be read as a history (cut short by a crash or a full disk, or garbage)
    is never overwritten: it is renamed ``NAME.corrupt-<time>``, the records still whole in it
    are kept, and the rest is rebuilt from the run folders it names and those in ``search``
    (the runs root); :attr:`problem` says so in one line.
    """

    def __init__(self, path: str | os.PathLike, search: list[Path] | tuple[Path, ...] = ()):
        self.path = Path(path)
        self.search = [Path(p) for p in search]
        self.records: list[RunRecord] = []
        self.problem: str | None = None  # one line: the file was damaged, what was done
        self._keep_file = False
        self.load()

    def load(self) -> None:
        self.records = []
        self.problem = None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            self.problem = f"could not read the run history {self.path}: {err.strerror or err}"
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._recover(raw, "not UTF-8 text")
            return
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            # Cut short (a crash or a full disk mid-write): the error is at the very end.
            short = err.pos >= len(text.rstrip()) - 1 or err.msg.startswith("Unterminated")
            what = "cut short" if short else "not valid JSON"
            self._recover(raw, f"{what} at line {err.lineno}")
            return
        if not isinstance(data, dict) or not isinstance(data.get("runs", []), list):
            self._recover(raw, "not a run history")
            return
        for item in data.get("runs", []):
            try:
                self.records.append(RunRecord(**item))
            except (TypeError, ValueError):  # not a record, or an unknown status
                log.warning("skipping a malformed run record in %s", self.path)

    def _recover(self, raw: bytes, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, backup)
        except OSError as err:
            self.problem = (
                f"the run history {self.path} is damaged ({reason}) and could not be set aside "
                f"({err.strerror or err}): runs are not remembered until it is removed"
            )
            self._keep_file = True  # never overwrite the only copy
            return
        whole, outs = salvage_records(raw.decode("utf-8", errors="replace"))
        for item in whole:
            with contextlib.suppress(TypeError, ValueError):
                self.records.append(RunRecord(**item))
        known = {r.out for r in self.records}
        candidates: list[Path] = []
        for root in [*self.search, *(o.parent for o in outs)]:
            with contextlib.suppress(OSError):
                candidates += sorted(p for p in root.iterdir() if p.is_dir())
        candidates = [*outs, *candidates]
        for folder in dict.fromkeys(candidates):
            if folder not in known and looks_like_a_run(folder):
                self.records.append(rebuild_record(folder))
                known.add(folder)
        self.records.sort(key=lambda r: r.created)
        self.problem = (
            f"the run history was damaged ({reason}): kept it as {backup.name}, found "
            f"{len(self.records)} run{'s' if len(self.records) != 1 else ''} in the run folders"
        )
        log.warning("%s: %s", self.path, self.problem)
        with contextlib.suppress(OSError):
            self.save()

    def save(self) -> None:
        if self._keep_file:
            return
        text = json.dumps({"runs": [asdict(r) for r in self.records]}, indent=1)
        write_text_atomic(self.path, text, fsync=True)

    def add(self, record: RunRecord) -> RunRecord:
        self.records = [r for r in self.records if r.out != record.out]
        self.records.append(record)
        self.save()
        return record

    def find(self, out: str | os.PathLike) -> RunRecord | None:
        out = Path(out)
        return next((r for r in self.records if r.out == out), None)

    def remove(self, record: RunRecord) -> None:
        self.records = [r for r in self.records if r is not record]
        self.save()

    def refresh(self) -> None:
        """Runs marked running/background whose process is gone become stopped or done."""
        changed = False
        for record in self.records:
            alive = group_alive if record.status == RunStatus.BACKGROUND else pid_alive
            if record.status in LIVE and not alive(record.pid):
                events = load_events(record.out / TRAIN_LOG)
                done = bool(events) and events[-1].kind == "done"
                record.status = RunStatus.DONE if done else RunStatus.STOPPED
                record.pid = None
                changed = True
        if changed:
            self.save()
