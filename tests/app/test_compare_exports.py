"""Exports: every plot of the Probe and Compare tabs to PNG and SVG (pyqtgraph's exporters, from
the right-click menu and File -> Export), every table to CSV, the comparison to JSON (the CLI's
schema), CSV and a self-contained HTML report that a real browser renders without loading
anything from outside."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from app.widgets.plot_canvas import PlotCanvas
from app.widgets.plot_export import export_all, exportables, plot_menu, table_rows
from core.cli import main
from core.export import load_json
from tests.app.helpers import WAIT_MS, start_and_wait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def compared(qtbot, make_window):
    window = make_window()
    start_and_wait(qtbot, window, "the lord came to the [MASK] .")
    window.probe.build_plots()
    with qtbot.waitSignal(window.compare.session.probed, timeout=WAIT_MS):
        window.tabs.setCurrentWidget(window.compare)
    qtbot.waitUntil(lambda: window.compare.cost.comparison is not None, timeout=WAIT_MS)
    return window


def check_files(written: list[Path]) -> None:
    for path in written:
        if path.suffix == ".png":
            image = QImage(str(path))
            assert not image.isNull() and image.width() > 50, path
        elif path.suffix == ".svg":
            root = ElementTree.parse(path).getroot()
            assert root.tag.endswith("svg"), path
            assert len(list(root.iter())) > 10, path  # drawn items, not an empty document
        elif path.suffix == ".csv":
            with path.open(encoding="utf-8") as f:
                rows = list(csv.reader(f))
            assert rows and rows[0] and all(rows[0]), path  # a header with every column named


def test_every_plot_and_table_of_both_tabs_exports(compared, tmp_path):
    window = compared
    for tab, minimum in ((window.probe, 5), (window.compare, 4)):
        canvases, tables = exportables(tab)
        assert len(canvases) >= minimum
        written = export_all(tab, tmp_path / type(tab).__name__)
        assert len(written) == 2 * len(canvases) + len(tables)
        check_files(written)
    # a CSV holds exactly what its table shows
    cost_table = window.compare.cost.table
    header, rows = table_rows(cost_table)
    with (tmp_path / "CompareView" / "compare-cost-table.csv").open(encoding="utf-8") as f:
        assert list(csv.reader(f)) == [header, *rows]
    assert header == ["figure", "bert-mini", "albert-mini", "B / A"]


def test_right_click_menu_and_file_menu_export(compared, tmp_path, monkeypatch, qtbot):
    window = compared
    canvas = window.compare.curves.canvas
    menu = plot_menu(canvas)
    actions = menu.actions()
    assert [a.text() for a in actions] == [
        "Export plot as PNG image\u2026",
        "Export plot as SVG drawing\u2026",
    ]
    target = tmp_path / "curves"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG image (*.png)")
    )
    actions[0].trigger()
    assert not QImage(str(target) + ".png").isNull()
    assert isinstance(canvas, PlotCanvas)
    # File -> Export plots and tables, for the tab on screen
    folder = tmp_path / "all"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    window.export_plots_action.trigger()
    names = {p.name for p in folder.iterdir()}
    assert {"compare-attention.png", "compare-attention.svg", "compare-cost-table.csv"} <= names
    # File -> Export comparison, as JSON with the schema of `python -m core compare --json`
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        lambda *a, **k: (str(tmp_path / "cmp.json"), "JSON, as compare --json (*.json)"),
    )
    with qtbot.waitSignal(window.compare.session.exported, timeout=WAIT_MS):
        window.export_comparison_action.trigger()  # written on the engine thread
    comparison, meta = load_json(tmp_path / "cmp.json")
    assert (comparison.a.name, comparison.b.name) == ("bert-mini", "albert-mini")
    assert (meta["model_a"], meta["model_b"]) == ("bert-mini", "albert-mini")
    data = json.loads((tmp_path / "cmp.json").read_text())
    cli_json = tmp_path / "cli.json"
    folders = [str(window.state.entries[k].path) for k in ("demo:bert-mini", "demo:albert-mini")]
    assert main(["compare", *folders, "the lord", "--no-measure", "--json", str(cli_json)]) == 0
    cli = json.loads(cli_json.read_text())
    assert data["kind"] == cli["kind"] == "Comparison"
    assert set(data["result"]) == set(cli["result"])
    assert set(data["result"]["b"]) == set(cli["result"]["b"])
    np.testing.assert_allclose(
        comparison.b.layers.l2_mean, window.compare.session.bundle.b.layers.l2_mean
    )


def export_comparison(qtbot, view, path: Path) -> Path:
    """Export from the Compare tab and wait for the engine thread to have written it."""
    with qtbot.waitSignal(view.session.exported, timeout=WAIT_MS) as blocker:
        view.export_comparison(path)
    return Path(blocker.args[0])


def test_comparison_csv_and_html_report(compared, tmp_path, qtbot):
    view = compared.compare
    path = export_comparison(qtbot, view, tmp_path / "cmp.csv")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"bert-mini", "albert-mini"} <= {r["model"] for r in rows}
    html = export_comparison(qtbot, view, tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("<table>") == 4
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 4
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="chromium is not installed")
def test_html_report_renders_in_headless_chromium(compared, tmp_path, qtbot):
    report = export_comparison(qtbot, compared.compare, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    common = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
    ]  # fmt: skip
    done = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,900", report.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert shot.is_file(), done.stderr[-2000:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1200, 900)
    ptr = image.convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(ptr.constBits(), dtype=np.uint8, count=ptr.sizeInBytes())
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180
    )
    assert "<table>" in dom.stdout and "data:image/png;base64," in dom.stdout
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", dom.stdout)
    # nothing was fetched from the network (chromium logs failed or blocked loads)
    assert not re.search(r"https?://(?!localhost)", done.stderr + dom.stderr)
