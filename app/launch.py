"""Start BertScope's window: ``python main.py`` or the ``bertscope`` command.

The window is on screen before torch is imported: only PySide6 and pyqtgraph load here, and the
engine (torch, ``core``) is imported by the worker thread once the event loop runs. Options
exist for scripted runs (screenshots, benchmarks, tests): pick a model and sentence, save a
screenshot of the screen after the first probe, quit after a delay. SIGTERM and SIGINT close
the window cleanly (settings saved, worker stopped, exit status 0).
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


def scripted_run(args: argparse.Namespace) -> bool:
    """A run nobody sits in front of: offscreen, a screenshot, or a timed quit."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    quit_after = args.quit_after or os.environ.get("BERTSCOPE_QUIT_AFTER_MS", "").strip() not in (
        "",
        "0",
    )
    return platform.startswith("offscreen") or bool(args.screenshot) or bool(quit_after)


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

        import core.analysis  # noqa: F401
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

    from app.main_window import MainWindow
    from app.probe.probe_view import FIRST_VIEWS

    settings = make_settings(args.settings, scripted_run(args))
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
        if args.tab in ("compare", "cost", "calculator"):
            window.tabs.setCurrentWidget(window.compare)
            pages = {"compare": 0, "cost": 1, "calculator": 2}
            window.compare.pages.setCurrentIndex(pages[args.tab])
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
        window.tabs.setCurrentWidget(window.train)
    if args.train:
        _script_training(window, args)
    elif args.screenshot or args.token is not None or args.layer or args.mask_token is not None:
        _script_first_probe(window, args)

    # Python runs signal handlers between bytecodes, possibly in the middle of a paint; the
    # handler only raises a flag, and a timer (which also lets Python run while Qt idles)
    # closes the window from the event loop.
    stop = {"requested": False}

    def request_stop(_signum, _frame) -> None:
        stop["requested"] = True

    def check_stop() -> None:
        if stop["requested"]:
            stop["requested"] = False
            window.train.unattended_close = "stop"  # runs save a checkpoint; nobody to ask
            window.close()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    heartbeat = QTimer()
    heartbeat.timeout.connect(check_stop)
    heartbeat.start(100)

    quit_after = args.quit_after or int(os.environ.get("BERTSCOPE_QUIT_AFTER_MS", "0") or 0)
    if quit_after > 0:

        def quit_now() -> None:
            window.train.unattended_close = "stop"  # a scripted run: nobody to ask
            window.close()

        QTimer.singleShot(quit_after, quit_now)
    status = app.exec()
    heartbeat.stop()
    collector.stop()
    return int(status)


def _shoot(window, path: Path) -> None:
    """Save a PNG of the screen (or of the window where the platform cannot grab it)."""
    from PySide6.QtGui import QGuiApplication

    screen = window.screen() or QGuiApplication.primaryScreen()
    pixmap = screen.grabWindow(0)
    if pixmap.isNull() or pixmap.width() < 10:
        pixmap = window.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    pixmap.save(str(path), "PNG")
    sys.stdout.write(f"screenshot {path} {pixmap.width()}x{pixmap.height()}\n")
    sys.stdout.flush()


def _script_training(window, args: argparse.Namespace) -> None:
    """``--train``: start a run from the Train tab's form, and with ``--screenshot`` save the
    screen when the last run reaches ``--screenshot-at`` (or when every run ended), then close
    (a run still going is stopped: it saves a checkpoint)."""
    from PySide6.QtCore import QTimer

    train = window.train
    form = train.form
    form.family.setCurrentIndex(form.family.findData(args.train))
    if args.steps:
        form.steps.setValue(args.steps)
    QTimer.singleShot(0, train.start)
    if not args.screenshot:
        return
    wanted = len(form.families)
    done = {"shot": False}

    def shoot() -> None:
        if done["shot"]:
            return
        done["shot"] = True
        _shoot(window, args.screenshot)
        window.train.unattended_close = "stop"
        window.close()

    from core.training.run_status import RunStatus

    state = train.train_state

    def on_event(_record, event) -> None:  # a core.training.ProgressEvent
        if args.screenshot_at is None or event.kind != "step":
            return
        started = [r for s in state.sessions for r in s.records if r.status != RunStatus.NEW]
        if len(started) == wanted and event.step / (event.total_steps or 1) >= args.screenshot_at:
            QTimer.singleShot(1000, shoot)

    def on_ended(_record, _status, _message: str) -> None:
        if not state.running and not any(
            r.status == RunStatus.NEW for s in state.sessions for r in s.records
        ):
            QTimer.singleShot(1000, shoot)

    state.event_received.connect(on_event)
    state.run_ended.connect(on_ended)


def _script_first_probe(window, args: argparse.Namespace) -> None:
    """After the first probe: select token/layer/head, mask a token, then save a screenshot."""
    from PySide6.QtCore import QTimer

    done = {"probed": False}

    def shoot() -> None:
        _shoot(window, args.screenshot)
        window.close()

    def fail(what: str, message: str) -> None:
        """Nobody is there to read a dialog: the reason goes to stderr, the exit status is 1."""
        if done["probed"]:
            return
        done["probed"] = True
        line = message if what in message else f"{what}: {message}"
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
        from PySide6.QtWidgets import QApplication

        QApplication.instance().exit(1)
        window.close()

    if args.screenshot:  # instead of the modal "Cannot open model" dialog
        window.state.load_failed.disconnect(window._on_load_failed)
        window.state.load_failed.connect(lambda source, message: fail(source, message))
        window.state.probe_failed.connect(lambda message: fail("probe", message))

    def on_probed(_bundle) -> None:
        if done["probed"]:
            return
        done["probed"] = True
        # after every view has drawn this result (they may connect after this slot)
        QTimer.singleShot(0, after_probe)

    def after_probe() -> None:
        probe = window.probe
        if args.layer or args.head:
            layer = (args.layer or 1) - 1
            head = (args.head or 1) - 1
            probe.heatmap.select(layer, head)
            probe.grid.highlight(layer, head)
        if args.token is not None:
            probe.strip.select(args.token)
        if args.mask_token is not None:
            window.state.request_mask(args.mask_token)
        if args.screenshot and args.tab in ("compare", "cost", "calculator"):
            compare = window.compare
            if compare.session.bundle is not None:
                QTimer.singleShot(1500, shoot)
            else:  # wait for both models' probe
                compare.session.probed.connect(lambda _b: QTimer.singleShot(1500, shoot))
        elif args.screenshot:
            QTimer.singleShot(1500, shoot)

    window.state.probed.connect(on_probed)
