"""Start BertScope's window: ``python main.py`` or the ``bertscope`` command.

The window is on screen before torch is imported: only PySide6 and pyqtgraph load here, and the
engine (torch, ``core``) is imported by the worker thread once the event loop runs. The order
is tuned for start-up: the first views are built behind the visible window, the rest after the
first probe, then the start-up objects are frozen out of the garbage collector's way. Scripted
runs (screenshots, training runs, a timed quit) are :mod:`app.scripted_run`'s. SIGTERM and
SIGINT close the window cleanly (settings saved, worker stopped, exit status 0).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

_T0 = time.perf_counter()
log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bertscope", description="BertScope: probe BERT and ALBERT models"
    )
    parser.add_argument("model", nargs="?", help="model folder or demo name to open first")
    parser.add_argument("--text", help="sentence to probe first")
    parser.add_argument("--pair", help="second sentence of a pair")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme")
    parser.add_argument(
        "--settings",
        type=Path,
        help="settings file (INI) instead of the user's; also $BERTSCOPE_SETTINGS",
    )
    parser.add_argument("--size", help="window size WIDTHxHEIGHT")
    parser.add_argument(
        "--token", type=int, help="token to show in Token focus after the first probe"
    )
    parser.add_argument(
        "--layer", type=int, help="layer (1-based) for the heatmap after the first probe"
    )
    parser.add_argument(
        "--head", type=int, help="head (1-based) for the heatmap after the first probe"
    )
    parser.add_argument(
        "--mask-token", type=int, help="mask and predict this token after the first probe"
    )
    parser.add_argument(
        "--tab",
        choices=("probe", "compare", "cost", "calculator", "train"),
        help="open on this tab (cost and calculator are pages of the Compare tab)",
    )
    parser.add_argument(
        "--screenshot", type=Path, help="save a PNG of the screen after the first probe"
    )
    parser.add_argument(
        "--train",
        choices=("bert", "albert", "both"),
        help="start a run in the Train tab (its form's defaults; with --steps)",
    )
    parser.add_argument("--steps", type=int, help="steps of the --train run")
    parser.add_argument(
        "--screenshot-at",
        type=float,
        metavar="FRACTION",
        help="with --train: take the screenshot once the last run is this far (0-1; default: "
        "when every run ended)",
    )
    parser.add_argument(
        "--quit-after",
        type=int,
        metavar="MS",
        help="close the window after MS milliseconds; also $BERTSCOPE_QUIT_AFTER_MS",
    )
    parser.add_argument(
        "--report-startup",
        action="store_true",
        help="print 'shown <seconds>' once the window is on screen",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args, _qt_args = parser.parse_known_args(argv)
    return args


def make_settings(path: Path | None, scripted: bool = False):
    """The settings to read and write: ``path`` (or $BERTSCOPE_SETTINGS) when given, else the
    user's. A scripted run without an explicit file gets a fresh temporary one, so an offscreen
    window's 800-px geometry or a screenshot's layout never becomes the user's next start."""
    from PySide6.QtCore import QSettings

    path = path or (
        Path(os.environ["BERTSCOPE_SETTINGS"]) if os.environ.get("BERTSCOPE_SETTINGS") else None
    )
    if path is None and scripted:
        folder = tempfile.mkdtemp(prefix="bertscope-settings-")
        atexit.register(shutil.rmtree, folder, True)
        path = Path(folder) / "settings.ini"
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("BertScope", "BertScope")


def _import_engine_early() -> None:
    """Start importing torch and ``core`` at once, beside Qt's and pyqtgraph's imports: torch's
    import is most of the time to a first probe, and the engine thread (started once the window
    is on screen) then finds the modules imported or waits on their import locks."""
    try:
        import torch  # noqa: F401

        import core.analysis
        import core.loaded_model  # noqa: F401  (the models; core.analysis alone no longer imports them)
    except Exception:  # the engine thread imports them again and reports the error properly
        log.debug("early engine import failed", exc_info=True)


def main(argv: list[str] | None = None) -> int:
    threading.Thread(target=_import_engine_early, name="engine-import", daemon=True).start()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("BertScope")
    app.setOrganizationName("BertScope")
    app.setApplicationDisplayName("BertScope")
    from app.gui_gc import GuiGarbageCollector

    collector = GuiGarbageCollector(parent=app)  # collections on this thread's event loop only

    from app import scripted_run
    from app.main_window import COMPARE_PAGES, MainWindow
    from app.probe.probe_view import FIRST_VIEWS

    settings = make_settings(args.settings, scripted_run.is_scripted(args))
    if args.theme:
        settings.setValue("theme", args.theme)
    window = MainWindow(settings, defer_plots=True)
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
        window.resize(width, height)
        window.move(0, 0)
    window.show()
    app.processEvents()
    if args.report_startup:
        sys.stdout.write(f"shown {time.perf_counter() - _T0:.3f}\n")
        sys.stdout.flush()

    def build() -> None:
        # Behind the visible window: the engine imports torch in its thread while this thread
        # imports pyqtgraph and builds the plots.
        window.start(args.model, args.text, args.pair)
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
        window.probe.build_plots(FIRST_VIEWS)  # the window arranges its panels around them
        if args.tab in COMPARE_PAGES:
            if args.text:  # the Compare tab's own boxes: its first visit probes what they hold
                window.compare.sentence.setText(args.text)
                window.compare.pair.setText(args.pair or "")
            window.show_tab(args.tab)
        if args.report_startup:
            sys.stdout.write(f"plots {time.perf_counter() - _T0:.3f}\n")
            sys.stdout.flush()

    QTimer.singleShot(0, build)

    def after_first_probe(_analysis) -> None:
        window.state.probed.disconnect(after_first_probe)
        if args.report_startup:
            sys.stdout.write(f"probed {time.perf_counter() - _T0:.3f}\n")
            window.repaint()  # what the views drew, on screen now (they paint on the next pass)
            sys.stdout.write(f"painted {time.perf_counter() - _T0:.3f}\n")
            sys.stdout.flush()
        QTimer.singleShot(0, build_the_rest)  # once the first views have painted it

    def build_the_rest() -> None:
        window.probe.build_plots()  # each draws the probe on screen as it is built
        QTimer.singleShot(0, freeze)

    def freeze() -> None:
        from app.gui_gc import freeze_startup_objects, full_collection_seconds

        before = full_collection_seconds() if args.report_startup else 0.0
        freeze_startup_objects()
        if args.report_startup:
            after = full_collection_seconds()
            sys.stdout.write(f"gc-full {before * 1e3:.1f} ms, after freeze {after * 1e3:.1f} ms\n")
            sys.stdout.flush()

    window.state.probed.connect(after_first_probe)

    if args.tab == "train" or args.train:
        window.show_tab("train")
    outcome = scripted_run.install(window, args)

    # Python runs signal handlers between bytecodes, possibly in the middle of a paint; the
    # handler only raises a flag, and a timer (which also lets Python run while Qt idles)
    # closes the window from the event loop.
    stop = {"requested": False}

    def request_stop(_signum, _frame) -> None:
        stop["requested"] = True

    def check_stop() -> None:
        if stop["requested"]:
            stop["requested"] = False
            window.close_unattended()  # runs save a checkpoint; nobody to ask

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    heartbeat = QTimer()
    heartbeat.timeout.connect(check_stop)
    heartbeat.start(100)

    status = app.exec()
    heartbeat.stop()
    collector.stop()
    return outcome.exit_status or int(status)
