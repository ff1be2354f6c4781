"""Plots to PNG and SVG, tables to CSV: one helper for every plot canvas and table.

Plots go through pyqtgraph's own exporters (``exporters.ImageExporter`` / ``SVGExporter``) on
the canvas' whole layout, so titles, axes, legends and colour bars come along. Every write goes
to a temporary file in the same folder, then renamed (``core.atomic``, imported by the writers
themselves: importing ``core`` imports torch, and every canvas imports this module for its menu
long before the engine thread has imported torch). :func:`export_all` writes every plot and
table under a widget (File -> Export plots and tables).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMenu, QTableWidget, QTreeWidget, QWidget

PLOT_SUFFIXES = (".png", ".svg")


def _svg_exporter():
    """pyqtgraph's SVGExporter, taught to read closed paths: its coordinate fix-up
    (``correctCoordinates``) expects every token of a path's ``d`` to be ``x,y``, but Qt 6.10+
    ends closed subpaths with a bare ``Z``. The ``Z`` tokens are taken out before the fix-up
    and put back after it, so outlines stay closed."""
    import sys

    from pyqtgraph import exporters

    module = sys.modules[exporters.SVGExporter.__module__]
    if not getattr(module, "_bertscope_closed_paths", False):
        original = module.correctCoordinates

        def correct(node, defs, item, options):
            closed = []
            for path in node.getElementsByTagName("path"):
                tokens = path.getAttribute("d").split()
                if "Z" in tokens or "z" in tokens:
                    path.setAttribute("d", " ".join(t for t in tokens if t not in ("Z", "z")))
                    closed.append(path)
            result = original(node, defs, item, options)
            for path in closed:
                path.setAttribute("d", path.getAttribute("d").strip() + " Z")
            return result

        module.correctCoordinates = correct
        module._bertscope_closed_paths = True
    return exporters.SVGExporter


def plot_image(canvas, width: int | None = None) -> QImage:
    """The canvas' layout rendered to an image (``width`` pixels wide; default: as shown)."""
    from pyqtgraph import exporters

    exporter = exporters.ImageExporter(canvas.ci)
    if width:
        exporter.parameters()["width"] = int(width)
    return exporter.export(toBytes=True)


def plot_png(canvas, width: int | None = None) -> bytes:
    """PNG bytes of the canvas (for the HTML report's ``data:`` images)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    plot_image(canvas, width).save(buffer, "PNG")
    return bytes(buffer.data())


def export_plot(canvas, path: str | os.PathLike) -> Path:
    """Write the canvas to ``path``: ``.png`` (pyqtgraph ImageExporter) or ``.svg``
    (SVGExporter)."""

    from core.atomic import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise ValueError(f"{path}: plots export to .png or .svg")
    with atomic_path(path) as tmp:
        if suffix == ".png":
            if not plot_image(canvas).save(str(tmp), "PNG"):
                raise OSError(f"{path}: could not write the image")
        else:
            _svg_exporter()(canvas.ci).export(fileName=str(tmp))
    return path


def table_rows(table: QTableWidget | QTreeWidget) -> tuple[list[str], list[list[str]]]:
    """Header and cell texts of a table (a tree: every item, children after their parent,
    indented by one column per level)."""
    if isinstance(table, QTreeWidget):
        header = [table.headerItem().text(c) for c in range(table.columnCount())]
        rows: list[list[str]] = []

        def walk(item, depth: int) -> None:
            rows.append([item.text(c) for c in range(table.columnCount())])
            for i in range(item.childCount()):
                walk(item.child(i), depth + 1)

        for i in range(table.topLevelItemCount()):
            walk(table.topLevelItem(i), 0)
        return header, rows
    header = [
        (table.horizontalHeaderItem(c).text() if table.horizontalHeaderItem(c) else str(c))
        for c in range(table.columnCount())
    ]
    rows = [
        [(table.item(r, c).text() if table.item(r, c) else "") for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]
    return header, rows


def export_table(table: QTableWidget | QTreeWidget, path: str | os.PathLike) -> Path:
    """Write the table's header and cells as CSV."""
    from core.atomic import write_text_atomic

    path = Path(path)
    header, rows = table_rows(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text_atomic(path, out.getvalue())


VIEW_PACKAGES = ("app.probe.", "app.compare.", "app.train.", "app.models.")


def export_name(widget: QWidget, fallback: str) -> str:
    """A file-name stem for a plot or table: its ``export_name`` or object name."""
    name = getattr(widget, "export_name", "") or widget.objectName()
    if not name:  # named after the view that holds it: "AttentionHeatmap-plot-1"
        parent = widget.parentWidget()
        while parent is not None and not type(parent).__module__.startswith(VIEW_PACKAGES):
            parent = parent.parentWidget()
        name = f"{type(parent).__name__}-{fallback}" if parent is not None else fallback
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or fallback


def exportables(root: QWidget) -> tuple[list, list]:
    """Every plot canvas (any pyqtgraph layout widget: this module knows no canvas class, the
    canvases import it for their menu) and table under ``root``, in creation order."""
    import pyqtgraph as pg  # as every pyqtgraph use here: the window shows before it loads

    canvases = root.findChildren(pg.GraphicsLayoutWidget)
    tables = root.findChildren(QTableWidget) + root.findChildren(QTreeWidget)
    return canvases, tables


def export_all(root: QWidget | list[QWidget], folder: str | os.PathLike) -> list[Path]:
    """Every plot under ``root`` (a widget or several) as PNG and SVG and every table as CSV
    into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    canvases, tables = [], []
    for widget in root if isinstance(root, list) else [root]:
        found = exportables(widget)
        canvases += found[0]
        tables += found[1]
    written: list[Path] = []
    used: set[str] = set()

    def unique(stem: str) -> str:
        name, i = stem, 2
        while name in used:
            name, i = f"{stem}-{i}", i + 1
        used.add(name)
        return name

    for i, canvas in enumerate(canvases):
        stem = unique(export_name(canvas, f"plot-{i + 1}"))
        for suffix in PLOT_SUFFIXES:
            written.append(export_plot(canvas, folder / f"{stem}{suffix}"))
    for i, table in enumerate(tables):
        stem = unique(export_name(table, f"table-{i + 1}"))
        written.append(export_table(table, folder / f"{stem}.csv"))
    return written


def plot_menu(canvas, parent: QWidget | None = None) -> QMenu:
    """The right-click menu of a plot: export it as PNG or SVG."""
    menu = QMenu(parent or canvas)
    for suffix, label in ((".png", "PNG image"), (".svg", "SVG drawing")):
        action = menu.addAction(f"Export plot as {label}\u2026")
        action.triggered.connect(lambda _=False, s=suffix, lab=label: _ask_plot(canvas, s, lab))
    return menu


def _ask_plot(canvas, suffix: str, label: str) -> None:
    start = f"{export_name(canvas, 'plot')}{suffix}"
    path, _ = QFileDialog.getSaveFileName(canvas, "Export plot", start, f"{label} (*{suffix})")
    if path:
        export_plot(canvas, path if Path(path).suffix else path + suffix)


def table_menu(table: QTableWidget | QTreeWidget, parent: QWidget | None = None) -> QMenu:
    """The right-click menu of a table: export it as CSV."""
    menu = QMenu(parent or table)
    action = menu.addAction("Export table as CSV\u2026")

    def ask() -> None:
        start = f"{export_name(table, 'table')}.csv"
        path, _ = QFileDialog.getSaveFileName(table, "Export table", start, "CSV (*.csv)")
        if path:
            export_table(table, path if Path(path).suffix else path + ".csv")

    action.triggered.connect(ask)
    return menu


def install_table_menu(table: QTableWidget | QTreeWidget) -> None:
    """Give a table (or tree) the "Export table as CSV" right-click menu."""
    from PySide6.QtCore import Qt

    table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    table.customContextMenuRequested.connect(
        lambda pos: table_menu(table).exec(table.viewport().mapToGlobal(pos))
    )
