"""``core.export.write``: one writer, the format by suffix, and one line for a suffix a result
has no format for (before any work, in the CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.analysis.summary import analyze
from core.cli import main
from core.config import preset
from core.cost.params import param_report
from core.errors import InputError
from core.export import load_csv, load_json, tidy_rows, write
from core.loaded_model import load_model
from tests.tiny_models import engine_checkpoint, tiny_config

TEXT = "the king [MASK] to the city ."


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "bert", tiny_config("bert"))
    return analyze(load_model(folder, device="cpu"), TEXT, "he went")


def test_the_suffix_picks_the_format(analysis, tmp_path):
    meta = {"model": "bert", "text": TEXT}
    again, meta_back = load_json(write(analysis, tmp_path / "a.json", meta))
    np.testing.assert_array_equal(again.result.attentions, analysis.result.attentions)
    assert meta_back == meta
    assert load_csv(write(analysis, tmp_path / "a.CSV", meta)) == tidy_rows(analysis, meta)
    with np.load(write(analysis, tmp_path / "a.npz")) as npz:
        assert list(npz.files) == list(analysis.arrays())
        assert list(npz["tokens"]) == analysis.result.token_strings
    flat = json.loads(write(analysis.arrays(), tmp_path / "arrays.json").read_text())
    assert flat["tokens"] == analysis.result.token_strings and flat["truncated"] is False
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("name", "given"), [("a.txt", "unknown suffix '.txt'"), ("a", "no suffix")]
)
def test_an_unknown_suffix_is_one_line_naming_the_allowed_ones(analysis, tmp_path, name, given):
    with pytest.raises(InputError) as err:
        write(analysis, tmp_path / name)
    assert str(err.value) == f"{tmp_path / name}: {given}; choose .json, .csv or .npz"
    with pytest.raises(InputError, match=r"'\.npz'; choose \.json or \.csv$"):
        write(param_report(preset("bert-mini"), "bert-mini"), tmp_path / "p.npz")
    assert list(tmp_path.iterdir()) == []


def test_probe_out_refuses_a_suffix_before_loading_the_model(tmp_path, capsys):
    out = tmp_path / "p.txt"
    assert main(["probe", str(tmp_path / "no-model"), TEXT, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out {out}: unknown suffix '.txt'; choose .json or .npz"


def test_a_result_without_a_table_is_refused():
    with pytest.raises(TypeError, match="no tidy table for dict"):
        tidy_rows({"a": 1})
