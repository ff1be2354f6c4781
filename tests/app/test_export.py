"""The window's File -> Export and ``bertscope-cli probe --out`` write one file format: the
same arrays, through the same writer (``core.export.write``)."""

from __future__ import annotations

import numpy as np
import pytest

from app.export import export_analysis
from core.analysis.summary import analyze
from core.cli import main
from core.errors import InputError
from core.loaded_model import load_model
from tests.tiny_models import engine_checkpoint, tiny_config

TEXT, PAIR = "the king [MASK] to the city .", "he went"


def test_window_export_and_cli_probe_write_the_same_arrays(tmp_path):
    folder = engine_checkpoint(tmp_path / "bert", tiny_config("bert"))
    cli, window = tmp_path / "cli.npz", tmp_path / "window.npz"
    argv = ["probe", str(folder), TEXT, "--pair", PAIR, "--device", "cpu", "--out", str(cli)]
    assert main(argv) == 0
    export_analysis(analyze(load_model(folder, device="cpu"), TEXT, PAIR), window)
    with np.load(cli) as a, np.load(window) as b:
        assert a.files == b.files
        assert {"tokens", "segment_ids", "attentions", "rollout", "masked_0_ids"} <= set(a.files)
        for name in a.files:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_window_export_names_the_allowed_suffixes(tmp_path):
    folder = engine_checkpoint(tmp_path / "bert", tiny_config("bert"))
    analysis = analyze(load_model(folder, device="cpu"), TEXT)
    with pytest.raises(InputError, match=r"unknown suffix '\.png'; choose \.json, \.csv or \.npz$"):
        export_analysis(analysis, tmp_path / "out.png")
