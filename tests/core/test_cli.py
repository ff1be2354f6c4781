"""``python -m core``: exit status 0 and the promised output on success, one ``error:`` line
and a non-zero status otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from core.cli import main
from tests.tiny_models import engine_checkpoint, tiny_config


@pytest.fixture(scope="module")
def albert_folder(tmp_path_factory):
    config = tiny_config("albert", num_hidden_layers=2, inner_group_num=2)
    return engine_checkpoint(tmp_path_factory.mktemp("cli") / "albert", config)


def test_info_json(albert_folder, capsys):
    assert main(["info", str(albert_folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["heads"] == ["mlm", "pooler", "sop"]
    assert data["effective_layers"] == 4
    params = data["parameters"]
    assert params["total_unique"] == sum(c["unique"] for c in params["components"].values())
    assert (
        params["components"]["attention"]["effective"]
        == 2 * params["components"]["attention"]["unique"]
    )


def test_info_table(albert_folder, capsys):
    assert main(["info", str(albert_folder)]) == 0
    out = capsys.readouterr().out
    assert "embedding projection" in out and "heads present: mlm, pooler, sop" in out


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_probe_writes_every_layer(albert_folder, tmp_path, suffix):
    out = tmp_path / f"probe{suffix}"
    assert (
        main(
            [
                "probe",
                str(albert_folder),
                "the king [MASK] the city .",
                "--pair",
                "he went",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    if suffix == ".npz":
        data = dict(np.load(out))
        tokens = list(data["tokens"])
    else:
        data = {k: np.asarray(v) for k, v in json.loads(out.read_text()).items()}
        tokens = list(data["tokens"])
    T = len(tokens)
    assert tokens[:3] == ["[CLS]", "the", "king"] and tokens[3] == "[MASK]"
    assert data["input_ids"].shape == (T,)
    assert data["hidden_states"].shape == (5, T, 32)
    assert data["attentions"].shape == (4, 4, T, T)
    assert data["mlm_logits"].shape == (T, 99)
    np.testing.assert_allclose(data["attentions"].sum(-1), 1.0, atol=1e-5)


def test_params_paper_figure(capsys):
    assert (
        main(
            [
                "params",
                "--preset",
                "albert-base",
                "--embedding-size",
                "768",
                "--sharing",
                "ffn",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"]["backbone_unique"] == pytest.approx(57e6, rel=0.03)


def test_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "core", "info", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "no such folder" in result.stderr


def test_empty_text_error(albert_folder, tmp_path, capsys):
    assert main(["probe", str(albert_folder), "  ", "--out", str(tmp_path / "x.npz")]) == 2
    assert "error: empty text" in capsys.readouterr().err
