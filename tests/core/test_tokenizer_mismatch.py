"""A tokenizer that does not fit the model's embeddings (another model's: more tokens than rows,
special-token ids outside them, a pad id other than ``pad_token_id``) is refused in one line
naming both figures, unless ``allow_tokenizer_mismatch`` (``--allow-tokenizer-mismatch``), which
loads with a warning on the :class:`LoadedModel`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import CheckpointError, load_model
from core.cli import main
from tests.tiny_models import engine_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return engine_checkpoint(tmp_path_factory.mktemp("mismatch") / "bert", tiny_config("bert"))


def copy_with(src: Path, dst: Path, tokenizer=None, config=None) -> Path:
    """``src`` copied to ``dst``, its tokenizer.json / config.json dicts changed in place."""
    shutil.copytree(src, dst)
    for name, change in (("tokenizer.json", tokenizer), ("config.json", config)):
        if change is not None:
            data = json.loads((dst / name).read_text())
            change(data)
            (dst / name).write_text(json.dumps(data))
    return dst


def more_tokens(n: int):
    def change(data: dict) -> None:
        vocab = data["model"]["vocab"]
        for i in range(len(vocab), n):
            vocab[f"extra{i}"] = i

    return change


def test_a_larger_vocabulary_is_refused_naming_both_sizes(tmp_path, bert_folder):
    folder = copy_with(bert_folder, tmp_path / "big", tokenizer=more_tokens(300))
    with pytest.raises(CheckpointError) as err:
        load_model(folder)
    message = str(err.value)
    assert "\n" not in message
    assert "tokenizer.json has 300 tokens but the model's embeddings have 99 rows" in message
    assert "--allow-tokenizer-mismatch" in message
    loaded = load_model(folder, allow_tokenizer_mismatch=True)
    (warning,) = loaded.warnings
    assert "300 tokens" in warning and "99 rows" in warning
    assert loaded.tokenizer.vocab_size == 300


def test_a_pad_id_other_than_the_configs_is_refused(tmp_path, bert_folder):
    def pad_3(data: dict) -> None:
        data["pad_token_id"] = 3

    folder = copy_with(bert_folder, tmp_path / "pad", config=pad_3)
    with pytest.raises(CheckpointError, match=r"pad token '\[PAD\]' is id 0 but config.json has "
                       r"pad_token_id 3"):  # fmt: skip
        load_model(folder)
    assert load_model(folder, allow_tokenizer_mismatch=True).warnings


def test_a_special_token_outside_the_embeddings_is_refused(tmp_path, bert_folder):
    folder = copy_with(bert_folder, tmp_path / "mask")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["mask_token"] = "[MASK2]"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))

    def add_mask(data: dict) -> None:
        data["added_tokens"].append(
            {"id": 99, "content": "[MASK2]", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
        )  # fmt: skip

    tok = json.loads((folder / "tokenizer.json").read_text())
    add_mask(tok)
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(CheckpointError, match=r"mask token '\[MASK2\]' is id 99, outside the "
                       r"embeddings' 99 rows"):  # fmt: skip
        load_model(folder)


def test_fewer_tokens_than_rows_and_the_demo_models_load_without_warnings(tmp_path):
    # A vocabulary padded to more rows than the tokenizer has is common and fine.
    padded = engine_checkpoint(tmp_path / "padded", tiny_config("bert", vocab_size=99))
    data = json.loads((padded / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if i < 90}
    (padded / "tokenizer.json").write_text(json.dumps(data))
    assert load_model(padded).warnings == ()
    for name in ("bert-mini", "albert-mini"):
        assert load_model(ROOT / "resources" / "models" / name).warnings == ()


def test_cli_refuses_unless_asked_and_then_prints_the_warning(tmp_path, bert_folder, capsys):
    folder = copy_with(bert_folder, tmp_path / "big", tokenizer=more_tokens(300))
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "300 tokens" in err and "99 rows" in err
    assert main(["info", str(folder), "--allow-tokenizer-mismatch"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: ") and "300 tokens" in captured.err
    assert main(["probe", str(folder), "the [MASK] was", "--allow-tokenizer-mismatch"]) == 0
    assert "warning: " in capsys.readouterr().err
