"""``import core`` and the modules the window needs for types and settings load no torch; the
package re-exports still resolve (lazily, PEP 562) to the objects their modules define."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import core
import core.training

ROOT = Path(__file__).resolve().parents[2]

TORCH_FREE = (
    "core",
    "core.errors",
    "core.config",
    "core.atomic",
    "core.choices",
    "core.output_paths",
    "core.report",
    "core.training",
    "core.training.config",
    "core.training.events",
    "core.training.run_status",
    "core.timefmt",
    "core.analysis",
    "core.analysis.probe",
    "core.analysis.summary",
    "core.analysis.attention",
    "core.analysis.hidden_states",
    "core.analysis.words",
    "core.analysis.side_by_side",
    "core.cost",
    "core.cost.settings",
    "core.cost.params",
    "core.cost.flops",
    "core.cost.memory",
    "core.cost.compare",
    "core.cost.calculator",
    "core.cost.tradeoff",
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_the_window_s_modules_import_and_check_settings_without_torch():
    code = (
        f"import {', '.join(TORCH_FREE)}\n"
        "from core.training.config import TrainConfig\n"
        "from core.cost.settings import check_settings\n"
        "TrainConfig(arch='albert', steps=10, precision='bf16', optimizer='lamb')\n"
        "check_settings(8, 128, 'fp16', 'adamw')\n"
        "import sys\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr


def test_from_core_import_load_model_resolves_lazily():
    code = (
        "import sys, core\n"
        "assert 'torch' not in sys.modules and 'load_model' in dir(core)\n"
        "from core import load_model\n"
        "import core.loaded_model\n"
        "assert load_model is core.loaded_model.load_model and 'torch' in sys.modules\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("package", [core, core.training], ids=lambda p: p.__name__)
def test_every_re_export_resolves_and_unknown_names_fail(package):
    for name in package.__all__:
        value = getattr(package, name)
        home = importlib.import_module(getattr(value, "__module__", None) or package.__name__)
        assert getattr(home, name, value) is value, name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def test_moved_names_keep_their_old_homes():
    from core.precision import PRECISION_CHOICES, PRECISIONS
    from core.training import events, optim, trainer
    from core.training.config import SAVE_DTYPE_NAMES, SAVE_DTYPES

    assert (trainer.EvalMetrics, trainer.ProgressEvent, trainer.TrainResult) == (
        events.EvalMetrics,
        events.ProgressEvent,
        events.TrainResult,
    )
    assert tuple(SAVE_DTYPES) == SAVE_DTYPE_NAMES and SAVE_DTYPES["float32"] is None
    assert tuple(PRECISIONS) == ("fp32", "bf16", "fp16")
    assert ("auto", *PRECISIONS) == PRECISION_CHOICES
    assert optim.OPTIMIZERS == core.training.OPTIMIZERS == ("adamw", "lamb")
