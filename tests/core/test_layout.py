"""The design card: core/ is Qt-free (and never imports transformers), the layout exists."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "transformers")


def test_layout():
    for name in (
        "app",
        "core",
        "resources",
        "tests",
        "benchmarks",
        "main.py",
        "pyproject.toml",
        "README.md",
        ".ci/run",
    ):
        assert (ROOT / name).exists(), name


def test_core_sources_import_no_qt():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in BANNED
            ]
    assert offenders == []


def test_importing_core_loads_no_qt():
    code = f"import sys, core, core.cli; print([m for m in {BANNED!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stderr
