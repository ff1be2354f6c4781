"""The design card: core/ is Qt-free (and never imports transformers); app/ never imports a CLI module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "transformers")


def _imported_modules(folder: Path) -> list[tuple[str, str]]:
    """(file, module) for every import statement in the Python files under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def test_app_never_imports_a_cli_module():
    """The window calls library functions; command-line modules stay the CLI's own."""
    offenders = [
        f"{f}: {m}"
        for f, m in _imported_modules(ROOT / "app")
        if m == "core.cli" or m.startswith("core.cli.")
    ]
    assert offenders == []


def test_the_checker_sees_cli_imports(tmp_path, monkeypatch):
    """The scan above finds a CLI import when there is one (so its empty answer means something)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "bad.py").write_text("from core.cli.model_commands import run_info\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _imported_modules(tmp_path / "app") == [("app/bad.py", "core.cli.model_commands")]


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
