"""The cost panel and the parameter calculator: bars and table equal ``core``'s parameter and
memory models, the settings update them at once, the measurement runs on the engine thread
(the event loop keeps serving timers) and can be cancelled, the calculator reproduces the ALBERT
paper's counts, and "Add to models" lists a model that can be compared."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer

from core.config import preset
from core.cost.calculator import PAPER_CONFIGS, calculate, relative_difference
from core.cost.memory import training_memory
from core.cost.params import COMPONENTS, param_report
from core.cost.tradeoff import format_value
from core.loaded_model import load_model
from tests.app.helpers import WAIT_MS, open_compare

TEXT = "the lord came to the city ."


@pytest.fixture
def view(qtbot, demo_root):
    state, view, _bundle = open_compare(qtbot, demo_root, TEXT)
    qtbot.waitUntil(lambda: view.cost.comparison is not None, timeout=WAIT_MS)
    yield view
    state.shutdown()


def table_cell(cost, label: str, section: str, col: int) -> str:
    rows = [
        r for r in range(cost.table.rowCount()) if cost.table.item(r, 0).text().strip() == label
    ]
    sections = [r for r in range(cost.table.rowCount()) if cost.table.item(r, 0).text() == section]
    row = next(r for r in rows if r > sections[0])
    return cost.table.item(row, col).text()


def test_parameter_bars_equal_core_and_toggle(view, demo_root):
    cost = view.cost
    reports = [param_report(load_model(demo_root / n).model) for n in ("bert-mini", "albert-mini")]
    for side, report in enumerate(reports):
        assert cost.param_values(side) == {c: report.component(c).unique for c in COMPONENTS}
    bar = cost.param_bars["attention"]
    assert list(bar.opts["height"]) == pytest.approx(
        [r.component("attention").unique / 1e6 for r in reports]
    )
    cost.effective_button.click()
    bar = cost.param_bars["attention"]
    assert list(bar.opts["height"]) == pytest.approx(
        [r.component("attention").effective / 1e6 for r in reports]
    )
    # the shared ALBERT layers run twice: effective attention is twice the stored
    assert (
        reports[1].component("attention").effective == 2 * reports[1].component("attention").unique
    )
    ratio = reports[1].total_unique / reports[0].total_unique
    assert cost.sentence.text().startswith(f"albert-mini: {ratio:.0%} of bert-mini's parameters")


def test_predicted_memory_follows_the_settings(view, demo_root, qtbot):
    cost = view.cost
    albert = load_model(demo_root / "albert-mini")
    cost.batch.setValue(3)
    cost.precision.setCurrentText("bf16")
    with qtbot.waitSignal(view.session.costed, timeout=WAIT_MS):  # newest request wins
        cost.optimizer.setCurrentText("lamb")
    expected = training_memory(albert.model, 3, 64, "bf16", "lamb", "cpu")  # 64 positions
    c = view.session.comparison
    assert (c.batch, c.seq, c.precision, c.optimizer) == (3, 64, "bf16", "lamb")
    assert c.b.memory_training.total == expected.total
    assert table_cell(cost, "peak (model)", "memory: training", 2) == format_value(
        expected.total, "bytes"
    )
    bars = cost.memory_values()
    assert bars[1]["weights"] == expected.get("weights")
    assert bars[1]["optimizer states"] == expected.get("optimizer states")
    assert "at 3 \u00d7 64 bf16 (predicted)" in cost.sentence.text()
    tip = cost.table.item(
        next(
            r
            for r in range(cost.table.rowCount())
            if cost.table.item(r, 0).text().strip() == "optimizer states"
        ),
        1,
    ).toolTip()
    assert "Np\u00b72\u00b74" in tip and "core.cost.memory.training_memory" in tip
    with qtbot.waitSignal(view.session.cost_failed, timeout=WAIT_MS):
        cost.seq.setValue(200)  # longer than the tiny models' 64 positions: one line
    assert "seq 200 is longer than the model's 64 positions" in cost.status.text()


def test_measurement_keeps_the_window_responsive(view, qtbot):
    cost = view.cost
    with qtbot.waitSignal(view.session.costed, timeout=WAIT_MS):
        cost.batch.setValue(2)
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    progress = []
    view.session.measure_progress.connect(progress.append)
    timer.start()
    with qtbot.waitSignal(view.session.measured, timeout=WAIT_MS * 4) as blocker:
        cost.measure_button.click()
        assert not cost.measure_button.isEnabled() and cost.cancel_button.isEnabled()
    timer.stop()
    assert ticks  # the event loop served the timer while the engine measured
    assert [p.done for p in progress] == [1, 2, 3, 4, 5, 6]
    measured = blocker.args[0]
    assert measured.a.measured_training.peak > 0 and measured.b.latency.tokens_per_s > 0
    assert table_cell(cost, "peak (measured)", "memory: training", 1) == format_value(
        measured.a.measured_training.peak, "bytes"
    )
    assert "(measured)" in cost.sentence.text()
    assert cost.measure_button.isEnabled()


def test_measurement_can_be_cancelled(view, qtbot):
    cost = view.cost
    measured = []
    view.session.measured.connect(measured.append)
    view.session.measure_progress.connect(lambda _p: cost.cancel_button.click())
    with qtbot.waitSignal(view.session.measure_cancelled, timeout=WAIT_MS * 4):
        cost.measure_button.click()
    qtbot.waitUntil(lambda: not view.state.busy, timeout=WAIT_MS)
    assert measured == []
    assert view.session.comparison.a.measured_training is None
    assert cost.status.text() == "measurement cancelled"
    assert table_cell(cost, "peak (measured)", "memory: training", 1) == "\u2013"


def test_calculator_reproduces_the_paper_tables(view, qtbot):
    calc = view.calculator
    if not calc.paper_rows:
        qtbot.waitSignal(calc.paper_filled, timeout=WAIT_MS).wait()
    for row, paper in enumerate(PAPER_CONFIGS):
        with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
            calc.paper.cellClicked.emit(row, 0)
        ours = calc.calculation.params.backbone_unique
        assert ours == calculate(paper.config).params.backbone_unique
        difference = relative_difference(ours, paper.published)
        assert calc.paper.item(row, 4).text() == f"{difference:+.1%}"
        if paper.note:
            assert ours == pytest.approx(222.6e6, rel=1e-3)
            assert "235M" in calc.footnote.text() and "222.6M" in calc.footnote.text()
        else:
            assert abs(difference) < 0.03
    with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
        calc.paper.cellClicked.emit(0, 0)  # BERT-base
    assert calc.config() == preset("bert-base")


def test_calculator_updates_as_you_type_and_refuses_bad_input(view, qtbot):
    calc = view.calculator
    view.pages.setCurrentWidget(calc)
    calc.paper.cellClicked.emit(2, 0)  # ALBERT-base
    calc.spins["heads"].setValue(16)
    seen = []
    calc.calculated.connect(seen.append)
    calc.spins["hidden"].selectAll()
    with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
        qtbot.keyClicks(calc.spins["hidden"], "1024")
    qtbot.waitUntil(lambda: not view.state.busy, timeout=WAIT_MS)
    assert seen[-1].config.hidden_size == 1024  # newest wins: the last keystroke's figures
    expected = calculate(preset("albert-base", hidden_size=1024, num_attention_heads=16))
    assert calc.calculation.params.total_unique == expected.params.total_unique
    assert calc.calculation.training.total == expected.training.total
    assert calc.breakdown.item(2, 1).text() == f"{expected.params.component('attention').unique:,}"
    with qtbot.waitSignal(view.session.calculator.calculation_failed, timeout=WAIT_MS):
        calc.spins["heads"].setValue(7)  # 1024 is not divisible by 7
    assert "not divisible" in calc.status.text() and not calc.add_button.isEnabled()
    with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
        calc.spins["heads"].setValue(16)
    assert calc.add_button.isEnabled()


def test_add_to_models_lists_a_model_that_compares(view, qtbot):
    calc, state = view.calculator, view.state
    with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
        calc.set_config(preset("albert-tiny", vocab_size=4000, max_position_embeddings=64))
    with qtbot.waitSignal(calc.added, timeout=WAIT_MS) as blocker:
        calc.add_button.click()
    key = blocker.args[0]
    entry = state.entries[key]
    assert entry.is_loaded and entry.random_init and entry.name == calc.model_name()
    assert view.box_b.findData(key) >= 0
    with qtbot.waitSignal(view.session.probed, timeout=WAIT_MS) as probed:
        view.set_models("demo:bert-mini", key)
    assert probed.args[0].b.result.model_name == entry.name
    assert probed.args[0].b.result.num_layers == 2
    # too big to build: refused in one line, nothing added
    with qtbot.waitSignal(calc.calculated, timeout=WAIT_MS):
        calc.set_config(
            preset("bert-large", vocab_size=4_000_000, hidden_size=16384, num_attention_heads=16)
        )
    count = len(state.entries)
    calc.add_button.click()
    qtbot.waitUntil(lambda: calc.add_button.isEnabled(), timeout=WAIT_MS)
    assert len(state.entries) == count
    message = calc.status.text()
    assert "\n" not in message and "the model needs about" in message and "available" in message
