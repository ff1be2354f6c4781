"""The Train tab: real training runs (tiny presets, a tiny corpus) as child processes, driven
from the window: curves, checkpoints as models, pause/resume, stop, failures, the corpus
check. Every wait is on a signal or a condition, never on the clock."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from safetensors.numpy import load_file

from app.train.event_stream import read_events
from app.train.run_folder import TRAIN_LOG
from core.training.run_status import RunStatus
from tests.app.helpers import WAIT_MS, select_model, start_and_wait, wait_idle
from tests.core.training_text import write_corpus

RUN_MS = 240_000  # a whole tiny run on a busy 2-core machine, generously


@pytest.fixture(autouse=True)
def _no_prompt_at_teardown(make_window):
    """A test that failed mid-run must not leave the close prompt waiting at teardown: the
    windows (closed after this fixture's teardown) stop their runs without asking."""
    yield
    from PySide6.QtWidgets import QApplication

    from app.train.train_view import TrainView

    for widget in QApplication.topLevelWidgets():
        train = getattr(widget, "train", None)
        if isinstance(train, TrainView):
            train.unattended_close = "stop"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train-corpus")
    write_corpus(folder / "train.txt", n_docs=12, seed=3)
    write_corpus(folder / "heldout.txt", n_docs=4, seed=4)
    return folder


def configure(window, corpus: Path, out: Path, family: str = "bert", steps: int = 6, every=3):
    """Fill the form: tiny preset, seq 32, batch 4, CPU, the test corpus."""
    form = window.train.form
    form.family.setCurrentIndex(form.family.findData(family))
    form.size.setCurrentText("tiny")
    form.set_corpus([str(corpus / "train.txt")])
    form.heldout.setText(str(corpus / "heldout.txt"))
    form.steps.setValue(steps)
    form.batch_size.setValue(4)
    form.seq_len.setValue(32)
    form.warmup.setValue(1)
    form.device.setCurrentIndex(form.device.findData("cpu"))
    form.eval_every.setValue(every)
    form.save_every.setValue(every)
    form.out.setText(str(out))


def wait_ended(qtbot, view, outcome: RunStatus | None = None):
    """Wait for the next run_ended; returns (record, outcome, message)."""
    with qtbot.waitSignal(view.train_state.run_ended, timeout=RUN_MS) as blocker:
        pass
    record, got, message = blocker.args
    if outcome is not None:
        assert got == outcome, message
    return record, got, message


def start_run(qtbot, view):
    """Press Start and wait until the (first) run's process started; returns its record."""
    with qtbot.waitSignal(view.train_state.run_started, timeout=RUN_MS) as blocker:
        view.start_button.click()
    return blocker.args[0]


def wait_step(qtbot, view, at_least: int, run: str | None = None) -> None:
    """Wait until the (given, else the session's first) run reported step ``at_least``."""
    name = run or view.train_state.session.records[0].name

    def reached() -> bool:
        series = view.train_state.series.get(name)
        return (
            series is not None
            and series.last_step is not None
            and (series.last_step.step >= at_least)
        )

    qtbot.waitUntil(reached, timeout=RUN_MS)


def assert_curves_match_log(view, record) -> None:
    """The curves on screen hold exactly the numbers of the run's train_log.jsonl."""
    events = read_events(record.out / TRAIN_LOG)
    steps = [e for e in events if e["kind"] == "step"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert steps and evals
    view._on_redraw()
    x, y = view.curves.curve(record.name, "mlm")
    assert_array_equal(x, [e["tokens_seen"] for e in steps])
    assert_array_equal(y, [e["losses"]["mlm"] for e in steps])
    task = "nsp" if record.arch == "bert" else "sop"
    _, y = view.curves.curve(record.name, "sentence")
    assert_array_equal(y, [e["losses"][task] for e in steps])
    _, y = view.curves.curve(record.name, "lr")
    assert_array_equal(y, [e["lr"] for e in steps])
    _, y = view.curves.curve(record.name, "grad_norm")
    assert_array_equal(y, [e["grad_norm"] for e in steps])
    x, y = view.curves.curve(record.name, "mlm_accuracy")
    assert_array_equal(x, [e["tokens_seen"] for e in evals])
    assert_array_equal(y, [100.0 * e["metrics"]["mlm_accuracy"] for e in evals])  # percent
    _, y = view.curves.curve(record.name, "perplexity")
    assert_array_equal(y, [e["metrics"]["perplexity"] for e in evals])


def weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


def test_corpus_check_shows_the_figures_or_the_one_line_error(qtbot, window, tmp_path, corpus):
    view = window.train
    window.tabs.setCurrentWidget(view)  # the first showing checks the default corpus
    with qtbot.waitSignal(view.train_state.corpus_checked, timeout=RUN_MS):
        view.form.set_corpus([str(corpus / "train.txt")])
    text = (corpus / "train.txt").read_text(encoding="utf-8")
    docs = [d for d in text.split("\n\n") if d.strip()]
    lines = [line for line in text.splitlines() if line.strip()]
    figures = view.train_state.figures
    assert (figures.documents, figures.lines) == (len(docs), len(lines)) == (12, len(lines))
    assert figures.characters == sum(len(line.strip()) for line in lines)
    assert figures.words == sum(len(line.split()) for line in lines)  # words and "."
    assert view.form.corpus_figures.text() == (
        f"12 documents, {len(lines)} lines, {figures.characters:,} characters, "
        f"\u2248{round(figures.words * 1.05):,} tokens"
    )
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with qtbot.waitSignal(view.train_state.corpus_failed, timeout=RUN_MS) as blocker:
        view.form.add_corpus_files([str(bad)])
    assert blocker.args[0] == (
        f"corpus {bad}: not UTF-8 text (byte 0xe9 at offset 3, line 1); convert it with e.g. "
        "iconv -t UTF-8"
    )
    assert view.form.corpus_figures.text() == blocker.args[0]
    # the devices core finds here, and only those, can be picked (asked before the check)
    import torch

    form = view.form
    assert form.device_enabled("cpu") and form.device_enabled("auto")
    assert form.device_enabled("cuda") == torch.cuda.is_available()
    assert form.device_enabled("mps") == torch.backends.mps.is_available()
    assert form.device.model().item(form.device.findData("cpu")).toolTip() == "CPU"


def test_an_empty_corpus_is_refused_before_any_process_starts(qtbot, window, tmp_path):
    view = window.train
    configure(window, tmp_path, tmp_path / "runs")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", encoding="utf-8")
    view.form.set_corpus([str(empty)])
    with qtbot.waitSignal(view.train_state.corpus_failed, timeout=RUN_MS):
        view.start_button.click()
    assert view.status.text() == f"corpus {empty}: empty (no text to train on)"
    assert view.train_state.session is None and not (tmp_path / "runs").exists()
    assert view.start_button.isEnabled()


def test_train_both_curves_are_the_logs_numbers_and_checkpoints_become_models(
    qtbot, window, make_window, settings, tmp_path, corpus, monkeypatch
):
    start_and_wait(qtbot, window)
    wait_idle(qtbot, window)
    view = window.train
    window.tabs.setCurrentWidget(view)
    configure(window, corpus, tmp_path / "runs", family="both", steps=6, every=3)
    started = []
    view.train_state.run_started.connect(
        lambda r: started.append((r.name, [x.status for x in view.train_state.session.records]))
    )
    view.start_button.click()
    bert, _, _ = wait_ended(qtbot, view, RunStatus.DONE)
    albert, _, _ = wait_ended(qtbot, view, RunStatus.DONE)
    assert (bert.arch, albert.arch) == ("bert", "albert")
    # one after the other: ALBERT started once BERT was done
    running, new, done = RunStatus.RUNNING, RunStatus.NEW, RunStatus.DONE
    assert started == [(bert.name, [running, new]), (albert.name, [done, running])]
    for record in (bert, albert):
        assert_curves_match_log(view, record)
    assert view.curves.legend_names() == [bert.name, albert.name]
    key = view.curves.key.text()
    assert f'color:#1f77b4">\u2501\u2501</span> {bert.name}' in key
    assert f'color:#ff7f0e">\u2501\u2501</span> {albert.name}' in key
    # same corpus, token budget and seed: both saw 6 steps of 4 sequences
    assert bert.settings["corpus"] == albert.settings["corpus"]
    assert bert.settings["seed"] == albert.settings["seed"] == 0
    # the checkpoint at step 3 and final/ (step 6), listed as models under their run
    names = [row[0] for row in window.manager.rows()]
    for record in (bert, albert):
        assert f"{record.name} @ step 3" in names
        assert f"{record.name} final" in names
    assert view.checkpoint_names() == [
        f"{bert.name} @ step 3",
        f"{bert.name} final",
        f"{albert.name} @ step 3",
        f"{albert.name} final",
    ]
    assert view.progress.format() == f"{albert.name}: done"
    assert view.run_rows()[0][:3] == (albert.name, RunStatus.DONE, "6/6")
    # a checkpoint probes (the sidebar click loads it on the engine thread)
    key = str((bert.out / "checkpoint-0000003").resolve())
    analysis = select_model(qtbot, window, key)
    assert window.state.analysis_key == key and window.state.analysis is analysis
    assert window.state.current.name == f"{bert.name} @ step 3"
    assert window.state.current.summary.family == "bert"
    # and from the Train tab's own list: two clicks to watch the attention of another one
    item = next(
        view.checkpoints.item(i)
        for i in range(view.checkpoints.count())
        if view.checkpoints.item(i).text() == f"{albert.name} final"
    )
    view.checkpoints.setCurrentItem(item)
    with qtbot.waitSignal(window.state.probed, timeout=RUN_MS) as blocker:
        view.probe_button.click()
    assert window.state.analysis_key == str((albert.out / "final").resolve())
    assert window.state.analysis is blocker.args[0]
    assert window.tabs.currentWidget() is window.probe
    # two picked checkpoints go to the Compare tab (the window has one, so the button shows)
    assert not view.compare_button.isHidden()
    view.checkpoints.clearSelection()
    view.checkpoints.item(0).setSelected(True)
    view.checkpoints.item(2).setSelected(True)
    with qtbot.waitSignal(view.compare_requested, timeout=WAIT_MS) as blocker:
        view.compare_button.click()
    assert blocker.args == [
        str((bert.out / "checkpoint-0000003").resolve()),
        str((albert.out / "checkpoint-0000003").resolve()),
    ]
    assert window.tabs.currentWidget() is window.compare
    assert [window.compare.session.key_a, window.compare.session.key_b] == blocker.args
    # a listed checkpoint whose folder was deleted since fails to load with a clear message
    gone = albert.out / "checkpoint-0000003"
    shutil.rmtree(gone)
    seen = []
    monkeypatch.setattr(
        QMessageBox, "critical", staticmethod(lambda parent, title, text: seen.append(text))
    )
    with qtbot.waitSignal(window.state.load_failed, timeout=WAIT_MS) as blocker:
        window.state.select(str(gone.resolve()))
    assert blocker.args[1] == seen[0] == f"{gone}: no such folder"
    # history survives: a new window lists both runs with their final metrics
    record = view.train_state.history.find(albert.out)
    assert record.status == RunStatus.DONE and record.metrics is not None
    assert (
        record.metrics["mlm_accuracy"]
        == read_events(albert.out / TRAIN_LOG)[-1]["metrics"]["mlm_accuracy"]
    )
    # the next window lists both runs from the history; ticking one overlays its curves,
    # read from its train_log.jsonl
    view2 = make_window(settings).train
    rows = view2.run_rows()
    assert [row[:3] for row in rows] == [
        (albert.name, RunStatus.DONE, "6/6"),
        (bert.name, RunStatus.DONE, "6/6"),
    ]
    assert rows[0][3] == f"{record.metrics['mlm_accuracy']:.1%}"
    assert view2.curves.runs() == []
    view2.runs.topLevelItem(1).setCheckState(0, Qt.CheckState.Checked)
    view2.runs.topLevelItem(0).setCheckState(0, Qt.CheckState.Checked)
    assert view2.curves.runs() == [bert.name, albert.name]
    for run in (bert, albert):
        assert_curves_match_log(view2, run)
    view2.runs.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)
    assert view2.curves.runs() == [albert.name]


@pytest.mark.slow
def test_pause_then_resume_gives_the_weights_of_an_uninterrupted_run(
    qtbot, window, tmp_path, corpus, demo_root
):
    view = window.train
    # Both runs reuse one tokenizer: a tokenizer trained from the corpus is not reproducible
    # from run to run (the tokenizers library breaks ties between equally frequent pieces in
    # hash order), and this test is about the training loop.
    configure(window, corpus, tmp_path / "straight", steps=8, every=4)
    view.form.tokenizer.setText(str(demo_root / "bert-mini"))
    view.start_button.click()
    straight, _, _ = wait_ended(qtbot, view, RunStatus.DONE)
    assert straight.settings["tokenizer"] == str(demo_root / "bert-mini")

    configure(window, corpus, tmp_path / "paused", steps=8, every=4)
    record = start_run(qtbot, view)
    wait_step(qtbot, view, 2, run=record.name)
    view.pause_button.click()
    paused, _, _ = wait_ended(qtbot, view, RunStatus.PAUSED)
    stopped_at = paused.steps_done
    assert 2 <= stopped_at < 8
    assert (paused.out / f"checkpoint-{stopped_at:07d}" / "trainer_state.pt").is_file()
    assert view.resume_button.isEnabled() and not view.start_button.isEnabled()
    view.resume_button.click()
    resumed, _, _ = wait_ended(qtbot, view, RunStatus.DONE)
    assert resumed is paused
    a, b = weights(straight.out / "final"), weights(paused.out / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert_array_equal(a[name], b[name], err_msg=name)
    # the curve shows each step once, with the uninterrupted run's losses
    x, y = view.curves.curve(paused.name, "mlm")
    steps = [e for e in read_events(straight.out / TRAIN_LOG) if e["kind"] == "step"]
    assert_array_equal(x, [e["tokens_seen"] for e in steps])
    assert_allclose(y, [e["losses"]["mlm"] for e in steps], rtol=0, atol=0)


def test_stop_leaves_a_loadable_checkpoint_and_a_killed_trainer_is_one_line(
    qtbot, window, tmp_path, corpus
):
    from core import load_model

    start_and_wait(qtbot, window)
    view = window.train
    configure(window, corpus, tmp_path / "runs", steps=400, every=200)
    record = start_run(qtbot, view)
    wait_step(qtbot, view, 1, run=record.name)
    view.stop_button.click()
    record, _, _ = wait_ended(qtbot, view, RunStatus.STOPPED)
    folder = record.out / f"checkpoint-{record.steps_done:07d}"
    loaded = load_model(folder)
    assert loaded.config.model_type == "bert" and loaded.config.num_hidden_layers == 2
    assert view.run_rows()[0][1] == RunStatus.STOPPED
    # the stopped run is offered for Resume when picked
    view.runs.setCurrentItem(view.runs.topLevelItem(0))
    assert view.resume_button.isEnabled()

    # a trainer killed mid-run: one line in the view, the window keeps working
    configure(window, corpus, tmp_path / "runs2", steps=400, every=200)
    record = start_run(qtbot, view)
    wait_step(qtbot, view, 1, run=record.name)
    runner = next(iter(view.train_state.session.runners.values()))
    os.kill(runner.pid, signal.SIGKILL)
    record, _, message = wait_ended(qtbot, view, RunStatus.FAILED)
    assert message == "the trainer process was killed"
    assert view.status.text() == f"{record.name} failed: the trainer process was killed"
    assert view.start_button.isEnabled()
    from tests.app.helpers import probe_and_wait

    bundle = probe_and_wait(qtbot, window, "the whale [MASK] the captain .")
    assert bundle.result.text == "the whale [MASK] the captain ."


def test_a_trainer_that_fails_on_its_input_shows_its_one_line_error(
    qtbot, window, tmp_path, corpus
):
    view = window.train
    configure(window, corpus, tmp_path / "runs")
    bad = tmp_path / "heldout-latin1.txt"
    bad.write_bytes(b"first line\nsecond caf\xe9\n")
    view.form.heldout.setText(str(bad))
    view.start_button.click()
    record, _, message = wait_ended(qtbot, view, RunStatus.FAILED)
    expected = (
        f"evaluation corpus {bad}: not UTF-8 text (byte 0xe9 at offset 21, line 2); convert it "
        "with e.g. iconv -t UTF-8"
    )
    assert message == expected
    assert view.status.text() == f"{record.name} failed: {expected}"
    assert record.status == RunStatus.FAILED
    assert view.train_state.history.find(record.out).message == expected


def answer_close_prompt(qtbot, choice: str) -> list[str]:
    """Click ``choice`` ("stop", "background", "cancel") in the close prompt once it shows;
    returns the prompt's text (filled in when it showed)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

    seen: list[str] = []

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.findChild(QPushButton, choice).click()

    QTimer.singleShot(0, click)
    return seen


@pytest.mark.slow
def test_closing_during_a_run_asks_and_each_answer_does_what_it_says(
    qtbot, make_window, settings, tmp_path, corpus
):
    window = make_window()
    view = window.train
    configure(window, corpus, tmp_path / "runs", steps=100_000, every=50_000)
    record = start_run(qtbot, view)
    wait_step(qtbot, view, 2, run=record.name)

    # Cancel: the window stays open and the run goes on
    seen = answer_close_prompt(qtbot, "cancel")
    window.close()
    assert seen == [f"Training is in progress ({record.name})."]
    assert window.isVisible() and view.train_state.running

    # Keep training in the background: the window closes, the run continues on its own
    seen = answer_close_prompt(qtbot, "background")
    window.close()
    assert seen and not window.isVisible()
    saved = view.train_state.history.find(record.out)
    assert saved.status == RunStatus.BACKGROUND and saved.pid
    from app.train.runner import group_alive

    assert group_alive(saved.pid)
    at_close = saved.steps_done

    try:
        check_reattach_and_stop(qtbot, make_window, settings, record, saved, at_close)
    finally:  # never leave a trainer behind
        if group_alive(saved.pid):
            os.killpg(saved.pid, signal.SIGKILL)


def check_reattach_and_stop(qtbot, make_window, settings, record, saved, at_close) -> None:
    from app.train.runner import group_alive
    from core import load_model

    # Reopening re-attaches the live view to it: the curves grow past where they were
    again = make_window(settings)
    view2 = again.train
    assert view2.train_state.running
    assert view2.train_state.session.records[0].name == record.name
    wait_step(qtbot, view2, at_close + 5, run=record.name)
    assert view2.status.text() == f"re-attached to {record.name} (training in the background)"

    # Stop (from the re-attached window): a checkpoint is saved and the run ends
    answer_close_prompt(qtbot, "stop")
    again.close()
    assert not again.isVisible()
    qtbot.waitUntil(lambda: not group_alive(saved.pid), timeout=RUN_MS)
    final = view2.train_state.history.find(record.out)
    assert final.status == RunStatus.STOPPED, final.message
    step = max(s for s, _ in final.checkpoints())
    assert step > at_close
    assert load_model(record.out / f"checkpoint-{step:07d}").config.model_type == "bert"
    # the curves on screen were exactly the log's (each step once, across both processes)
    events = [e for e in read_events(record.out / TRAIN_LOG) if e["kind"] == "step"]
    assert [e["step"] for e in events] == list(range(1, len(events) + 1))
    view2._on_redraw()
    x, y = view2.curves.curve(record.name, "mlm")
    n = len(x)
    assert_array_equal(x, [e["tokens_seen"] for e in events[:n]])
    assert_array_equal(y, [e["losses"]["mlm"] for e in events[:n]])


def test_pause_during_set_up_stops_the_run_with_nothing_to_resume(qtbot, window, tmp_path, corpus):
    view = window.train
    configure(window, corpus, tmp_path / "runs")
    record = start_run(qtbot, view)
    assert view.train_state.series[record.name].n_steps == 0  # still setting up (no step yet)
    view.pause_button.click()
    _, outcome, message = wait_ended(qtbot, view)
    if outcome == RunStatus.PAUSED:  # the first step beat the signal: a checkpoint was saved
        assert record.steps_done >= 1 and record.resumable
        return
    assert (outcome, message) == (
        RunStatus.STOPPED,
        "stopped during set-up, before the first step: nothing saved",
    )
    assert view.status.text() == f"{record.name}: {message}"
    assert not record.resumable and view.start_button.isEnabled()


@pytest.mark.slow
def test_both_at_the_same_time_runs_two_trainers_sharing_the_cores(qtbot, window, tmp_path, corpus):
    view = window.train
    configure(window, corpus, tmp_path / "runs", family="parallel", steps=4, every=2)
    order = []
    view.train_state.run_started.connect(lambda r: order.append(("started", r.arch)))
    view.train_state.run_ended.connect(lambda r, outcome, _m: order.append((outcome, r.arch)))
    view.start_button.click()
    qtbot.waitUntil(lambda: len(order) == 4, timeout=RUN_MS)
    assert order[:2] == [("started", "bert"), ("started", "albert")]  # before either ended
    assert sorted(order[2:]) == [(RunStatus.DONE, "albert"), (RunStatus.DONE, "bert")]
    for record in view.train_state.session.records:
        assert record.settings["threads"] == max(1, ((os.cpu_count() or 2) - 1) // 2)
        assert_curves_match_log(view, record)
