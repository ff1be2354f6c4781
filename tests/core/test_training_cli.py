"""``python -m core train`` / ``eval``: a full run, resume, eval agreement, early errors."""

from __future__ import annotations

import json

import pytest

from core.cli import main
from tests.core.training_text import write_corpus

TINY_ARGS = [
    "--preset",
    "bert-tiny",
    "--seq-len",
    "32",
    "--batch-size",
    "4",
    "--vocab-size",
    "80",
    "--max-positions",
    "64",
    "--lr",
    "3e-3",
    "--warmup",
    "1",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_corpus(folder / "train.txt", n_docs=12, seed=3)
    write_corpus(folder / "heldout.txt", n_docs=4, seed=4)
    return folder


def train(corpus, out, *extra) -> list[str]:
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
        *TINY_ARGS,
        *extra,
    ]


@pytest.mark.slow
def test_train_then_eval_agree_and_resume_continues(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train(corpus, out, "--steps", "3", "--save-every", "2", "--quiet")) == 0
    printed = capsys.readouterr().out
    assert "finished after 3 steps" in printed and "held-out: MLM accuracy" in printed
    assert (out / "final" / "model.safetensors").is_file()
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["train"]["vocab_size"] == 80 and summary["steps"] == 3
    # `eval` on the held-out file reproduces the trainer's final evaluation (same seed/masks).
    assert (
        main(
            [
                "eval",
                str(out / "final"),
                "--corpus",
                str(corpus / "heldout.txt"),
                "--seq-len",
                "32",
                "--batch-size",
                "4",
                "--json",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert scores["mlm_accuracy"] == pytest.approx(summary["eval"]["mlm_accuracy"])
    assert scores["perplexity"] == pytest.approx(summary["eval"]["perplexity"], rel=1e-6)
    assert scores["sentence_accuracy"] == pytest.approx(summary["eval"]["sentence_accuracy"])
    assert scores["n_masked"] == summary["eval"]["n_masked"] > 0
    # Resume with more steps: starts from the last checkpoint (step 3) and ends at 5.
    assert main(train(corpus, out, "--steps", "5", "--resume", "--quiet")) == 0
    assert "finished after 5 steps" in capsys.readouterr().out
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["kind"] == "step"] == [1, 2, 3, 4, 5]
    assert (
        main(
            ["eval", str(out / "final"), "--corpus", str(corpus / "heldout.txt"), "--seq-len", "32"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "MLM accuracy:" in text and "NSP accuracy:" in text and "MLM perplexity:" in text


@pytest.mark.slow
def test_progress_lines_and_albert_run(corpus, tmp_path, capsys):
    out = tmp_path / "albert"
    args = [
        "train",
        "--arch",
        "albert",
        "--corpus",
        str(corpus / "train.txt"),
        "--out",
        str(out),
        "--steps",
        "2",
        *TINY_ARGS[2:],
        "--optimizer",
        "lamb",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "training albert-mini" in captured.err
    # Set-up is not silent: one line per phase, with its duration.
    assert "training the tokenizer (vocabulary 80)" in captured.err
    assert __import__("re").search(
        r"tokenized train\.txt: [\d,]+ tokens, 12 documents", captured.err
    )
    assert "step 2/2 [" in captured.err and "tok/s" in captured.err
    assert "SOP accuracy" in captured.out  # held out from the corpus itself by default


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("missing", [], "corpus .*missing.txt: no such file"),
        ("empty", [], "empty.txt: empty"),
        ("latin1", [], "not UTF-8 text"),
        (None, ["--batch-size", "0"], "batch size must be a positive integer"),
        (None, ["--seq-len", "128"], "longer than the model's 64 positions"),
        (None, ["--preset", "bert-giant"], "unknown preset 'bert-giant'"),
        (None, ["--steps", "0"], "steps must be a positive integer"),
    ],
)
def test_bad_settings_give_one_line_errors_before_any_work(
    corpus, tmp_path, capsys, setup, extra, message
):
    files = {
        "missing": tmp_path / "missing.txt",
        "empty": tmp_path / "empty.txt",
        "latin1": tmp_path / "latin1.txt",
    }
    files["empty"].write_text("\n \n", encoding="utf-8")
    files["latin1"].write_bytes("café\n".encode("latin-1"))
    corpus_file = files[setup] if setup else corpus / "train.txt"
    out = tmp_path / "out"
    args = [
        "train",
        "--arch",
        "bert",
        "--corpus",
        str(corpus_file),
        "--out",
        str(out),
        *TINY_ARGS,
        *extra,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err)
    assert not out.exists()  # nothing was written


def test_eval_errors(tmp_path, corpus, capsys):
    assert main(["eval", str(tmp_path / "nope"), "--corpus", str(corpus / "heldout.txt")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--corpus", str(tmp_path / "x.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
