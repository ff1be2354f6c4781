"""``python -m core train --events jsonl``: the event stream the window's Train view reads,
and SIGTERM as a pause (the window's Pause/Stop), run as real child processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.training import run_checkpoints as ckpt
from tests.core.training_text import TINY_TRAIN_ARGS, write_corpus

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--arch", "bert", *TINY_TRAIN_ARGS]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("events")
    write_corpus(folder / "train.txt", n_docs=12, seed=3)
    write_corpus(folder / "heldout.txt", n_docs=4, seed=4)
    return folder


def command(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "core",
        "train",
        "--corpus",
        str(corpus / "train.txt"),
        "--eval-corpus",
        str(corpus / "heldout.txt"),
        "--out",
        str(out),
        *TINY,
        "--events",
        "jsonl",
        *extra,
    ]


def child_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_events_jsonl_is_the_whole_stdout_and_matches_the_log(corpus, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        command(corpus, out, "--steps", "4", "--save-every", "2", "--eval-every", "2"),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every line is JSON
    kinds = [e["kind"] for e in events]
    first_step = kinds.index("step")
    assert set(kinds[:first_step]) == {"prepare"}
    assert kinds[first_step:] == [
        "step",
        "step",
        "eval",
        "checkpoint",
        "step",
        "step",
        "eval",
        "done",
    ]
    messages = [e["message"] for e in events[:first_step]]
    assert messages[0] == "training the tokenizer (vocabulary 80)"
    assert any(m.startswith("tokenized train.txt: ") for m in messages)
    assert all(e["fraction"] is None or 0.0 <= e["fraction"] <= 1.0 for e in events)
    # tokens_seen grows by exactly the step's non-padding tokens and ends at the summary's.
    steps = [e for e in events if e["kind"] == "step"]
    seen = [e["tokens_seen"] for e in steps]
    assert all(b > a > 0 for a, b in itertools.pairwise(seen))
    summary = json.loads((out / "final" / ckpt.SUMMARY_FILE).read_text())
    assert events[-1]["tokens_seen"] == seen[-1] == summary["tokens_seen"]
    assert events[-1]["checkpoint"] == str(out / "final")
    checkpoint = next(e for e in events if e["kind"] == "checkpoint")
    assert checkpoint["checkpoint"] == str(out / ckpt.checkpoint_name(2))
    # The log holds the same run events (not the set-up ones), numbers included.
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log == events[first_step:]
    # People's output went to stderr: the progress lines, the prepare lines, the summary.
    assert "tokenizing train.txt" in proc.stderr and "finished after 4 steps" in proc.stderr


@pytest.mark.slow
def test_sigterm_pauses_like_ctrl_c_and_the_run_resumes(corpus, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        command(corpus, out, "--steps", "100000"),
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = []
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["kind"] == "step":
                proc.send_signal(signal.SIGTERM)
                break
        events += [json.loads(line) for line in proc.stdout]
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    last = events[-1]
    assert last["kind"] == "cancelled"
    folder = Path(last["checkpoint"])
    assert folder == out / ckpt.checkpoint_name(last["step"])
    assert (folder / ckpt.STATE_FILE).is_file()
    state = ckpt.load_trainer_state(folder)
    assert state["step"] == last["step"] and state["tokens_seen"] == last["tokens_seen"] > 0
    # Resuming (the same command plus --resume: the schedule cannot change) continues from
    # that step, tokens_seen included; paused again after two steps.
    stop = last["step"] + 2
    resumed = subprocess.Popen(
        command(corpus, out, "--steps", "100000", "--resume"),
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        again = []
        for line in resumed.stdout:
            again.append(json.loads(line))
            if again[-1]["kind"] == "step" and again[-1]["step"] == stop:
                resumed.send_signal(signal.SIGTERM)
                break
        again += [json.loads(line) for line in resumed.stdout]
        resumed.wait(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 130, resumed.stderr.read()
    steps = [e for e in again if e["kind"] == "step"]
    # The signal may land during the step after `stop`, which then finishes first.
    end = steps[-1]["step"]
    assert end >= stop and [e["step"] for e in steps] == list(range(last["step"] + 1, end + 1))
    assert steps[0]["tokens_seen"] > last["tokens_seen"]
    assert again[-1]["kind"] == "cancelled" and again[-1]["step"] == end


def test_error_event_is_the_cli_error_line(corpus, tmp_path):
    args = command(corpus, tmp_path / "run", "--steps", "2")
    args[args.index("--corpus") + 1] = str(tmp_path / "missing.txt")
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["kind"] for e in events] == ["error"]
    assert proc.stderr.strip() == f"error: {events[0]['message']}"
    assert "missing.txt: no such file" in events[0]["message"]


@pytest.mark.slow
def test_sigterm_during_set_up_stops_with_an_event_not_a_signal_death(corpus, tmp_path):
    proc = subprocess.Popen(
        command(corpus, tmp_path / "run", "--steps", "100000"),
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = []
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["kind"] == "prepare" and events[-1]["message"].startswith("building"):
                proc.send_signal(signal.SIGTERM)
                break
        events += [json.loads(line) for line in proc.stdout]
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130  # not -15: the CLI handled it
    last = events[-1]
    # Usually still building the model (nothing to save: "interrupted"); on a fast machine
    # the first step may have started, and then it pauses with a checkpoint.
    assert (last["kind"], last["message"]) == ("error", "interrupted") or (
        last["kind"] == "cancelled" and Path(last["checkpoint"]).is_dir()
    )
