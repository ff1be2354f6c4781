"""At a laptop's 1280x720 nothing on the Compare tab's pages is clipped: every table column
is inside its viewport or reachable by a scroll bar, and the depth plots show the last layer."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QAbstractItemView, QTableView, QTreeView

from tests.app.helpers import WAIT_MS


@pytest.fixture
def laptop(qtbot, make_window):
    window = make_window()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.settled, timeout=WAIT_MS)
    window.state.start()
    with qtbot.waitSignal(window.compare.session.probed, timeout=WAIT_MS):
        window.tabs.setCurrentWidget(window.compare)
    compare = window.compare
    qtbot.waitUntil(lambda: compare.cost.figures is not None, timeout=WAIT_MS)
    return window


def clipped_columns(view: QAbstractItemView) -> list[str]:
    """Header sections narrower than their content (a squeezed column hides its numbers), or
    ending past the viewport's right edge while no scroll bar reaches them."""
    header = view.horizontalHeader() if isinstance(view, QTableView) else view.header()
    scrolls = view.horizontalScrollBar().maximum() > 0
    model = view.model()
    out = []
    for col in range(header.count()):
        if header.isSectionHidden(col):
            continue
        size = header.sectionSize(col)
        content = max(view.sizeHintForColumn(col), header.sectionSizeHint(col))
        right = header.sectionViewportPosition(col) + size
        if size < content or (right > view.viewport().width() and not scrolls):
            out.append(f"{model.headerData(col, header.orientation())}: {size} < {content}")
    return out


@pytest.mark.parametrize("page", ["compare", "cost"])
def test_no_table_column_is_beyond_its_viewport(laptop, qtbot, page):
    laptop.show_tab(page)
    widget = laptop.compare.pages.currentWidget()
    views = [*widget.findChildren(QTableView), *widget.findChildren(QTreeView)]
    tables = [t for t in views if t.isVisibleTo(widget)]
    assert tables  # the masked words, or the cost table
    qtbot.waitUntil(lambda: all(t.viewport().width() > 50 for t in tables), timeout=WAIT_MS)
    for table in tables:
        assert clipped_columns(table) == [], table.objectName()
    assert laptop.size().toTuple() == (1280, 720)  # the pages scroll; the window never grows


def test_depth_plots_pad_past_the_last_layer(laptop):
    compare = laptop.compare
    plots = [*compare.curves.plots.values(), compare.heads.entropy, compare.heads.mass]
    for plot in plots:
        low, high = plot.viewRange()[0]
        assert low < 0.0 and high >= 1.05, (low, high)  # the marker at 1.0 drawn whole
