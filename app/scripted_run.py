"""Runs nobody sits in front of (screenshots, benchmarks, tests), driven through the main
window's public methods only:

* ``--screenshot FILE``: after the first probe (and ``--layer``/``--head``, ``--token``,
  ``--mask-token``), save a PNG of the screen and close. A model that fails to load, or a
  probe that fails, prints one ``error:`` line on stderr and exits with status 1 (the
  :class:`Outcome`) instead of opening a dialog nobody can close.
* ``--train bert|albert|both`` (``--steps``, ``--screenshot-at``): start a run from the Train
  tab's form; with ``--screenshot``, save the screen once the last run is far enough along (or
  every run ended), then close (a run still going saves a checkpoint).
* ``--quit-after MS`` (or ``$BERTSCOPE_QUIT_AFTER_MS``): close the window after MS ms.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

from core.training.run_status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from app.main_window import MainWindow
    from core.training.events import ProgressEvent

SETTLE_MS = 1500  # after the last change, before a screenshot: the views have painted
RUN_SETTLE_MS = 1000  # after a training run's milestone, before its screenshot


@dataclass
class Outcome:
    """How a scripted run went, for the exit status: the event loop's own code is no witness
    (closing the last window quits it with 0, whatever ``exit(1)`` asked before)."""

    failed: bool = False  # it could not do what it was asked; the reason is on stderr

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


def quit_after_ms(args: argparse.Namespace) -> int:
    """``--quit-after``, else ``$BERTSCOPE_QUIT_AFTER_MS``; 0 when neither asks."""
    return args.quit_after or int(os.environ.get("BERTSCOPE_QUIT_AFTER_MS", "0").strip() or 0)


def is_scripted(args: argparse.Namespace) -> bool:
    """A run nobody sits in front of: offscreen, a screenshot, or a timed quit."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return platform.startswith("offscreen") or bool(args.screenshot) or quit_after_ms(args) > 0


def install(window: MainWindow, args: argparse.Namespace) -> Outcome:
    """Set up what ``args`` script: a training run or the first probe's follow-up, and the
    timed quit. Call before the event loop starts (the first probe is still to come)."""
    outcome = Outcome()
    if args.train:
        _script_training(window, args)
    elif args.screenshot or args.token is not None or args.layer or args.mask_token is not None:
        _script_first_probe(window, args, outcome)
    quit_after = quit_after_ms(args)
    if quit_after > 0:
        QTimer.singleShot(quit_after, window.close_unattended)
    return outcome


def shoot(window: MainWindow, path: Path) -> None:
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


def _script_training(window: MainWindow, args: argparse.Namespace) -> None:
    """``--train``: start a run from the Train tab's form, and with ``--screenshot`` save the
    screen when the last run reaches ``--screenshot-at`` (or when every run ended), then close
    (a run still going is stopped: it saves a checkpoint)."""
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

    def shoot_once() -> None:
        if done["shot"]:
            return
        done["shot"] = True
        shoot(window, args.screenshot)
        window.close_unattended()

    state = train.train_state

    def on_event(_record, event: ProgressEvent) -> None:
        if args.screenshot_at is None or event.kind != "step":
            return
        started = [r for s in state.sessions for r in s.records if r.status != RunStatus.NEW]
        if len(started) == wanted and event.step / (event.total_steps or 1) >= args.screenshot_at:
            QTimer.singleShot(RUN_SETTLE_MS, shoot_once)

    def on_ended(_record, _status: RunStatus, _message: str) -> None:
        if not state.running and not any(
            r.status == RunStatus.NEW for s in state.sessions for r in s.records
        ):
            QTimer.singleShot(RUN_SETTLE_MS, shoot_once)

    state.event_received.connect(on_event)
    state.run_ended.connect(on_ended)


def _script_first_probe(window: MainWindow, args: argparse.Namespace, outcome: Outcome) -> None:
    """After the first probe: select token/layer/head, mask a token, then save a screenshot."""
    done = {"probed": False}

    def shoot_and_close() -> None:
        shoot(window, args.screenshot)
        window.close()

    def fail(what: str, message: str) -> None:
        """Nobody is there to read a dialog: the reason goes to stderr, the exit status is 1."""
        if done["probed"]:
            return
        done["probed"] = True
        line = message if what in message else f"{what}: {message}"
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
        outcome.failed = True
        window.close()

    if args.screenshot:  # instead of the modal "Cannot open model" dialog
        window.dialogs = False
        window.state.load_failed.connect(lambda source, message: fail(source, message))
        window.state.probe_failed.connect(lambda message: fail("probe", message))

    def on_probed(_analysis) -> None:
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
            session = window.compare.session
            if session.bundle is not None:
                QTimer.singleShot(SETTLE_MS, shoot_and_close)
            else:  # wait for both models' probe
                session.probed.connect(lambda _b: QTimer.singleShot(SETTLE_MS, shoot_and_close))
        elif args.screenshot:
            QTimer.singleShot(SETTLE_MS, shoot_and_close)

    window.state.probed.connect(on_probed)
