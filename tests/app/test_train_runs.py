"""The Train view's plumbing without a window: the CLI call a form makes, events into arrays
(a resumed run repeats no step), how a run ended, and the run history across restarts."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_array_equal

from app.train.event_stream import EventStream, parse_event, progress_event
from app.train.history import RunHistory, RunRecord
from app.train.outcome import SET_UP_STOP, ProcessExit, run_outcome
from app.train.series import RunSeries
from app.train.settings import DEFAULT_CORPUS, RunSettings, trainer_threads
from core.errors import InputError
from core.training.config import TrainConfig
from core.training.run_status import RunStatus


def step(n: int, tokens: int, mlm: float, task: str = "nsp") -> dict:
    """A step event as the trainer's JSON line holds it."""
    return {
        "kind": "step",
        "step": n,
        "total_steps": 10,
        "epoch": n / 10,
        "tokens_seen": tokens,
        "losses": {"mlm": mlm, task: mlm / 10, "total": mlm * 1.1},
        "lr": 1e-4 * n,
        "grad_norm": 2.0 + n,
        "tokens_per_s": 100.0 * n,
        "elapsed_s": 1.0 * n,
        "eta_s": 10.0 - n,
        "memory_bytes": None,
        "metrics": None,
    }


def evaluation(n: int, tokens: int, acc: float) -> dict:
    metrics = {"mlm_accuracy": acc, "perplexity": 50.0 / n, "sentence_accuracy": 0.5}
    return {**step(n, tokens, 0.0), "kind": "eval", "losses": {}, "metrics": metrics}


def events(*objects: dict):
    return [progress_event(o) for o in objects]


def test_the_form_settings_are_a_command_the_cli_accepts(tmp_path):
    from core.cli import training_commands

    config = TrainConfig(
        arch="albert",
        preset="albert-tiny",
        steps=60,
        warmup=3,
        optimizer="lamb",
        device="cpu",
        precision="bf16",
        seed=7,
    )
    settings = RunSettings(
        config=config, corpus=["a.txt", "b.txt"], eval_corpus=["h.txt"], out=tmp_path / "run"
    )
    program, args = settings.command(resume=True)
    assert program == sys.executable and args[:2] == ["-m", "core"]
    parser = argparse.ArgumentParser()
    training_commands.register(parser.add_subparsers())
    parsed = parser.parse_args(args[2:])
    assert (parsed.corpus, parsed.eval_corpus, parsed.out) == (
        ["a.txt", "b.txt"],
        ["h.txt"],
        str(tmp_path / "run"),
    )
    assert (parsed.resume, parsed.events) == ("latest", "jsonl")
    # a resumed run keeps the settings its checkpoint saved: none are given again
    assert parsed.config_file is None and parsed.arch is None and parsed.steps is None
    # a new run reads every setting from the file the window writes in its folder
    parsed = parser.parse_args(settings.arguments())
    assert parsed.config_file == str(tmp_path / "run" / "train_config.json")
    assert parsed.resume is None and parsed.arch is None
    settings.prepare_folder()
    assert TrainConfig.load(parsed.config_file) == config
    # the window keeps a core for itself
    assert parsed.threads == trainer_threads() == max(1, (os.cpu_count() or 2) - 1)
    assert parsed.tokenizer is None
    reuse = RunSettings(config, out="x", tokenizer="/models/bert-mini").arguments()
    assert reuse[reuse.index("--tokenizer") + 1] == "/models/bert-mini"
    assert "--vocab-size" not in reuse and "--resume" not in reuse
    # the history's flat record gives the same settings back
    assert RunSettings.from_dict(settings.to_dict()) == settings


def test_the_form_fills_a_train_config_and_shows_what_zero_means(qtbot, tmp_path):
    """``eval_every``/``save_every`` 0 mean what they mean to core, "only at the end", and the
    form says so; by default the form asks for six of each per run."""
    from app.train.train_form import TrainForm

    form = TrainForm(tmp_path / "runs")
    qtbot.addWidget(form)
    form.steps.setValue(60)
    (run,) = [r for r in form.settings(stamp="120000") if r.arch == "bert"]
    config = run.config
    # six evaluations and checkpoints per run unless asked; every checkpoint kept (each is a
    # model in the list)
    assert (config.eval_every, config.save_every, config.keep_checkpoints) == (10, 10, 0)
    assert (config.steps, config.vocab_size, config.eval_examples) == (60, 8000, 256)
    form.eval_every.setValue(7)
    form.steps.setValue(120)  # a period the user set stays; the default one follows
    assert (form.eval_every.value(), form.save_every.value()) == (7, 20)
    form.eval_every.setValue(0)
    assert form.eval_every.text() == "at the end only"
    assert form.settings()[0].config.eval_every == 0
    # a setting core refuses is refused when Start makes the runs, in core's words
    form.warmup.setValue(500)
    with pytest.raises(InputError, match=r"warm-up must be in \[0, steps=120\)"):
        form.settings()


def test_the_forms_sentence_objective_is_each_familys_own_or_the_one_picked(qtbot, tmp_path):
    from app.train.train_form import TrainForm

    form = TrainForm(tmp_path / "runs")
    qtbot.addWidget(form)
    form.family.setCurrentIndex(form.family.findData("both"))
    own = {r.arch: r.config.sentence_objective for r in form.settings(stamp="120000")}
    assert own == {"bert": "nsp", "albert": "sop"}
    form.objective.setCurrentIndex(form.objective.findData("sop"))
    picked = {r.arch: r.config.sentence_objective for r in form.settings(stamp="120001")}
    assert picked == {"bert": "sop", "albert": "sop"}
    (run,) = [r for r in form.settings(stamp="120002") if r.arch == "bert"]
    assert RunSettings.from_dict(run.to_dict()).config.sentence_objective == "sop"


def test_series_hold_the_events_and_a_resumed_run_repeats_no_step():
    from core.training import ProgressEvent

    series = RunSeries()
    for n in range(1, 5):
        series.add(progress_event(step(n, 100 * n, 9.0 - n)))
    series.add(progress_event(evaluation(4, 400, 0.25)))
    series.add(progress_event(step(5, 500, 3.0)))
    # the process was killed after step 5; the checkpoint was at step 4: steps 5.. again
    series.add(ProgressEvent.note("prepare", "building the model"))
    for event in events(step(5, 510, 3.5), step(6, 620, 3.25), evaluation(6, 620, 0.5)):
        series.add(event)
    assert_array_equal(series.array("step"), [1, 2, 3, 4, 5, 6])
    assert_array_equal(series.array("tokens"), [100, 200, 300, 400, 510, 620])
    assert_array_equal(series.array("mlm"), [8.0, 7.0, 6.0, 5.0, 3.5, 3.25])
    assert_array_equal(series.array("sentence"), [0.8, 0.7, 0.6, 0.5, 0.35, 0.325])
    assert_array_equal(series.eval_array("tokens"), [400, 620])
    assert_array_equal(series.eval_array("mlm_accuracy"), [0.25, 0.5])
    assert series.sentence_task == "nsp" and series.total_steps == 10
    # a restart from before an evaluation drops that evaluation too
    series.add(progress_event(step(3, 300, 6.0)))
    assert_array_equal(series.array("step"), [1, 2, 3])
    assert_array_equal(series.eval_array("step"), [])
    # SOP runs fill the same "sentence" series
    sop = RunSeries.from_events(events(step(1, 10, 4.0, task="sop")))
    assert sop.sentence_task == "sop" and sop.array("sentence")[0] == 0.4


def test_event_lines_that_are_not_events_are_ignored():
    assert parse_event(b'{"kind": "step", "step": 1}\n') == {"kind": "step", "step": 1}
    assert parse_event("training bert-tiny on CPU") is None
    assert parse_event('{"no": "kind"}') is None
    assert parse_event("{broken") is None
    nan = RunSeries.from_events(events({**step(1, 10, 4.0), "grad_norm": None}))
    assert math.isnan(nan.array("grad_norm")[0])
    # an event object the trainer would not write (a field missing) is no event
    assert progress_event({"kind": "step", "step": 1}) is None
    # its fields, not string keys: metrics are core's EvalMetrics
    event = progress_event(evaluation(4, 400, 0.25))
    assert (event.step, event.metrics.mlm_accuracy, event.metrics.perplexity) == (4, 0.25, 12.5)


def stream_of(*objects: dict, log: str = "") -> EventStream:
    stream = EventStream()
    stream.feed_events(b"".join(json.dumps(o).encode() + b"\n" for o in objects))
    stream.feed_log(log.encode(), final=True)
    return stream


def test_one_function_says_how_a_run_ended_child_or_background(tmp_path):
    """The window's child and a run followed in the background end the same way for the same
    output; only what the window cannot know of a background run (its exit status) differs."""
    child, background = ProcessExit(code=0), ProcessExit()
    done = stream_of(step(1, 10, 4.0), {**step(1, 10, 4.0), "kind": "done"})
    for exit in (child, background):
        assert run_outcome(done, None, exit, tmp_path) == (RunStatus.DONE, "")
    cancelled = stream_of(step(1, 10, 4.0), {**step(1, 10, 4.0), "kind": "cancelled"})
    for exit in (ProcessExit(code=130), background):
        assert run_outcome(cancelled, RunStatus.STOPPED, exit, tmp_path) == (RunStatus.STOPPED, "")
        assert run_outcome(cancelled, None, exit, tmp_path) == (RunStatus.PAUSED, "")
    # asked to stop before the first step: nothing was saved; a background chain that never
    # reached this run leaves it to start later
    setting_up = stream_of(log="training the tokenizer")
    for exit in (ProcessExit(code=130), background):
        assert run_outcome(setting_up, RunStatus.PAUSED, exit, tmp_path) == (
            RunStatus.STOPPED,
            SET_UP_STOP,
        )
    assert run_outcome(EventStream(), RunStatus.STOPPED, background, tmp_path) == (
        RunStatus.NEW,
        "",
    )
    # failures: the trainer's own error first, then the CLI's error line, then what happened
    error = {**step(0, 0, 0.0), "kind": "error", "message": "corpus x.txt: no such file"}
    failed = stream_of(error, log="error: corpus x.txt: no such file")
    for exit in (ProcessExit(code=2), background):
        assert run_outcome(failed, None, exit, tmp_path) == (
            RunStatus.FAILED,
            "corpus x.txt: no such file",
        )
    assert run_outcome(stream_of(log="oops\nerror: bad"), None, child, tmp_path)[1] == "bad"
    quiet = stream_of(step(1, 10, 4.0), log="last words")
    assert run_outcome(quiet, None, ProcessExit(code=1), tmp_path)[1] == (
        "the trainer exited with status 1: last words"
    )
    (tmp_path / "checkpoint-0000002").mkdir()
    (tmp_path / "checkpoint-0000002" / "trainer_state.pt").write_bytes(b"x")
    (tmp_path / "checkpoint-0000004").mkdir()  # no trainer state: not one to resume from
    killed = ProcessExit(code=9, killed=True)
    hint = "; Resume continues from checkpoint-0000002"
    assert run_outcome(quiet, None, killed, tmp_path)[1] == "the trainer process was killed" + hint
    assert run_outcome(quiet, RunStatus.PAUSED, killed, tmp_path)[1] == (
        "the trainer process was killed before it could save a checkpoint" + hint
    )
    assert run_outcome(quiet, None, background, tmp_path)[1] == (
        "the background trainer ended without a word (killed?)" + hint
    )


def test_the_run_history_survives_a_restart_and_finds_runs_that_ended(tmp_path):
    path = tmp_path / "runs.json"
    history = RunHistory(path)
    out = tmp_path / "bert-tiny-120000"
    out.mkdir()
    settings = RunSettings(TrainConfig(), out=out, corpus=[str(DEFAULT_CORPUS)]).to_dict()
    record = history.add(RunRecord(name=out.name, settings=settings, status=RunStatus.RUNNING))
    record.pid = 2**22 + 12345  # no such process
    record.steps_done = 6
    history.save()
    (out / "train_log.jsonl").write_text(
        json.dumps(step(6, 600, 3.0)) + "\n" + json.dumps({**step(6, 600, 3.0), "kind": "done"}),
        encoding="utf-8",
    )
    again = RunHistory(path)
    assert [r.name for r in again.records] == [out.name]
    assert again.records[0].steps_done == 6 and again.records[0].status == RunStatus.RUNNING
    again.refresh()  # its process is gone and its log ends with "done"
    assert again.records[0].status == RunStatus.DONE and again.records[0].pid is None
    assert RunHistory(path).records[0].status == RunStatus.DONE
    # statuses are written as the plain strings they always were
    assert '"status": "done"' in path.read_text(encoding="utf-8")
    # a checkpoint with its trainer state makes a stopped run resumable
    again.records[0].status = RunStatus.STOPPED
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
