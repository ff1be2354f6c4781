"""The window tests' deadlock in 30 lines (issue 18), run by ``test_gui_gc.py`` in a child.

``QObject::disconnect`` holds two of Qt's pooled signal-slot mutexes while it calls the sender's
virtual ``disconnectNotify()``; for a Python subclass shiboken looks for an override and
allocates; with the threshold at 1 that allocation starts a collection, which frees a garbage
cycle holding a parentless ``QMenu``; ``~QAction`` -> ``~QObject`` locks a mutex this thread
already holds. Without ``--fixed`` this hangs every time (PySide6 6.9-6.11); with it the
collector of ``app/gui_gc.py`` is installed and it prints "returned".
"""

import gc
import sys

from PySide6.QtWidgets import QApplication, QGraphicsView, QMenu

app = QApplication.instance() or QApplication([])
if "--fixed" in sys.argv:
    from app.gui_gc import GuiGarbageCollector

    collector = GuiGarbageCollector()


class View(QGraphicsView):
    pass


class MenuInACycle:
    def __init__(self) -> None:
        self.me = self  # only the cyclic collector can free it
        self.menu = QMenu()  # parentless, owned by Python, as pyqtgraph's per-plot menus
        for i in range(50):
            self.menu.addAction(f"action {i}")


def slot() -> None:
    pass


thresholds = gc.get_threshold()
for _ in range(20):
    view = View()
    view.destroyed.connect(slot)
    MenuInACycle()
    gc.set_threshold(1)
    view.destroyed.disconnect(slot)  # disconnectNotify -> shiboken allocates -> collection?
    gc.set_threshold(*thresholds)
    del view
print("returned")
