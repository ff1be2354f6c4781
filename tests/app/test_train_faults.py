"""Faults the Train tab survives: its run history cut short or garbage, a run folder deleted
while it is listed, followed or loaded, a trainer killed half-way through a checkpoint. The
window starts, says what happened in one line, loses nothing it can rebuild."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.train.event_stream import read_events
from app.train.history import RunHistory, RunRecord
from app.train.run_folder import TRAIN_LOG
from app.train.settings import RunSettings
from core.training.config import TrainConfig
from core.training.run_status import RunStatus
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
    config = TrainConfig(preset="bert-tiny", steps=3, seq_len=32)  # the run's own settings
    return RunSettings(config, out=out, corpus=[str(corpus / "train.txt")]).to_dict()


def write_history(path: Path, runs: dict[str, Path]) -> bytes:
    history = RunHistory(path)
    for name, status, steps in (("done", RunStatus.DONE, 3), ("stopped", RunStatus.STOPPED, 2)):
        out = runs[name]
        record = RunRecord(out.name, settings_for(out, runs["corpus"]), status=status)
        record.steps_done = steps
        events = read_events(out / TRAIN_LOG)
        record.metrics = next((e["metrics"] for e in reversed(events) if e.get("metrics")), None)
        history.add(record)
    return path.read_bytes()


def make_view(qtbot, demo_root, history_path: Path, runs_root: Path):
    from app.probe.state import AppState
    from app.train.train_view import TrainView

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
    records = view.train_state.history.records
    assert [r.name for r in RunHistory(path).records] == [r.name for r in records]

    # both runs listed with what their folders say
    by_name = {r.name: r for r in records}
    done, stopped = by_name[runs["done"].name], by_name[runs["stopped"].name]
    assert (done.status, done.steps_done, stopped.status, stopped.steps_done) == (
        RunStatus.DONE,
        3,
        RunStatus.STOPPED,
        2,
    )
    log = read_events(runs["done"] / TRAIN_LOG)
    assert done.metrics == next(e["metrics"] for e in reversed(log) if e.get("metrics"))
    assert done.settings["preset"] == "bert-tiny" and done.settings["steps"] == 3
    assert done.settings["seq_len"] == 32 and done.out == runs["done"]
    rows = {row[0]: row for row in view.run_rows()}
    assert rows[stopped.name][1:3] == (RunStatus.STOPPED, "2/3")
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
    from app.train.train_view import train_history_path

    path = train_history_path(settings)
    path.write_bytes(b"\x00" * 64)
    window = make_window()
    assert window.train.status.text().startswith("the run history was damaged (")
    assert len(backups(path)) == 1
    window.close()
    # the next start finds a good (rebuilt) history: nothing more to say
    from app.train.train_view import TrainView

    again = TrainView(window.state, history_path=path, runs_root=path.parent / "none")
    assert again.train_state.history.problem is None and len(backups(path)) == 1
    again.deleteLater()


# -- folders deleted while in use ---------------------------------------------------------------
def test_a_loaded_model_whose_folder_was_deleted_still_probes(qtbot, window, tmp_path):
    from tests.app.helpers import WAIT_MS, probe_and_wait, start_and_wait
    from tests.tiny_models import engine_checkpoint, tiny_config

    start_and_wait(qtbot, window)
    folder = engine_checkpoint(tmp_path / "mine", tiny_config("bert"), seed=4)
    with qtbot.waitSignal(window.state.probed, timeout=WAIT_MS):
        window.state.open_folder(folder)
    shutil.rmtree(folder)
    bundle = probe_and_wait(qtbot, window, "the king went to the city .")
    assert bundle.result.text == "the king went to the city ."
    assert window.state.current.path == folder  # the weights are in memory


def test_a_listed_checkpoint_whose_folder_was_deleted_says_so(qtbot, tmp_path, demo_root, runs):
    view = make_view(qtbot, demo_root, tmp_path / "runs.json", runs["root"])
    out = tmp_path / "copy"
    shutil.copytree(runs["done"], out)
    record = RunRecord(out.name, settings_for(out, runs["corpus"]), status=RunStatus.DONE)
    view.train_state.list_checkpoint(record, out / "checkpoint-0000002", 2)
    # a checkpoint event whose folder is already gone is not listed
    view.train_state.list_checkpoint(record, out / "checkpoint-0000009", 9)
    assert view.checkpoint_names() == [f"{out.name} @ step 2"]
    shutil.rmtree(out)
    key = view.checkpoints.item(0).data(Qt.ItemDataRole.UserRole)
    view.probe_checkpoint(key)
    assert view.status.text() == (
        f"{out.name} @ step 2: its folder {out / 'checkpoint-0000002'} was deleted"
    )
    assert view.state.current_key == ""  # nothing was asked of the engine


def test_the_follower_of_a_run_whose_folder_was_deleted_says_so(qtbot, tmp_path, demo_root, runs):
    """A run training in the background (here a stand-in process group) whose folder goes:
    the re-attached follower ends it with one line instead of waiting or raising."""
    out = tmp_path / "background-run"
    out.mkdir()
    (out / "events.jsonl").write_text("")
    stand_in = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        history = RunHistory(tmp_path / "runs.json")
        record = RunRecord(out.name, settings_for(out, runs["corpus"]), status=RunStatus.BACKGROUND)
        record.pid = stand_in.pid
        history.add(record)
        view = make_view(qtbot, demo_root, history.path, tmp_path)
        assert view.status.text().startswith("re-attached to background-run")
        shutil.rmtree(out)
        with qtbot.waitSignal(view.train_state.run_ended, timeout=10_000) as blocker:
            pass
        assert blocker.args[1:] == [RunStatus.FAILED, f"run folder {out} was deleted"]
        assert view.status.text() == f"{out.name} failed: run folder {out} was deleted"
    finally:
        stand_in.kill()
        stand_in.wait()


# -- a trainer killed in the middle of a checkpoint ----------------------------------------------
# Test-only: a sitecustomize on the child's PYTHONPATH stops the trainer (SIGSTOP) just before
# checkpoint-4's temporary folder is renamed into place: a complete folder under its temporary
# name, the state a kill mid-write leaves. The test then kills it for real (SIGKILL).
STOP_BEFORE_RENAME = """
import os, signal
_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if os.path.basename(os.fspath(src)).startswith(".checkpoint-0000004.tmp-"):
        os.kill(os.getpid(), signal.SIGSTOP)
    return _replace(src, dst, *args, **kwargs)
os.replace = replace
"""


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def test_a_trainer_killed_mid_checkpoint_resumes_from_the_last_complete_one_exactly(
    qtbot, window, tmp_path, demo_root, monkeypatch
):
    import os
    import signal

    import numpy as np
    from numpy.testing import assert_array_equal

    from tests.app.test_train_view import configure, start_run, wait_ended, weights
    from tests.core.training_text import write_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus / "train.txt", n_docs=12, seed=3)
    write_corpus(corpus / "heldout.txt", n_docs=4, seed=4)
    view = window.train
    tokenizer = str(demo_root / "bert-mini")  # one vocabulary for both runs (see test_train_view)
    configure(window, corpus, tmp_path / "straight", steps=6, every=2)
    view.form.tokenizer.setText(tokenizer)
    view.start_button.click()
    straight, _, _ = wait_ended(qtbot, view, RunStatus.DONE)

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(STOP_BEFORE_RENAME)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    configure(window, corpus, tmp_path / "killed", steps=6, every=2)
    view.form.tokenizer.setText(tokenizer)
    record = start_run(qtbot, view)
    pid = next(iter(view.train_state.session.runners.values())).pid
    qtbot.waitUntil(lambda: process_state(pid) == "T", timeout=240_000)
    half = [p.name for p in record.out.iterdir() if p.name.startswith(".checkpoint-0000004.tmp-")]
    assert len(half) == 1 and not (record.out / "checkpoint-0000004").exists()
    os.kill(pid, signal.SIGKILL)
    record, _, message = wait_ended(qtbot, view, RunStatus.FAILED)
    assert message == "the trainer process was killed; Resume continues from checkpoint-0000002"
    assert view.status.text() == f"{record.name} failed: {message}"
    rows = {row[0]: row for row in view.run_rows()}
    assert rows[record.name][1] == RunStatus.FAILED

    monkeypatch.delenv("PYTHONPATH")
    view.runs.setCurrentItem(view._item(record.name))
    assert view.resume_button.isEnabled()
    view.resume_button.click()
    resumed, _, _ = wait_ended(qtbot, view, RunStatus.DONE)
    assert resumed is record
    assert not [p.name for p in record.out.iterdir() if p.name.startswith(".")]  # debris gone
    a, b = weights(straight.out / "final"), weights(record.out / "final")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    steps = [e for e in read_events(straight.out / TRAIN_LOG) if e["kind"] == "step"]
    again = [e for e in read_events(record.out / TRAIN_LOG) if e["kind"] == "step"]
    assert [e["step"] for e in again] == [1, 2, 3, 4, 5, 6]
    assert_array_equal([e["losses"]["mlm"] for e in again], [e["losses"]["mlm"] for e in steps])
    _, y = view.curves.curve(record.name, "mlm")
    assert_array_equal(y, [e["losses"]["mlm"] for e in steps])
