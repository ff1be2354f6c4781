"""Faults a trusted tool survives, on the engine's side: the disk filling up while a checkpoint
or a model folder is written, a kill half-way through a write, a checkpoint damaged on disk,
the run folder deleted while training. Each ends in one line naming the problem, and nothing
that was saved before is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from core import load_model
from core.cli import main
from core.errors import CheckpointError, TrainingError
from core.hf_checkpoint import atomic_folder, write_failure
from core.training import run_checkpoints as ckpt
from tests.core.test_training_cli import TINY_ARGS
from tests.core.training_text import write_train_and_heldout
from tests.tiny_models import engine_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("disk_full_worker.py")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_train_and_heldout(tmp_path_factory.mktemp("faults"), seed=5)


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--arch",
        "bert",
        "--corpus",
        str(corpus / "train.txt"),
        "--eval-corpus",
        str(corpus / "heldout.txt"),
        "--out",
        str(out),
        "--steps",
        "6",
        "--save-every",
        "2",
        "--eval-every",
        "3",
        "--keep-checkpoints",
        "0",
        "--threads",
        "1",
        *TINY_ARGS,
        *extra,
    ]


def worker(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(WORKER), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def step_losses(out: Path) -> list[dict]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [e["losses"] for e in map(json.loads, lines) if e["kind"] == "step"]


def test_a_disk_that_fills_up_during_a_checkpoint_is_one_line_and_resume_continues_exactly(
    corpus, tmp_path, capsys
):
    out = tmp_path / "run"
    run = worker("train", *train_args(corpus, out, "--events", "jsonl", "--quiet"))
    # checkpoint-2 fitted; checkpoint-4 ran out of room part-way
    message = (
        f"could not write {out / 'checkpoint-0000004'}: File too large; checkpoint-0000002 is "
        "intact (--resume continues from it)"
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [f"error: {message}"]
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[-1] == {**events[-1], "kind": "error", "message": message}
    # the previous checkpoint is whole and loads; nothing half-written is left to pick up
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["checkpoint-0000002"]
    assert load_model(out / "checkpoint-0000002").config.num_hidden_layers == 2
    assert ckpt.find_debris(out) == []
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

    # with room again, --resume picks checkpoint-2 and the run ends as an uninterrupted one
    assert main(train_args(corpus, out, "--resume", "--quiet")) == 0
    assert "finished after 6 steps" in capsys.readouterr().out
    straight = tmp_path / "straight"
    tokenizer = str(out / "checkpoint-0000002")  # the same vocabulary (see test_train_view)
    assert main(train_args(corpus, straight, "--tokenizer", tokenizer, "--quiet")) == 0
    assert step_losses(out) == step_losses(straight)  # bit-identical floats
    a, b = (
        load_file(str(out / "final" / "model.safetensors")),
        load_file(str(straight / "final" / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_save_model_failing_half_way_leaves_the_previous_folder(tmp_path):
    src = engine_checkpoint(tmp_path / "src", tiny_config("bert"), seed=1)
    dst = tmp_path / "out" / "exported"
    run = worker("save", str(src), str(dst))
    assert run.returncode == 2, run.stderr
    assert run.stdout.strip() == f"could not write {dst}: File too large"
    # the first save, untouched: same weights as its source, loadable; no temporary folder
    saved, source = (
        load_file(str(dst / "model.safetensors")),
        load_file(str(src / "model.safetensors")),
    )
    assert saved.keys() == source.keys() and all((saved[k] == source[k]).all() for k in saved)
    assert load_model(dst).config.hidden_size == 32
    assert sorted(p.name for p in dst.parent.iterdir()) == ["exported"]


def test_write_failures_name_the_systems_reason():
    import errno

    assert write_failure(OSError(errno.ENOSPC, "No space left on device")) == (
        "No space left on device"
    )
    # torch.save: a RuntimeError whose context is the OSError
    wrapped = RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
    wrapped.__context__ = OSError(errno.EFBIG, "File too large")
    assert write_failure(wrapped) == "File too large"
    # safetensors and tokenizers: "(os error N)" in the message
    assert write_failure(Exception("I/O error: (os error 28)")) == os.strerror(28)
    assert write_failure(ValueError("odd\nsecond line")) == "odd"


def test_a_swap_interrupted_between_its_renames_restores_the_previous_folder(tmp_path):
    """Killed after ``final/`` was moved aside and before the new one took its place: the next
    run in the folder puts the previous one back instead of removing it as debris."""
    out = tmp_path / "run"
    final = engine_checkpoint(out / "final", tiny_config("bert"), seed=1)
    before = (final / "model.safetensors").read_bytes()
    os.replace(final, out / ".final.old-4242")
    (out / ".final.tmp-abcd").mkdir()
    (out / ".final.tmp-abcd" / "config.json").write_text("{}")
    assert ckpt.remove_debris(out) == [out / ".final.tmp-abcd"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert (out / "final" / "model.safetensors").read_bytes() == before


def test_a_failed_rename_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "final"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"old")
    real = os.replace

    def refuse_new(src, dst):
        if Path(src).name.startswith(".final.tmp-"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_new)
    with pytest.raises(CheckpointError) as caught:
        atomic_folder(target, lambda tmp: (tmp / "model.safetensors").write_bytes(b"new"))
    assert str(caught.value) == f"could not write {target}: No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    assert (target / "model.safetensors").read_bytes() == b"old"


def test_resume_skips_a_checkpoint_missing_its_files(tmp_path, caplog):
    """A checkpoint damaged on disk (its weights gone) is passed over for the one before."""
    out = tmp_path / "run"
    for step in (2, 4):
        folder = engine_checkpoint(out / ckpt.checkpoint_name(step), tiny_config("bert"), seed=1)
        (folder / ckpt.STATE_FILE).write_bytes(b"state")
        (folder / ckpt.ARGS_FILE).write_text("{}")
    (out / "checkpoint-0000004" / "model.safetensors").unlink()
    assert ckpt.latest_checkpoint(out) == out / "checkpoint-0000002"
    assert "checkpoint-0000004: incomplete checkpoint" in caplog.text


def test_a_run_folder_deleted_while_training_stops_the_run_in_one_line(corpus, tmp_path):
    import shutil

    from core.training import prepare_training
    from tests.core.training_text import tiny_train_config

    out = tmp_path / "run"
    trainer = prepare_training(
        tiny_train_config(steps=4, save_every=2),
        [corpus / "train.txt"],
        [corpus / "heldout.txt"],
        out_dir=out,
    )
    events = trainer.events()
    while next(events).kind != "checkpoint":
        pass
    shutil.rmtree(out)
    with pytest.raises(TrainingError) as caught:
        for _ in events:
            pass
    assert str(caught.value) == f"run folder {out} was deleted while training: stopped"
    assert not out.exists()  # not re-made holding a lone checkpoint
