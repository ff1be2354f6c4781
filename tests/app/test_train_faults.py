"""Faults the Train tab survives: its run history cut short or garbage, a run folder deleted
while it is listed, followed or loaded, a trainer killed half-way through a checkpoint. The
window starts, says what happened in one line, loses nothing it can rebuild."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest

from app.training_runs import TRAIN_LOG, RunHistory, RunRecord, TrainSettings, read_events
from tests.core.training_text import TINY_TRAIN_ARGS, write_train_and_heldout


@pytest.fixture(autouse=True)
def _collect_around():
    """Cyclic garbage collected outside Qt's locked regions (see CONVENTIONS, Lessons)."""
    gc.collect()
    yield
    gc.collect()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A runs root with two real runs: "done" (3 steps, checkpoints 2 and 3, final/) and
    "stopped" (its copy cut back to checkpoint-2, as a run stopped there leaves it)."""
    from core.cli import main

    base = tmp_path_factory.mktemp("train-faults")
    (base / "corpus").mkdir()
    corpus = write_train_and_heldout(base / "corpus", seed=7)
    root = base / "runs"
    done = root / "bert-tiny-100000"
    args = ["train", "--arch", "bert", "--corpus", str(corpus / "train.txt")]
    args += ["--eval-corpus", str(corpus / "heldout.txt"), "--out", str(done), "--steps", "3"]
    args += ["--save-every", "2", "--eval-every", "2", "--quiet", *TINY_TRAIN_ARGS]
    assert main(args) == 0
    stopped = root / "bert-tiny-110000"
    shutil.copytree(done, stopped)
    shutil.rmtree(stopped / "final")
    shutil.rmtree(stopped / "checkpoint-0000003")
    kept = [e for e in read_events(stopped / TRAIN_LOG) if e["step"] <= 2 and e["kind"] != "done"]
    (stopped / TRAIN_LOG).write_text("".join(json.dumps(e) + "\n" for e in kept))
    return {"root": root, "done": done, "stopped": stopped, "corpus": corpus}


def settings_for(out: Path, corpus: Path) -> dict:
    return TrainSettings(
        preset="bert-tiny", corpus=[str(corpus / "train.txt")], out=str(out), steps=3
    ).to_dict()


def write_history(path: Path, runs: dict[str, Path]) -> bytes:
    history = RunHistory(path)
    for name, status, steps in (("done", "done", 3), ("stopped", "stopped", 2)):
        out = runs[name]
        record = RunRecord(out.name, settings_for(out, runs["corpus"]), status=status)
        record.steps_done = steps
        events = read_events(out / TRAIN_LOG)
        record.metrics = next((e["metrics"] for e in reversed(events) if e.get("metrics")), None)
        history.add(record)
    return path.read_bytes()


def make_view(qtbot, demo_root, history_path: Path, runs_root: Path):
    from app.state import AppState
    from app.views.train_view import TrainView

    state = AppState(demo_root)
    view = TrainView(state, history_path=history_path, runs_root=runs_root)
    qtbot.addWidget(view)
    return view


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_run_history_is_kept_aside_and_rebuilt_from_the_run_folders(
    qtbot, tmp_path, demo_root, runs, damage
):
    path = tmp_path / "runs.json"
    good = write_history(path, runs)
    bad = good[: len(good) * 2 // 3] if damage == "truncated" else b"\x00\xff\xfe garbage \x89PNG"
    path.write_bytes(bad)
    view = make_view(qtbot, demo_root, path, runs["root"])

    # one line in the Train tab; the bad file kept as it was; a good history written anew
    reason = "(cut short at line " if damage == "truncated" else "(not UTF-8 text)"
    assert view.status.text().startswith("the run history was damaged (")
    assert reason in view.status.text()
    (backup,) = backups(path)
    assert view.status.text().endswith(f"kept it as {backup.name}, found 2 runs in the run folders")
    assert backup.read_bytes() == bad
    assert [r.name for r in RunHistory(path).records] == [r.name for r in view.history.records]

    # both runs listed with what their folders say
    by_name = {r.name: r for r in view.history.records}
    done, stopped = by_name[runs["done"].name], by_name[runs["stopped"].name]
    assert (done.status, done.steps_done, stopped.status, stopped.steps_done) == (
        "done",
        3,
        "stopped",
        2,
    )
    log = read_events(runs["done"] / TRAIN_LOG)
    assert done.metrics == next(e["metrics"] for e in reversed(log) if e.get("metrics"))
    assert done.settings["preset"] == "bert-tiny" and done.settings["steps"] == 3
    assert done.settings["seq_len"] == 32 and done.out == runs["done"]
    rows = {row[0]: row for row in view.run_rows()}
    assert rows[stopped.name][1:3] == ("stopped", "2/3")
    if damage == "truncated":
        # the first record was whole in the cut file: kept as it was, corpus and all
        assert done.settings["corpus"] == [str(runs["corpus"] / "train.txt")]
        assert done.message == ""
    # a rebuilt record does not know its corpus: not offered for Resume
    assert stopped.settings["corpus"] == [] and "corpus unknown" in stopped.message
    assert not stopped.resumable
    # its curves still come from its log
    view.overlay(stopped.name)
    assert view.curves.curve(stopped.name, "mlm")[1].size == 2


def test_the_window_starts_on_a_garbage_history_and_says_so_once(make_window, settings):
    from app.views.train_view import train_history_path

    path = train_history_path(settings)
    path.write_bytes(b"\x00" * 64)
    window = make_window()
    assert window.train.status.text().startswith("the run history was damaged (")
    assert len(backups(path)) == 1
    window.close()
    # the next start finds a good (rebuilt) history: nothing more to say
    from app.views.train_view import TrainView

    again = TrainView(window.state, history_path=path, runs_root=path.parent / "none")
    assert again.history.problem is None and len(backups(path)) == 1
    again.deleteLater()
