"""``python -m core train`` / ``eval``: a full run, resume, eval agreement, early errors."""

from __future__ import annotations

import json

import pytest

from core.cli import main
from tests.core.training_text import write_corpus, write_train_and_heldout

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
    held_out = next(line for line in printed.splitlines() if line.startswith("held-out: "))
    assert held_out.count("%") == 2 and held_out.count("nats") == 2  # eval's units
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
    # Two more steps: --resume cannot lengthen a finished run (its learning rate reached 0),
    # --init-from starts a new run from the last checkpoint's weights, in another folder.
    assert main(train(corpus, out, "--steps", "5", "--resume", "--quiet")) == 2
    assert "--init-from" in capsys.readouterr().err
    more = tmp_path / "more"
    last = out / "checkpoint-0000003"
    assert main(train(corpus, more, "--steps", "2", "--init-from", str(last), "--quiet")) == 0
    assert "finished after 2 steps" in capsys.readouterr().out
    log = [json.loads(x) for x in (more / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["kind"] == "step"] == [1, 2]
    assert log[0]["lr"] == pytest.approx(3e-3)  # warm-up 1: the peak at once, not 0
    assert (
        main(
            [
                "eval",
                str(more / "final"),
                "--corpus",
                str(corpus / "heldout.txt"),
                "--seq-len",
                "32",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "MLM accuracy:" in text and "NSP accuracy:" in text and "MLM perplexity:" in text
    assert text.count("%") == 2 and text.count("nats") == 2  # the units of train's line


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


def test_config_file_gives_the_model_sizes_and_the_tokenizer_the_vocabulary(
    corpus, tmp_path, capsys
):
    """``--config`` (the Compare tab's calculator saves one): its sizes replace the preset's."""
    from core.config import ModelConfig, preset

    sizes = preset("bert-tiny", num_hidden_layers=1, hidden_size=48, num_attention_heads=3)
    sizes = sizes.replace(intermediate_size=96, max_position_embeddings=40, vocab_size=30522)
    sizes.save(tmp_path / "sizes.json")
    out = tmp_path / "run"
    assert main(train(corpus, out, "--steps", "2", "--config", str(tmp_path / "sizes.json"))) == 0
    made = ModelConfig.load(out / "final")
    assert (made.num_hidden_layers, made.hidden_size, made.num_attention_heads) == (1, 48, 3)
    assert made.intermediate_size == 96
    assert made.max_position_embeddings == 64  # an explicit --max-positions (TINY_ARGS) wins
    assert made.vocab_size == 80  # the run's tokenizer (--vocab-size 80), not the file's 30522
    capsys.readouterr()
    # the wrong family, and a resumed run, are refused in one line
    albert = preset("albert-tiny")
    albert.save(tmp_path / "albert.json")
    assert main(train(corpus, tmp_path / "x", "--config", str(tmp_path / "albert.json"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a albert configuration, but --arch is bert" in err
    assert not (tmp_path / "x").exists()
    resume = train(
        corpus, out, "--steps", "2", "--resume", "--config", str(tmp_path / "sizes.json")
    )
    assert main(resume) == 2
    assert "--config starts a new run" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_of_a_run_scores_the_runs_heldout_examples_by_default(tmp_path, capsys):
    """`eval` of a run's folder with no settings but the corpus gives the numbers of `train`'s
    final held-out line: the run's sequence length, --eval-examples cap and seed, not eval's
    own defaults (which scored every sequence at 128 tokens), and both say which examples."""
    folder = write_train_and_heldout(tmp_path, seed=11)
    out = tmp_path / "run"
    args = train(folder, out, "--steps", "2", "--eval-examples", "5", "--seed", "7", "--quiet")
    assert main(args) == 0
    printed = capsys.readouterr().out
    heldout = folder / "heldout.txt"
    expected = f"held-out examples: the first 5 sequences of {heldout}, seed 1241"
    assert expected in printed.splitlines()
    summary = json.loads((out / "final" / "training_summary.json").read_text())["eval"]
    assert summary["n_sequences"] == 5
    assert main(["eval", str(out / "final"), "--corpus", str(heldout), "--json"]) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out)
    assert expected in captured.err
    for key in ("mlm_accuracy", "mlm_loss", "perplexity", "sentence_accuracy", "sentence_loss"):
        assert scores[key] == pytest.approx(summary[key], rel=1e-6, abs=1e-9), key
    assert (scores["n_sequences"], scores["n_masked"]) == (5, summary["n_masked"])
    # Without --json, the same line among the scores.
    assert main(["eval", str(out / "final"), "--corpus", str(heldout)]) == 0
    assert expected in capsys.readouterr().out.splitlines()


def test_train_prints_the_device_line_first(tmp_path, capsys):
    """README: `train` prints the torch build and device line first, before set-up's lines."""
    import torch

    from core.device import startup_summary

    folder = write_train_and_heldout(tmp_path, seed=5)
    assert main(train(folder, tmp_path / "run", "--steps", "2")) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == startup_summary(torch.device("cpu"))
    assert err.count(err[0]) == 1
    assert "training the tokenizer" in err[1]


def test_train_config_json_round_trips_exactly_and_refuses_what_is_not_a_setting(tmp_path):
    """``TrainConfig.save``/``load``: the same config back, every field; a key that is not a
    setting (a typo) is a one-line error naming it, not silently dropped."""
    from core.errors import InputError
    from core.training.config import TrainConfig

    config = TrainConfig(
        arch="albert",
        steps=60,
        lr=3e-4,
        warmup=3,
        adam_betas=(0.9, 0.98),
        device="auto",
        eval_every=0,
        config_overrides={"hidden_size": 48, "hidden_dropout_prob": 0.1},
    )
    path = tmp_path / "train_config.json"
    config.save(path)
    assert TrainConfig.load(path) == config
    assert TrainConfig.from_json(config.to_json()) == config
    assert not [p for p in tmp_path.iterdir() if p != path]  # written atomically, no debris
    path.write_text('{"arch": "bert", "eval_evry": 10}', encoding="utf-8")
    with pytest.raises(InputError, match=r"train_config\.json: unknown setting 'eval_evry'"):
        TrainConfig.load(path)
    path.write_text('{"steps": 0}', encoding="utf-8")
    with pytest.raises(InputError, match=r"train_config\.json: steps must be a positive integer"):
        TrainConfig.load(path)
    with pytest.raises(InputError, match="no such file"):
        TrainConfig.load(tmp_path / "missing.json")


def test_config_file_gives_every_setting_and_options_beside_it_override(corpus, tmp_path, capsys):
    """``train --config-file``: the file's settings, then the options given beside it; refused
    with ``--resume`` (a resumed run keeps its checkpoint's settings) and before any work when
    the file holds a key that is not a setting."""
    import dataclasses

    from core.training.config import TrainConfig

    config = TrainConfig(
        arch="bert",
        preset="bert-tiny",
        steps=50,
        batch_size=4,
        seq_len=32,
        lr=3e-3,
        warmup=1,
        device="cpu",
        vocab_size=80,
        max_positions=64,
        seed=5,
    )
    path = tmp_path / "train_config.json"
    config.save(path)
    out = tmp_path / "run"
    files = ["--corpus", str(corpus / "train.txt"), "--eval-corpus", str(corpus / "heldout.txt")]
    args = ["train", "--config-file", str(path), *files, "--out", str(out), "--quiet"]
    assert main([*args, "--steps", "2"]) == 0
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert TrainConfig.from_dict(summary["train"]) == dataclasses.replace(config, steps=2)
    capsys.readouterr()
    assert main([*args, "--steps", "2", "--resume"]) == 2
    assert "--config-file starts a new run" in capsys.readouterr().err
    path.write_text('{"arch": "bert", "stepz": 2}', encoding="utf-8")
    other = tmp_path / "other"
    assert main(["train", "--config-file", str(path), *files, "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown setting 'stepz'" in err
    assert not other.exists()


def test_durations_read_the_same_in_the_cli_and_the_window():
    from core.timefmt import format_duration

    assert [format_duration(s) for s in (0, 59.9, 61, 3600, 3 * 3600 + 62)] == [
        "00:00",
        "00:59",
        "01:01",
        "1:00:00",
        "3:01:02",
    ]
    assert {format_duration(s) for s in (None, float("nan"), float("inf"))} == {"--:--"}
    assert format_duration(-5) == "00:00"
