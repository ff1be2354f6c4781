"""The Makefile's system set-up, run against stand-in ``dpkg``/``apt-get`` (a real apt run needs
a fresh machine): what a fresh Debian needs is asked for, and a held apt lock is waited for."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_apt(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH folder whose dpkg reports every package missing and whose apt-get logs its args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir, log


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_apt_step_installs_venv_and_waits_for_the_apt_lock(fake_apt):
    bin_dir, log = fake_apt
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["make", "--no-print-directory", "apt"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    update, install = log.read_text().splitlines()
    assert update.split()[:3] == ["-o", "DPkg::Lock::Timeout=120", "update"]
    assert install.split()[:3] == ["-o", "DPkg::Lock::Timeout=120", "install"]
    packages = install.split()[install.split().index("--no-install-recommends") + 1 :]
    assert "python3-venv" in packages  # `python3 -m venv` needs it on Debian
    assert "libxcb-cursor0" in packages  # Qt's xcb platform plugin
    assert "chromium" not in packages  # `make run` needs no browser
    assert "installing the window's system libraries" in out.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_chromium_comes_only_with_make_test_named_for_its_test(fake_apt):
    """Chromium is for the HTML report's browser test: `make test` installs it (apt-test), under
    its own name, not as "Qt system libraries"."""
    bin_dir, log = fake_apt
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["make", "--no-print-directory", "apt-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    _, install = log.read_text().splitlines()
    packages = install.split()[install.split().index("--no-install-recommends") + 1 :]
    assert packages == ["chromium"]
    assert out.stdout.startswith("installing Chromium (for the HTML report test")
    assert "test_compare_exports.py" in out.stdout
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "test"], cwd=ROOT, capture_output=True, text=True
    )
    assert "chromium" in dry.stdout
    run = subprocess.run(
        ["make", "-n", "--no-print-directory", "run"], cwd=ROOT, capture_output=True, text=True
    )
    assert "chromium" not in run.stdout.lower()
