"""The Train view's plumbing without a window: the CLI call a form makes, events into arrays
(a resumed run repeats no step), and the run history across restarts."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from numpy.testing import assert_array_equal

from app.train.runs import (
    RunHistory,
    RunRecord,
    RunSeries,
    TrainSettings,
    parse_event,
    trainer_threads,
)


def step(n: int, tokens: int, mlm: float, task: str = "nsp") -> dict:
    return {
        "kind": "step",
        "step": n,
        "total_steps": 10,
        "tokens_seen": tokens,
        "losses": {"mlm": mlm, task: mlm / 10, "total": mlm * 1.1},
        "lr": 1e-4 * n,
        "grad_norm": 2.0 + n,
        "tokens_per_s": 100.0 * n,
        "metrics": None,
    }


def evaluation(n: int, tokens: int, acc: float) -> dict:
    metrics = {"mlm_accuracy": acc, "perplexity": 50.0 / n, "sentence_accuracy": 0.5}
    return {"kind": "eval", "step": n, "total_steps": 10, "tokens_seen": tokens, "metrics": metrics}


def test_the_form_settings_are_a_command_the_cli_accepts(tmp_path):
    from core.cli import training_commands

    settings = TrainSettings(
        arch="albert",
        preset="albert-tiny",
        corpus=["a.txt", "b.txt"],
        eval_corpus=["h.txt"],
        out=str(tmp_path / "run"),
        steps=60,
        warmup=3,
        optimizer="lamb",
        device="cpu",
        precision="bf16",
        seed=7,
    )
    program, args = settings.command(resume=True)
    assert program == sys.executable and args[:2] == ["-m", "core"]
    parser = argparse.ArgumentParser()
    training_commands.register(parser.add_subparsers())
    parsed = parser.parse_args(args[2:])
    assert (parsed.arch, parsed.preset, parsed.corpus, parsed.eval_corpus) == (
        "albert",
        "albert-tiny",
        ["a.txt", "b.txt"],
        ["h.txt"],
    )
    assert (parsed.steps, parsed.warmup, parsed.optimizer, parsed.precision) == (
        60,
        3,
        "lamb",
        "bf16",
    )
    assert (parsed.seed, parsed.device, parsed.resume, parsed.events) == (
        7,
        "cpu",
        "latest",
        "jsonl",
    )
    # six evaluations and checkpoints per run unless asked; every checkpoint kept (each is a
    # model in the list); the window keeps a core for itself
    assert (parsed.eval_every, parsed.save_every, parsed.keep_checkpoints) == (10, 10, 0)
    assert parsed.threads == trainer_threads() == max(1, (os.cpu_count() or 2) - 1)
    assert parsed.vocab_size == 8000 and parsed.tokenizer is None
    reuse = TrainSettings(tokenizer="/models/bert-mini", out="x").arguments()
    assert reuse[reuse.index("--tokenizer") + 1] == "/models/bert-mini"
    assert "--vocab-size" not in reuse and "--resume" not in reuse


def test_series_hold_the_events_and_a_resumed_run_repeats_no_step():
    series = RunSeries()
    for n in range(1, 5):
        series.add(step(n, 100 * n, 9.0 - n))
    series.add(evaluation(4, 400, 0.25))
    series.add(step(5, 500, 3.0))
    # the process was killed after step 5; the checkpoint was at step 4: steps 5.. again
    series.add({"kind": "prepare", "step": 0, "message": "building the model"})
    series.add(step(5, 510, 3.5))
    series.add(step(6, 620, 3.25))
    series.add(evaluation(6, 620, 0.5))
    assert_array_equal(series.array("step"), [1, 2, 3, 4, 5, 6])
    assert_array_equal(series.array("tokens"), [100, 200, 300, 400, 510, 620])
    assert_array_equal(series.array("mlm"), [8.0, 7.0, 6.0, 5.0, 3.5, 3.25])
    assert_array_equal(series.array("sentence"), [0.8, 0.7, 0.6, 0.5, 0.35, 0.325])
    assert_array_equal(series.eval_array("tokens"), [400, 620])
    assert_array_equal(series.eval_array("mlm_accuracy"), [0.25, 0.5])
    assert series.sentence_task == "nsp" and series.total_steps == 10
    # a restart from before an evaluation drops that evaluation too
    series.add(step(3, 300, 6.0))
    assert_array_equal(series.array("step"), [1, 2, 3])
    assert_array_equal(series.eval_array("step"), [])
    # SOP runs fill the same "sentence" series
    sop = RunSeries.from_events([step(1, 10, 4.0, task="sop")])
    assert sop.sentence_task == "sop" and sop.array("sentence")[0] == 0.4


def test_event_lines_that_are_not_events_are_ignored():
    assert parse_event(b'{"kind": "step", "step": 1}\n') == {"kind": "step", "step": 1}
    assert parse_event("training bert-tiny on CPU") is None
    assert parse_event('{"no": "kind"}') is None
    assert parse_event("{broken") is None
    nan = RunSeries.from_events([{**step(1, 10, 4.0), "grad_norm": None}])
    assert math.isnan(nan.array("grad_norm")[0])


def test_the_run_history_survives_a_restart_and_finds_runs_that_ended(tmp_path):
    path = tmp_path / "runs.json"
    history = RunHistory(path)
    out = tmp_path / "bert-tiny-120000"
    out.mkdir()
    record = history.add(
        RunRecord(name=out.name, settings=TrainSettings(out=str(out)).to_dict(), status="running")
    )
    record.pid = 2**22 + 12345  # no such process
    record.steps_done = 6
    history.save()
    (out / "train_log.jsonl").write_text(
        json.dumps(step(6, 600, 3.0)) + "\n" + json.dumps({**step(6, 600, 3.0), "kind": "done"}),
        encoding="utf-8",
    )
    again = RunHistory(path)
    assert [r.name for r in again.records] == [out.name]
    assert again.records[0].steps_done == 6 and again.records[0].status == "running"
    again.refresh()  # its process is gone and its log ends with "done"
    assert again.records[0].status == "done" and again.records[0].pid is None
    assert RunHistory(path).records[0].status == "done"
    # a checkpoint with its trainer state makes a stopped run resumable
    again.records[0].status = "stopped"
    assert not again.records[0].resumable
    (out / "checkpoint-0000004").mkdir()
    (out / "checkpoint-0000004" / "trainer_state.pt").write_bytes(b"x")
    assert again.records[0].resumable
    assert again.records[0].checkpoints() == [(4, out / "checkpoint-0000004")]
    # a damaged file is an empty history, not a crash
    path.write_text("{not json", encoding="utf-8")
    assert RunHistory(path).records == []


def test_a_calculator_configuration_trains_as_its_family_with_its_sizes(qtbot, tmp_path):
    """The Compare tab's calculator configurations are Size choices: one run of their family,
    started with ``--config`` on a file the run folder holds (a resume keeps its sizes)."""
    from app.train.train_form import TrainForm
    from core.cli import training_commands
    from core.config import preset
    from core.training.config import model_sizes_from_file

    form = TrainForm(tmp_path / "runs")
    qtbot.addWidget(form)
    config = preset("albert-base", num_hidden_layers=3, embedding_size=64).to_dict()
    form.set_model_configs({"ALBERT-base (Table 1)": config})
    form.family.setCurrentIndex(form.family.findData("both"))
    form.size.setCurrentIndex(form.size.findText("ALBERT-base (Table 1) (albert)"))
    (run,) = form.settings(stamp="120000")
    assert (run.arch, run.model_config) == ("albert", config)
    assert Path(run.out) == tmp_path / "runs" / "ALBERT-base--Table-1--120000"
    run.prepare_folder()
    sizes = model_sizes_from_file(run.model_config_file, "albert")
    assert (sizes["num_hidden_layers"], sizes["embedding_size"], sizes["hidden_size"]) == (
        3,
        64,
        768,
    )
    parser = argparse.ArgumentParser()
    training_commands.register(parser.add_subparsers())
    assert parser.parse_args(run.arguments()).config == str(run.model_config_file)
    assert parser.parse_args(run.arguments(resume=True)).config is None
    # the list follows the models: a configuration gone from the Models list leaves the sizes
    form.set_model_configs({})
    assert form.size.currentData() == "mini" and form.chosen_config is None
    assert form.families == ["bert", "albert"]
