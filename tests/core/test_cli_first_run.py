"""What a new user meets first: every mistake is one ``error:`` line before any work, a
finished run is left alone, an interrupted one leaves no debris behind, and the command
line reads numbers and names itself as typed. CLI behaviour is tested in real child
processes (``python -m core`` from this checkout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import join_negative_numbers, program_name
from core.data import check_corpus, iter_documents
from core.training import TrainConfig, prepare_data, prepare_training
from core.training import run_checkpoints as ckpt
from tests.core.training_text import TINY_TRAIN_ARGS, word_tokenizer, write_corpus

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "resources" / "models" / "bert-mini"
TINY = TINY_TRAIN_ARGS


def cli(*args: str, argv0: str | None = None) -> subprocess.CompletedProcess:
    """``python -m core ARGS`` in this checkout (or, with ``argv0``, as that program)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if argv0 is None:
        command = [sys.executable, "-m", "core", *args]
    else:
        code = f"import sys; sys.argv[0] = {argv0!r}; from core.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--arch", "bert", "--corpus", str(corpus), "--out", str(out), *TINY, *extra]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("first-run")
    write_corpus(folder / "train.txt", n_docs=12, seed=3)
    return folder / "train.txt"


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory) -> Path:
    """A completed 2-step run (checkpoint-0000002, final/, log)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    proc = cli(*train_args(corpus, out, "--steps", "2", "--quiet"))
    assert proc.returncode == 0, proc.stderr
    return out


# -- 5. bad output paths: one line, before any work ----------------------------------------------
def test_out_that_is_a_file_or_under_a_file_fails_first(corpus, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    for out, fault in ((a_file, "is a file, not a folder"), (a_file / "run", "is a file")):
        line = one_error_line(cli(*train_args(corpus, out, "--steps", "2")))
        assert line.startswith(f"error: --out {out}: ") and fault in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing trained
    assert a_file.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_out_in_a_read_only_folder_fails_first(corpus, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = one_error_line(cli(*train_args(corpus, locked / "run", "--steps", "2")))
        assert f"--out {locked / 'run'}: cannot write in {locked}" in line
    finally:
        locked.chmod(0o700)


def test_output_files_of_eval_probe_and_compare_are_checked_first(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    heldout = str(ROOT / "resources" / "corpus" / "heldout.txt")
    cases = [
        (["eval", str(MODEL), "--corpus", heldout, "--json", str(a_file / "s.json")], "--json"),
        (["probe", str(MODEL), "a [MASK] .", "--out", str(a_file / "p.npz")], "--out"),
        (["compare", str(MODEL), str(MODEL), "hi", "--json", str(a_file / "c.json")], "--json"),
        (["compare", str(MODEL), str(MODEL), "hi", "--csv", str(tmp_path)], "--csv"),
        (["memory", "--preset", "bert-mini", "--csv", str(a_file / "m.csv")], "--csv"),
    ]
    for args, option in cases:
        line = one_error_line(cli(*args))
        assert line.startswith(f"error: {option} "), line
        assert "is a file, not a folder" in line or "is a folder, not a file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_eval_json_file_is_written_with_the_printed_scores(tmp_path):
    out = tmp_path / "scores" / "bert.json"
    heldout = str(ROOT / "resources" / "corpus" / "heldout.txt")
    proc = cli("eval", str(MODEL), "--corpus", heldout, "--max-examples", "16", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())
    assert scores["n_sequences"] == 16
    assert f"MLM accuracy:   {scores['mlm_accuracy']:.2%}" in proc.stdout
    assert f"(loss {scores['mlm_loss']:.4f} nats)" in proc.stdout


def test_damaged_trainer_state_is_one_line_naming_the_file(finished_run, corpus, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    state = out / ckpt.checkpoint_name(2) / ckpt.STATE_FILE
    state.write_bytes(os.urandom(4096))
    line = one_error_line(cli(*train_args(corpus, out, "--steps", "2", "--resume")))
    assert line.startswith(f"error: {state}: unreadable trainer state")


# -- 6. document counts before work --------------------------------------------------------------
def test_one_document_bert_corpus_is_refused_before_any_folder_is_made(tmp_path):
    one_doc = tmp_path / "one.txt"
    one_doc.write_text("the cat sat on the mat .\nthe dog ran .\na bird sang .\n")
    out = tmp_path / "run"
    line = one_error_line(cli(*train_args(one_doc, out, "--steps", "2")))
    assert f"corpus {one_doc}: 1 document" in line and "next-sentence prediction" in line
    assert not out.exists()
    # The same for a one-document held-out file.
    two = tmp_path / "two.txt"
    two.write_text("the cat sat .\n\nthe dog ran .\n")
    line = one_error_line(cli(*train_args(two, out, "--steps", "2", "--eval-corpus", str(one_doc))))
    assert f"evaluation corpus {one_doc}: 1 document" in line
    assert not out.exists()


def test_check_corpus_counts_documents_as_they_are_read(tmp_path):
    # \r\n, \r and \n line ends, blank lines of spaces, and a \r\n split across the 1 MiB
    # chunks the check reads: the counts are those of iter_documents, which training uses.
    big = tmp_path / "big.txt"
    head = "x" * ((1 << 20) - 1)
    big.write_bytes((head + "\r\n\r\nb c\r\rd\n \n\ne\n").encode())
    small = tmp_path / "small.txt"
    small.write_text("one\ntwo\n\n\nthree")
    checked = check_corpus([big, small])
    assert checked == [big, small]  # still the list of checked files
    docs = list(iter_documents([big, small]))
    assert checked.documents == len(docs) == 6
    assert checked.lines == sum(len(d) for d in docs) == 7
    assert checked.characters == sum(len(line) for d in docs for line in d)


def test_bert_without_eval_corpus_holds_out_two_documents(tmp_path):
    # NSP needs 2 documents on each side; 5 documents used to hold out 1 and then fail.
    write_corpus(tmp_path / "five.txt", n_docs=5, seed=1)
    config = TrainConfig(arch="bert", preset="bert-tiny", seq_len=32, device="cpu")
    data = prepare_data(config, [tmp_path / "five.txt"], tokenizer=word_tokenizer("bert"))
    assert data.train.corpus.n_documents == 3 and data.eval.corpus.n_documents == 2


# -- 7. a finished run stays finished ------------------------------------------------------------
def test_resume_of_a_finished_run_says_so_and_changes_nothing(finished_run, corpus, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out)
    proc = cli(*train_args(corpus, out, "--steps", "2", "--resume", "--events", "jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "already finished its 2 steps" in proc.stderr and "--init-from" in proc.stderr
    assert "final losses" not in proc.stderr + proc.stdout
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["kind"] for e in events] == ["prepare"]
    assert "already finished" in events[0]["message"]
    assert snapshot(out) == before  # same files, bytes and modification times


def test_resume_cannot_lengthen_the_schedule(finished_run, corpus, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out)
    for change in (["--steps", "4"], ["--lr", "0.001"], ["--warmup", "0"]):
        line = one_error_line(cli(*train_args(corpus, out, "--steps", "2", "--resume", *change)))
        assert f"{' '.join(change)} asked" in line
        assert f"--init-from {out / ckpt.checkpoint_name(2)}" in line
    assert snapshot(out) == before


# -- 8. debris of an interrupted save ------------------------------------------------------------
def test_a_new_run_removes_its_own_debris_and_nothing_else(corpus, tmp_path):
    out = tmp_path / "run"
    debris = [
        ".checkpoint-0000004.tmp-k2j4x",
        ".final.tmp-a8_b1",
        ".deleting-checkpoint-0000001-4242",
        "checkpoint-0000003",  # half-deleted by an older version: no trainer state
        "cache/.corpus-0123456789abcdef.tmp-zz9",
    ]
    for name in debris:
        (out / name).mkdir(parents=True)
        (out / name / "model.safetensors").write_bytes(b"\0" * 64)
    # the previous final/, moved aside by a swap killed between its two renames: put back
    (out / ".final.old-4242").mkdir()
    (out / ".final.old-4242" / "model.safetensors").write_bytes(b"\0" * 64)
    (out / "checkpoint-0000003" / "model.safetensors").unlink()
    (out / "checkpoint-0000003" / "config.json").write_text("{}")
    users = ["my-notes", "checkpoint-0000009", "final-old", ".checkpoint-9", "cache/mine"]
    for name in users:
        (out / name).mkdir(parents=True)
        (out / name / "notes.txt").write_text("mine\n")
    proc = cli(*train_args(corpus, out, "--steps", "2"))
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if line.startswith("removed ")]
    assert said == [
        "removed 5 temporary folder(s) left by an interrupted run: "
        + ", ".join([*sorted(debris[:-1]), debris[-1]])
    ]
    assert not any((out / name).exists() for name in [*debris, ".final.old-4242"])
    assert all((out / name / "notes.txt").read_text() == "mine\n" for name in users)
    assert (out / "final" / "model.safetensors").is_file()


def test_old_checkpoints_are_renamed_before_they_are_deleted(tmp_path, monkeypatch):
    write_corpus(tmp_path / "t.txt", n_docs=6, seed=2)
    config = TrainConfig(
        arch="bert",
        preset="bert-tiny",
        steps=3,
        seq_len=32,
        batch_size=2,
        warmup=1,
        device="cpu",
        save_every=1,
        keep_checkpoints=1,
    )
    trainer = prepare_training(
        config, [tmp_path / "t.txt"], tokenizer=word_tokenizer("bert"), out_dir=tmp_path / "run"
    )
    deleted = []

    def killed_midway(path, ignore_errors=False):  # a kill while deleting: one file gone
        deleted.append(Path(path).name)
        next(Path(path).iterdir()).unlink()
        raise KeyboardInterrupt

    events = trainer.events()
    for ev in events:
        if ev.kind == "checkpoint" and ev.step == 1:
            break
    monkeypatch.setattr(shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        for _ in events:
            pass
    monkeypatch.undo()
    run = tmp_path / "run"
    assert deleted[0].startswith(".deleting-checkpoint-0000001-")
    assert not (run / "checkpoint-0000001").exists()
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-0000002"]
    assert [p.name for p in ckpt.find_debris(run)] == [deleted[0]]
    assert [p.name for p in ckpt.remove_debris(run)] == [deleted[0]]
    assert ckpt.find_debris(run) == []


# -- 9. what DDP/accumulation guarantee ----------------------------------------------------------
def test_accumulation_equals_a_bigger_batch_only_without_dropout(tmp_path):
    """Each micro-batch (and each process) draws its own dropout masks: the exact-update
    guarantee of the README and the trainer holds at dropout 0, not at 0.1."""
    write_corpus(tmp_path / "t.txt", n_docs=8, seed=4)
    first = {}
    for dropout in (0.0, 0.1):
        for batch, accum in ((8, 1), (4, 2)):
            config = TrainConfig(
                arch="bert",
                preset="bert-tiny",
                steps=1,
                seq_len=32,
                batch_size=batch,
                grad_accum=accum,
                device="cpu",
                heldout_every=0,
                config_overrides={
                    "hidden_dropout_prob": dropout,
                    "attention_probs_dropout_prob": dropout,
                },
            )
            trainer = prepare_training(config, [tmp_path / "t.txt"], tokenizer=word_tokenizer())
            step = next(ev for ev in trainer.events() if ev.kind == "step")
            first[dropout, accum] = step.losses["mlm"]
    assert first[0.0, 2] == pytest.approx(first[0.0, 1], rel=1e-5)
    assert abs(first[0.1, 2] - first[0.1, 1]) > 1e-3


# -- 11. negative numbers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lr", "-1e-4", "learning rate must be > 0, got -0.0001"),
        ("--steps", "-5", "steps must be a positive integer, got -5"),
        ("--batch-size", "-2", "batch size must be a positive integer, got -2"),
        ("--seed", "-1", "seed must be an integer >= 0, got -1"),
    ],
)
def test_negative_numbers_reach_the_range_check(corpus, tmp_path, option, value, message):
    out = tmp_path / "run"
    args = train_args(corpus, out, "--steps", "2")
    line = one_error_line(cli(*args, option, value))
    assert line == f"error: {message}"
    assert not out.exists()


def test_join_negative_numbers_only_joins_number_values():
    numeric = {"--lr", "--steps"}
    assert join_negative_numbers(["--lr", "-1e-4", "--steps", "-3"], numeric) == [
        "--lr=-1e-4",
        "--steps=-3",
    ]
    # Not numbers, not numeric options, or after "--": left to argparse.
    assert join_negative_numbers(["--lr", "-x", "--out", "-1", "--", "--lr", "-1"], numeric) == [
        "--lr",
        "-x",
        "--out",
        "-1",
        "--",
        "--lr",
        "-1",
    ]


# -- 13. probe without --out, the program's name ---------------------------------------------------
def test_probe_without_out_prints_tokens_and_guesses(tmp_path):
    proc = cli("probe", str(MODEL), "the [MASK] of the lord came upon him .", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tokens (11): [CLS] the [MASK] of the lord")
    guesses = next(line for line in lines if line.startswith("[MASK] at 2: "))
    assert len(guesses.split(": ", 1)[1].split(", ")) == 3
    assert "wrote" not in proc.stdout


def test_help_names_the_command_that_was_typed():
    assert cli("--help").stdout.startswith("usage: python -m core ")
    proc = cli("--help", argv0="/usr/local/bin/bertscope-cli")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: bertscope-cli ")
    assert program_name("/x/core/__main__.py") == "python -m core"
    assert program_name("bertscope-cli") == "bertscope-cli"
