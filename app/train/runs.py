"""Training runs seen from the window: the trainer runs as a child process, never in here.

A run is ``python -m core train ... --events jsonl`` (the CLI is the one trainer) started by
:class:`TrainingProcess` under ``QProcess``: every progress event arrives as one JSON line on
stdout (``readyReadStandardOutput``), human-readable output on stderr, and ``finished`` /
``errorOccurred`` tell how it ended. Whatever the trainer does (bad corpus, NaN, out of
memory, killed), the window only sees a process that ended, with a one-line reason. Pause and
Stop send SIGTERM: the CLI stops at the end of the step and saves a resumable checkpoint;
Resume is the same command with ``--resume`` (bit-exact, as the CLI guarantees).

A run can outlive the window: :func:`start_detached` starts the same command in its own
session with stdout appended to ``OUT/events.jsonl`` and stderr to ``OUT/train.log``, and a
:class:`RunFollower` tails that file (and watches the pid) when the window comes back.
:class:`RunHistory` remembers every run folder the window started, with status and final
metrics, in a JSON file; :class:`RunSeries` turns events (or a ``train_log.jsonl``) into the
arrays the curves plot. No model maths here: only process plumbing and bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shlex
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QProcess, QTimer, Signal, Slot

from core.atomic import write_text_atomic

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent

CORPUS_DIR = REPO_ROOT / "resources" / "corpus"
DEFAULT_CORPUS = CORPUS_DIR / "train.txt"
DEFAULT_HELDOUT = CORPUS_DIR / "heldout.txt"
EVENTS_FILE = "events.jsonl"  # stdout of a run started in the background
STDERR_FILE = "train.log"  # stderr of a run started in the background
MODEL_CONFIG_FILE = "model_config.json"  # the calculator's sizes, passed as --config
TRAIN_LOG = "train_log.jsonl"  # the trainer's own log (step/eval/checkpoint/done events)
LOG_LINES = 200  # stderr lines kept for the view
TERMINAL = ("done", "cancelled", "error")


def trainer_threads(parallel_runs: int = 1) -> int:
    """CPU threads per trainer: one core fewer than the machine has (the window keeps one),
    shared between runs that train at the same time; never below 1."""
    cores = os.cpu_count() or 2
    return max(1, (cores - 1) // max(1, parallel_runs))


# -- settings ------------------------------------------------------------------------------------
@dataclass
class TrainSettings:
    """One run's options, as the form shows them; :meth:`arguments` makes the CLI call."""

    arch: str = "bert"  # "bert" or "albert"
    preset: str = "bert-mini"
    corpus: list[str] = field(default_factory=lambda: [str(DEFAULT_CORPUS)])
    eval_corpus: list[str] = field(default_factory=lambda: [str(DEFAULT_HELDOUT)])
    out: str = ""  # output folder
    tokenizer: str | None = None  # a model folder or tokenizer.json to reuse; None: train one
    steps: int = 300
    batch_size: int = 16
    seq_len: int = 32
    lr: float = 5e-4
    warmup: int | None = None  # None: the CLI's default (5% of the steps)
    optimizer: str = "adamw"
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    eval_every: int = 0  # 0: steps // 6
    save_every: int = 0  # 0: steps // 6
    eval_examples: int = 256
    keep_checkpoints: int = 0  # 0 keeps every checkpoint (each is listed as a model)
    vocab_size: int = 8000
    threads: int = 0  # 0: trainer_threads()
    model_config: dict | None = None  # sizes from the Compare tab's calculator (config.json)

    @property
    def eval_period(self) -> int:
        return self.eval_every or max(1, self.steps // 6)

    @property
    def save_period(self) -> int:
        return self.save_every or max(1, self.steps // 6)

    @property
    def model_config_file(self) -> Path:
        return Path(self.out) / MODEL_CONFIG_FILE

    def prepare_folder(self) -> None:
        """Make the run folder, with the calculator's sizes in it for ``--config``."""
        Path(self.out).mkdir(parents=True, exist_ok=True)
        if self.model_config is not None:
            write_text_atomic(self.model_config_file, json.dumps(self.model_config, indent=2))

    def arguments(self, resume: bool = False) -> list[str]:
        """The ``python -m core train`` arguments (after ``-m core``)."""
        args = ["train", "--arch", self.arch, "--preset", self.preset, "--corpus", *self.corpus]
        if self.eval_corpus:
            args += ["--eval-corpus", *self.eval_corpus]
        args += ["--out", self.out, "--steps", str(self.steps)]
        args += ["--batch-size", str(self.batch_size), "--seq-len", str(self.seq_len)]
        args += ["--lr", repr(float(self.lr)), "--optimizer", self.optimizer]
        if self.warmup is not None:
            args += ["--warmup", str(self.warmup)]
        args += ["--device", self.device, "--precision", self.precision, "--seed", str(self.seed)]
        args += ["--eval-every", str(self.eval_period), "--save-every", str(self.save_period)]
        args += ["--eval-examples", str(self.eval_examples)]
        args += ["--keep-checkpoints", str(self.keep_checkpoints)]
        if self.tokenizer:
            args += ["--tokenizer", self.tokenizer]
        else:
            args += ["--vocab-size", str(self.vocab_size)]
        args += ["--threads", str(self.threads or trainer_threads())]
        if self.model_config is not None and not resume:  # a resumed run keeps its sizes
            args += ["--config", str(self.model_config_file)]
        if resume:
            args.append("--resume")
        return [*args, "--events", "jsonl"]

    def command(self, resume: bool = False) -> tuple[str, list[str]]:
        """Program and arguments of the child process."""
        return sys.executable, ["-m", "core", *self.arguments(resume)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- events into arrays --------------------------------------------------------------------------
def parse_event(line: str | bytes) -> dict | None:
    """One stdout line as an event dict, or None for anything that is not one."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "kind" in event else None


def read_events(path: str | os.PathLike) -> list[dict]:
    """Every event of a JSON-lines file (``train_log.jsonl`` or ``events.jsonl``)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [e for e in (parse_event(line) for line in text.splitlines()) if e is not None]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


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
        self.last: dict | None = None  # newest event of any kind
        self.last_step: dict | None = None
        self.total_steps = 0

    def add(self, event: dict) -> None:
        kind = event.get("kind")
        self.last = event
        if event.get("total_steps"):
            self.total_steps = int(event["total_steps"])
        step = event.get("step")
        if kind == "step" and isinstance(step, int):
            self._truncate(self.steps, step - 1)
            self._truncate(self.evals, step - 1)
            losses = event.get("losses") or {}
            task = next((k for k in ("nsp", "sop") if k in losses), None)
            if task:
                self.sentence_task = task
            values = {
                "step": step,
                "tokens": self._tokens(event),
                "mlm": _num(losses.get("mlm")),
                "sentence": _num(losses.get(task)) if task else math.nan,
                "total": _num(losses.get("total")),
                "lr": _num(event.get("lr")),
                "grad_norm": _num(event.get("grad_norm")),
                "tokens_per_s": _num(event.get("tokens_per_s")),
            }
            for key, value in values.items():
                self.steps[key].append(value)
            self.last_step = event
        elif kind == "eval" and isinstance(step, int) and event.get("metrics"):
            self._truncate(self.evals, step - 1)
            m = event["metrics"]
            values = {
                "step": step,
                "tokens": self._tokens(event),
                "mlm_accuracy": _num(m.get("mlm_accuracy")),
                "perplexity": _num(m.get("perplexity")),
                "sentence_accuracy": _num(m.get("sentence_accuracy")),
            }
            for key, value in values.items():
                self.evals[key].append(value)

    def _tokens(self, event: dict) -> float:
        # The event stream's tokens_seen; an older log without it falls back to the step.
        tokens = event.get("tokens_seen")
        return float(tokens) if isinstance(tokens, (int, float)) else float(event["step"])

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
    def from_events(cls, events: list[dict]) -> RunSeries:
        series = cls()
        for event in events:
            series.add(event)
        return series


# -- the child process ---------------------------------------------------------------------------
class TrainingProcess(QObject):
    """One ``python -m core train --events jsonl`` child under ``QProcess``.

    ``ended(outcome, message)``: outcome is "done", "paused", "stopped" or "failed"; message
    is the one-line reason for "failed" (the trainer's own ``error`` event or ``error:`` line,
    or what happened to the process).
    """

    event_received = Signal(dict)
    log_received = Signal(str)  # one stderr line
    ended = Signal(str, str)

    def __init__(self, settings: TrainSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.process.setWorkingDirectory(str(REPO_ROOT))
        self.process.readyReadStandardOutput.connect(self._on_stdout)
        self.process.readyReadStandardError.connect(self._on_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.last_event: dict | None = None
        self.error_message: str | None = None
        self._stdout = b""
        self._stderr = b""
        self._intent: str | None = None  # "paused"/"stopped" after pause()/stop()
        self._ended = False
        self.trained = False  # a step event arrived (before it, SIGTERM saves nothing)

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int | None:
        pid = self.process.processId()
        return int(pid) if pid else None

    def start(self, resume: bool = False) -> None:
        program, args = self.settings.command(resume)
        self.settings.prepare_folder()
        env = self.process.processEnvironment()
        if env.isEmpty():
            from PySide6.QtCore import QProcessEnvironment

            env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # every event line as soon as it is written
        self.process.setProcessEnvironment(env)
        self._intent, self._ended, self.error_message = None, False, None
        self.trained = False
        log.info("starting %s %s", program, " ".join(args))
        self.process.start(program, args)

    def pause(self) -> None:
        """SIGTERM: the trainer saves a resumable checkpoint and exits."""
        self._signal("paused")

    def stop(self) -> None:
        self._signal("stopped")

    def _signal(self, intent: str) -> None:
        if self.running:
            self._intent = intent
            self.process.terminate()  # SIGTERM

    def kill(self) -> None:
        if self.running:
            self.process.kill()

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the process ended (used when the window closes)."""
        if not self.running:
            return True
        done = self.process.waitForFinished(msecs)
        return done

    # -- output --------------------------------------------------------------------------------
    @Slot()
    def _on_stdout(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            event = parse_event(line)
            if event is None:
                if line.strip():
                    self._add_log(line.decode("utf-8", errors="replace"))
                continue
            self.last_event = event
            if event.get("kind") == "step":
                self.trained = True
            if event.get("kind") == "error" and event.get("message"):
                self.error_message = str(event["message"])
            self.event_received.emit(event)

    @Slot()
    def _on_stderr(self) -> None:
        self._stderr += bytes(self.process.readAllStandardError())
        # progress lines redrawn with \r count as lines too
        *lines, self._stderr = self._stderr.replace(b"\r", b"\n").split(b"\n")
        for line in lines:
            text = line.decode("utf-8", errors="replace").replace("\x1b[2K", "").rstrip()
            if text:
                self._add_log(text)

    def _add_log(self, text: str) -> None:
        self.log_lines.append(text)
        self.log_received.emit(text)

    def _cli_error(self) -> str | None:
        for line in reversed(self.log_lines):
            if line.startswith("error: "):
                return line.removeprefix("error: ")
        return None

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_stdout()
        self._on_stderr()
        for rest in (self._stdout, self._stderr):
            if rest.strip():
                event = parse_event(rest)
                if event is not None:
                    self.last_event = event
                    self.event_received.emit(event)
                else:
                    self._add_log(rest.decode("utf-8", errors="replace").strip())
        self._stdout = self._stderr = b""
        kind = (self.last_event or {}).get("kind")
        if kind == "done" and code == 0:
            self._end("done", "")
        elif kind == "cancelled":
            self._end(self._intent or "paused", "")
        elif self._intent and not self.trained:
            # Pause/Stop during set-up (tokenizer, corpus cache): nothing to save yet.
            self._end("stopped", "stopped during set-up, before the first step: nothing saved")
        else:
            reason = self.error_message or self._cli_error()
            if reason is None:
                if status == QProcess.ExitStatus.CrashExit:
                    reason = "the trainer process was killed"
                    if self._intent:
                        reason += " before it could save a checkpoint"
                    # a kill mid-save leaves only a temporary folder: not listed
                    saved = [
                        folder
                        for _, folder in RunRecord("", self.settings.to_dict()).checkpoints()
                        if (folder / "trainer_state.pt").is_file()
                    ]
                    if saved:
                        reason += f"; Resume continues from {saved[-1].name}"
                else:
                    reason = f"the trainer exited with status {code}"
                    if self.log_lines:
                        reason += f": {self.log_lines[-1]}"
            self.error_message = reason
            self._end("failed", reason)

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.error_message = f"could not start the trainer: {self.process.errorString()}"
            self._end("failed", self.error_message)
        # Crashed is followed by finished(CrashExit), which reports it.

    def _end(self, outcome: str, message: str) -> None:
        if not self._ended:
            self._ended = True
            self.ended.emit(outcome, message)


def start_detached(runs: list[tuple[TrainSettings, bool]]) -> int:
    """Start ``runs`` (settings, resume) one after the other in a background shell of its own
    session; each writes its events to ``OUT/events.jsonl`` and its log to ``OUT/train.log``.
    Returns the chain's process group id (what :func:`group_alive` and Pause/Stop use): the
    chain keeps training when the window closes."""
    lines = []
    for settings, resume in runs:
        out = Path(settings.out)
        settings.prepare_folder()
        program, args = settings.command(resume)
        lines.append(
            " ".join(shlex.quote(a) for a in (program, *args))
            + f" >> {shlex.quote(str(out / EVENTS_FILE))}"
            + f" 2>> {shlex.quote(str(out / STDERR_FILE))}"
        )
    # The shell lets go of the window's terminal; each trainer writes to its run folder.
    script = "\n".join(["exec </dev/null >/dev/null 2>&1", "export PYTHONUNBUFFERED=1", *lines])
    ok, pid = QProcess.startDetached("/bin/sh", ["-c", script], str(REPO_ROOT))
    if not ok:
        raise OSError("could not start the trainer in the background (/bin/sh)")
    # Qt detaches with a double fork: the session (and process group) is the one its
    # intermediate process made, which lives on in the shell and its trainers.
    try:
        return os.getpgid(int(pid))
    except ProcessLookupError:  # the chain already ended
        return int(pid)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours has finished
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True  # not our child (detached): it exists


def group_alive(pgid: int | None) -> bool:
    """Whether any process of a background run's group (its shell or its trainer) lives: the
    trainer may still be saving its checkpoint after the shell ended."""
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, signum: int) -> None:
    """Signal a background run's whole process group (the shell of a chain and its trainer:
    the trainer saves its checkpoint, the shell starts nothing after it)."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


class RunFollower(QObject):
    """Follows a run that trains in the background: tails ``OUT/events.jsonl`` and watches the
    pid; same signals as :class:`TrainingProcess`. Pause/Stop send SIGTERM to the pid."""

    event_received = Signal(dict)
    log_received = Signal(str)
    ended = Signal(str, str)

    def __init__(
        self, settings: TrainSettings, pid: int, parent: QObject | None = None, period_ms=300
    ):
        super().__init__(parent)
        self.settings = settings
        self.pid_value = pid
        self.events_path = Path(settings.out) / EVENTS_FILE
        self.log_path = Path(settings.out) / STDERR_FILE
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.last_event: dict | None = None
        self.error_message: str | None = None
        self._offset = 0
        self._log_offset = 0
        self._intent: str | None = None
        self._ended = False
        self.timer = QTimer(self)
        self.timer.setInterval(period_ms)
        self.timer.timeout.connect(self.poll)

    @property
    def pid(self) -> int | None:
        return self.pid_value

    @property
    def running(self) -> bool:
        return not self._ended and group_alive(self.pid_value)

    def start(self, from_offset: int = 0) -> None:
        self._offset = from_offset
        self.poll()
        if not self._ended:
            self.timer.start()

    def pause(self) -> None:
        self._signal("paused")

    def stop(self) -> None:
        self._signal("stopped")

    def _signal(self, intent: str) -> None:
        if group_alive(self.pid_value):
            self._intent = intent
            _signal_group(self.pid_value, signal.SIGTERM)

    def kill(self) -> None:
        if group_alive(self.pid_value):
            _signal_group(self.pid_value, signal.SIGKILL)

    def wait(self, msecs: int = 60000) -> bool:
        deadline = time.monotonic() + msecs / 1000
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
            self.poll()
        self.poll()
        return not self.running

    def _read(self, path: Path, offset: int) -> tuple[bytes, int]:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return b"", offset
        end = data.rfind(b"\n") + 1  # only complete lines
        return data[:end], offset + end

    @Slot()
    def poll(self) -> None:
        if not self._ended and not self.events_path.parent.is_dir():
            # Nothing more can be read; the trainer stops itself at its next write.
            self.timer.stop()
            self._ended = True
            self.error_message = f"run folder {self.events_path.parent} was deleted"
            self.ended.emit("failed", self.error_message)
            return
        alive = group_alive(self.pid_value)  # before reading: nothing is written after death
        data, self._log_offset = self._read(self.log_path, self._log_offset)
        for line in data.replace(b"\r", b"\n").split(b"\n"):
            text = line.decode("utf-8", errors="replace").replace("\x1b[2K", "").rstrip()
            if text:
                self.log_lines.append(text)
                self.log_received.emit(text)
        data, self._offset = self._read(self.events_path, self._offset)
        for line in data.split(b"\n"):
            event = parse_event(line)
            if event is not None:
                self.last_event = event
                if event.get("kind") == "error" and event.get("message"):
                    self.error_message = str(event["message"])
                self.event_received.emit(event)
        finished = (self.last_event or {}).get("kind") in TERMINAL
        if (finished or not alive) and not self._ended:
            self.timer.stop()
            self._ended = True
            kind = (self.last_event or {}).get("kind")
            if self.last_event is None and not self.log_lines and self._intent:
                self.ended.emit("new", "")  # a chain stopped before this run began
            elif kind == "done":
                self.ended.emit("done", "")
            elif kind == "cancelled":
                self.ended.emit(self._intent or "paused", "")
            else:
                reason = self.error_message
                if reason is None:
                    errors = [x for x in self.log_lines if x.startswith("error: ")]
                    reason = (
                        errors[-1].removeprefix("error: ")
                        if errors
                        else "the background trainer ended without a word (killed?)"
                    )
                self.error_message = reason
                self.ended.emit("failed", reason)


# -- run history ---------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run the window knows: where it writes, how it was set up, how it stands."""

    name: str  # e.g. "bert-1201-1840"
    settings: dict  # TrainSettings.to_dict()
    status: str = "new"  # new, running, background, paused, stopped, done, failed
    pid: int | None = None  # of a run training in the background
    message: str = ""  # one-line error of a failed run
    metrics: dict | None = None  # the last held-out evaluation
    steps_done: int = 0
    created: float = field(default_factory=time.time)

    @property
    def out(self) -> Path:
        return Path(self.settings["out"])

    @property
    def arch(self) -> str:
        return self.settings.get("arch", "?")

    def train_settings(self) -> TrainSettings:
        return TrainSettings.from_dict(self.settings)

    @property
    def resumable(self) -> bool:
        from_disk = any(
            p.name.startswith("checkpoint-") and (p / "trainer_state.pt").is_file()
            for p in (self.out.iterdir() if self.out.is_dir() else [])
        )
        # a record rebuilt from its folder may not know its corpus: nothing to resume on
        known = bool(self.settings.get("corpus"))
        return self.status in ("paused", "stopped", "failed") and from_disk and known

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of every checkpoint on disk, oldest first."""
        found = []
        if self.out.is_dir():
            for p in self.out.iterdir():
                if p.is_dir() and p.name.startswith("checkpoint-") and p.name[11:].isdigit():
                    found.append((int(p.name[11:]), p))
        return sorted(found)


def _looks_like_a_run(folder: Path) -> bool:
    """A folder a run wrote: its log, its events, a checkpoint or its export."""
    try:
        if not folder.is_dir():
            return False
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return bool(
        names & {TRAIN_LOG, EVENTS_FILE, "final"}
        or any(n.startswith("checkpoint-") and n[11:].isdigit() for n in names)
    )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def rebuild_record(folder: Path, settings: dict | None = None) -> RunRecord:
    """A run's record from what its folder holds, for a history that was lost: the settings of
    its newest checkpoint (``training_args.json``) or export (``training_summary.json``), the
    steps, metrics and end of its ``train_log.jsonl``. The corpus is not in the folder: a
    record rebuilt without ``settings`` that name it cannot be resumed from the window."""
    folder = Path(folder)
    checkpoints = RunRecord(folder.name, {"out": str(folder)}).checkpoints()
    train: dict = {}
    for _, checkpoint in reversed(checkpoints):
        train = _read_json(checkpoint / "training_args.json").get("train") or {}
        if train:
            break
    if not train:
        train = _read_json(folder / "final" / "training_summary.json").get("train") or {}
    names = {f.name for f in fields(TrainSettings)}
    known = {k: v for k, v in train.items() if k in names and v is not None}
    values = {**TrainSettings(corpus=[], eval_corpus=[]).to_dict(), **known, **(settings or {})}
    values["out"] = str(folder)
    if (folder / MODEL_CONFIG_FILE).is_file() and values.get("model_config") is None:
        values["model_config"] = _read_json(folder / MODEL_CONFIG_FILE) or None
    events = read_events(folder / TRAIN_LOG) or read_events(folder / EVENTS_FILE)
    steps = [e for e in events if e.get("kind") == "step" and isinstance(e.get("step"), int)]
    metrics = next((e["metrics"] for e in reversed(events) if e.get("metrics")), None)
    done = (folder / "final").is_dir() or (events and events[-1].get("kind") == "done")
    message = "rebuilt from its folder"
    if not values.get("corpus"):
        message += " (corpus unknown: start a new run to train on)"
    try:
        created = folder.stat().st_mtime
    except OSError:
        created = time.time()
    return RunRecord(
        name=folder.name,
        settings=TrainSettings.from_dict(values).to_dict(),
        status="done" if done else "stopped",
        message=message,
        metrics=metrics,
        steps_done=steps[-1]["step"] if steps else 0,
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
            except TypeError:
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
            with contextlib.suppress(TypeError):
                self.records.append(RunRecord(**item))
        known = {r.out for r in self.records}
        candidates: list[Path] = []
        for root in [*self.search, *(o.parent for o in outs)]:
            with contextlib.suppress(OSError):
                candidates += sorted(p for p in root.iterdir() if p.is_dir())
        candidates = [*outs, *candidates]
        for folder in dict.fromkeys(candidates):
            if folder not in known and _looks_like_a_run(folder):
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
            alive = group_alive if record.status == "background" else pid_alive
            if record.status in ("running", "background") and not alive(record.pid):
                events = read_events(record.out / TRAIN_LOG)
                last = events[-1]["kind"] if events else None
                record.status = "done" if last == "done" else "stopped"
                record.pid = None
                changed = True
        if changed:
            self.save()


# -- a session: the runs one Start began ---------------------------------------------------------
class TrainSession(QObject):
    """Runs started together: one run, or BERT then ALBERT on the same corpus, token budget and
    seed (one after the other by default; ``parallel`` trains them at the same time).

    Each run's process (a :class:`TrainingProcess`, or a :class:`RunFollower` for a run that
    trains in the background) reports through the session's signals; the history records
    every change of status.
    """

    run_started = Signal(object)  # RunRecord
    event_received = Signal(object, dict)  # RunRecord, event
    log_received = Signal(object, str)  # RunRecord, stderr line
    run_ended = Signal(object, str, str)  # RunRecord, outcome, one-line message
    state_changed = Signal()

    def __init__(
        self,
        history: RunHistory,
        records: list[RunRecord],
        parallel: bool = False,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.history = history
        self.records = records
        self.parallel = parallel
        self.runners: dict[str, TrainingProcess | RunFollower] = {}  # by run name
        self.queue: list[RunRecord] = []
        self.paused = False
        self.stopping = False
        self.detaching = False

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        self.queue = list(self.records)
        self.paused = self.stopping = False
        self._next()

    def _next(self) -> None:
        while self.queue and (self.parallel or not self.active):
            record = self.queue.pop(0)
            self._launch(record, resume=record.resumable)
        self.state_changed.emit()

    def _launch(self, record: RunRecord, resume: bool) -> None:
        settings = record.train_settings()
        if self.parallel and len(self.records) > 1:
            settings.threads = settings.threads or trainer_threads(len(self.records))
            record.settings = settings.to_dict()
        runner = TrainingProcess(settings, self)
        self._attach(record, runner)
        record.status, record.message = "running", ""
        runner.start(resume=resume)
        record.pid = runner.pid
        self.history.save()
        self.run_started.emit(record)

    def follow(self, record: RunRecord, offset: int = 0) -> RunFollower:
        """Re-attach to a run training in the background (pid still alive)."""
        runner = RunFollower(record.train_settings(), int(record.pid or 0), self)
        self._attach(record, runner)
        self.run_started.emit(record)
        runner.start(offset)
        self.state_changed.emit()
        return runner

    def _attach(self, record: RunRecord, runner: TrainingProcess | RunFollower) -> None:
        self.runners[record.name] = runner
        runner.event_received.connect(lambda ev, r=record: self._on_event(r, ev))
        runner.log_received.connect(lambda line, r=record: self.log_received.emit(r, line))
        runner.ended.connect(lambda outcome, msg, r=record: self._on_ended(r, outcome, msg))

    @property
    def active(self) -> list[RunRecord]:
        return [r for r in self.records if r.name in self.runners and self.runners[r.name].running]

    @property
    def waiting(self) -> list[RunRecord]:
        """Runs that were paused (resumable) or not started yet."""
        return [r for r in self.records if r.status in ("paused", "new")]

    @property
    def running(self) -> bool:
        return bool(self.active)

    def pause(self) -> None:
        """SIGTERM to every active run: each saves a checkpoint; Resume continues them."""
        if not self.active:
            return
        self.paused = True
        for record in self.active:
            self.runners[record.name].pause()
        self.state_changed.emit()

    def resume(self) -> None:
        self.paused = False
        paused = [r for r in self.records if r.status in ("paused", "new", "background")]
        self.queue = paused + [r for r in self.queue if r not in paused]
        self._next()

    def stop(self) -> None:
        """SIGTERM to every active run (each saves a checkpoint); queued runs never start."""
        self.stopping = True
        self.paused = False
        for record in self.queue:
            record.status = "stopped"
        self.queue = []
        for record in self.records:
            if record.status == "paused":
                record.status = "stopped"
        for record in self.active:
            self.runners[record.name].stop()
        self.history.save()
        self.state_changed.emit()

    def wait(self, msecs: int = 120000) -> bool:
        """Block until every process ended (the window is closing); delivers their ends."""
        ok = True
        for record in list(self.records):
            runner = self.runners.get(record.name)
            if runner is not None and runner.running:
                ok = runner.wait(msecs) and ok
        return ok

    def detach(self) -> list[RunRecord]:
        """Hand the session's unfinished runs to one background process chain: active runs save
        a checkpoint (SIGTERM) and continue from it bit-exactly in the background; runs not
        started yet follow them. Returns the records now training in the background."""
        self.detaching = True
        self.queue = []
        active = self.active
        for record in active:
            self.runners[record.name].pause()
        for record in active:
            self.runners[record.name].wait()
        chain = [r for r in self.records if r.status in ("paused", "new", "running")]
        if not chain:
            return []
        pid = start_detached(
            [(r.train_settings(), r.resumable or r.status == "paused") for r in chain]
        )
        for record in chain:
            record.status, record.pid = "background", pid
        self.history.save()
        self.state_changed.emit()
        return chain

    # -- reports -------------------------------------------------------------------------------
    def _on_event(self, record: RunRecord, event: dict) -> None:
        if event.get("kind") == "step":
            record.steps_done = int(event.get("step", record.steps_done))
        if event.get("metrics"):
            record.metrics = event["metrics"]
        self.event_received.emit(record, event)

    def _on_ended(self, record: RunRecord, outcome: str, message: str) -> None:
        runner = self.runners.get(record.name)
        if record.status == "background" and isinstance(runner, TrainingProcess):
            return  # paused on the way to the background: the chain continues it
        if self.stopping and outcome == "paused":
            outcome = "stopped"
        record.status = outcome
        record.message = message
        record.pid = None
        self.history.save()
        if (
            self.paused
            and not self.queue
            and not any(
                r.status == "paused"
                or (r is not record and r.name in self.runners and self.runners[r.name].running)
                for r in self.records
            )
        ):
            self.paused = False  # nothing left to resume (e.g. paused during set-up)
        self.run_ended.emit(record, outcome, message)
        if not (self.paused or self.stopping or self.detaching):
            self._next()
        self.state_changed.emit()
