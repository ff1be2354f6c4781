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


# Views render; states and sessions compute. What a view may take from core at run time: its
# types, its setting checks' errors and text formatting; never an analysis, cost or model call.
NOT_VIEWS = {
    "__init__.py", "state.py", "session.py", "calculator_session.py", "calls.py",
    "settings.py", "runner.py", "event_stream.py", "follower.py", "outcome.py", "history.py",
    "series.py", "run_folder.py",
}  # fmt: skip
VIEW_CORE_IMPORTS = {
    "core.errors", "core.choices", "core.timefmt", "core.training", "core.training.config",
    "core.training.run_status", "core.training.events",
}  # fmt: skip
JOB_CALLS = {"submit", "submit_latest", "invalidate"}


def _view_offences(root: Path) -> list[str]:
    """Run-time core imports outside the allowed types, and engine calls, in every view file."""
    offences = []
    for tab in ("probe", "compare", "train", "models"):
        for path in sorted((root / "app" / tab).glob("*.py")):
            if path.name in NOT_VIEWS:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            typing_only = {
                id(n)
                for block in ast.walk(tree)
                if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                for n in ast.walk(block)
            }
            for node in ast.walk(tree):
                name = f"{tab}/{path.name}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.ImportFrom) and id(node) not in typing_only:
                    module = node.module or ""
                    if module.split(".")[0] == "core" and module not in VIEW_CORE_IMPORTS:
                        offences.append(f"{name} imports {module}")
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in JOB_CALLS
                ):
                    offences.append(f"{name} calls .{node.func.attr}()")
    return offences


def test_views_neither_call_core_nor_submit_jobs():
    assert _view_offences(ROOT) == []


def test_the_view_checker_sees_a_core_call_and_a_job(tmp_path):
    (tmp_path / "app" / "probe").mkdir(parents=True)
    (tmp_path / "app" / "probe" / "bad_view.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from core.analysis.summary import ProbeAnalysis\n"
        "def draw(state):\n"
        "    from core.analysis.words import word_guesses\n"
        "    state.engine.submit_latest('probe', word_guesses)\n"
    )
    assert _view_offences(tmp_path) == [
        "probe/bad_view.py:5 imports core.analysis.words",
        "probe/bad_view.py:6 calls .submit_latest()",
    ]
