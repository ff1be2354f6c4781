"""Checkpoint formats and key layouts the loader accepts, and the specific message for each
kind of bad input."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from core import CheckpointError, InputError, TokenizerError, load_model, loaded_model, save_model
from core.config import Heads, preset
from core.hf_checkpoint import (
    atomic_folder,
    engine_shapes,
    hf_to_engine,
    peek_weights,
    read_weights,
)
from core.loaded_model import build_model, check_fits
from tests.tiny_models import engine_checkpoint, tiny_config, vocab_folder

TEXT = "the king saw the light of the city ."


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return engine_checkpoint(tmp_path_factory.mktemp("bert") / "bert", tiny_config("bert"))


@pytest.fixture(scope="module")
def reference_output(bert_folder):
    return load_model(bert_folder)(TEXT)


def rewrite(src, dst, transform) -> None:
    """Copy a checkpoint, passing its tensors through ``transform``."""
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    (dst / "model.safetensors").unlink()
    result = transform(tensors)
    if result is not None:
        save_file(result, str(dst / "model.safetensors"))


def assert_same_output(folder, reference_output) -> None:
    out = load_model(folder)(TEXT)
    for a, b in zip(out.hidden_states, reference_output.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.mlm_logits, reference_output.mlm_logits, atol=1e-5, rtol=0)


def test_unprefixed_keys_and_tf_gamma_beta(tmp_path, bert_folder, reference_output):
    def old_names(t):
        out = {}
        for k, v in t.items():
            k = k.removeprefix("bert.")
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta"
            )
            out[k] = v
        return out

    rewrite(bert_folder, tmp_path / "old", old_names)
    assert_same_output(tmp_path / "old", reference_output)


def test_tied_decoder_present_in_file(tmp_path, bert_folder, reference_output):
    def with_decoder(t):
        t["cls.predictions.decoder.weight"] = t["bert.embeddings.word_embeddings.weight"].clone()
        t["cls.predictions.decoder.bias"] = t["cls.predictions.bias"].clone()
        return t

    rewrite(bert_folder, tmp_path / "tied", with_decoder)
    assert_same_output(tmp_path / "tied", reference_output)


def test_pytorch_bin_and_sharded_safetensors(tmp_path, bert_folder, reference_output):
    rewrite(
        bert_folder,
        tmp_path / "bin",
        lambda t: torch.save(t, tmp_path / "bin" / "pytorch_model.bin"),
    )
    assert_same_output(tmp_path / "bin", reference_output)

    def shard(t):
        keys = sorted(t)
        half = len(keys) // 2
        parts = {
            "model-00001-of-00002.safetensors": keys[:half],
            "model-00002-of-00002.safetensors": keys[half:],
        }
        weight_map = {}
        for name, part in parts.items():
            save_file({k: t[k] for k in part}, str(tmp_path / "sharded" / name))
            weight_map.update(dict.fromkeys(part, name))
        (tmp_path / "sharded" / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )

    rewrite(bert_folder, tmp_path / "sharded", shard)
    assert_same_output(tmp_path / "sharded", reference_output)


def test_vocab_txt_only(tmp_path, bert_folder, reference_output):
    shutil.copytree(bert_folder, tmp_path / "vocab")
    (tmp_path / "vocab" / "tokenizer.json").unlink()
    shutil.copy(vocab_folder(bert_folder) / "vocab.txt", tmp_path / "vocab" / "vocab.txt")
    assert_same_output(tmp_path / "vocab", reference_output)


def test_tokenizer_json_padding_is_ignored_for_single_sentences(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "pad")
    data = json.loads((tmp_path / "pad" / "tokenizer.json").read_text())
    data["padding"] = {
        "strategy": {"Fixed": 32},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
    (tmp_path / "pad" / "tokenizer.json").write_text(json.dumps(data))
    encoded = load_model(tmp_path / "pad").encode("the king")
    assert encoded.tokens == ["[CLS]", "the", "king", "[SEP]"]


def test_cased_vocab_keeps_case(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "cased")
    (tmp_path / "cased" / "tokenizer.json").unlink()
    vocab = (vocab_folder(bert_folder) / "vocab.txt").read_text().replace("\nking\n", "\nKing\n")
    (tmp_path / "cased" / "vocab.txt").write_text(vocab)
    (tmp_path / "cased" / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    encoded = load_model(tmp_path / "cased").encode("King king")
    assert encoded.tokens[1] == "King"
    assert encoded.tokens[2] != "king"  # lower-case 'king' is no longer a whole word


def test_sentence_pair_segments_and_offsets(bert_folder):
    encoded = load_model(bert_folder).encode("the king", "the city")
    assert encoded.tokens == ["[CLS]", "the", "king", "[SEP]", "the", "city", "[SEP]"]
    assert encoded.token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert encoded.offsets[2] == (4, 8)
    assert encoded.special_tokens_mask == [1, 0, 0, 1, 0, 0, 1]


# -- bad input: one clear message each ------------------------------------------------------
def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such folder"):
        load_model(tmp_path / "nope")


def test_missing_config_and_weights(tmp_path, bert_folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_model(tmp_path / "empty")
    shutil.copytree(bert_folder, tmp_path / "noweights")
    (tmp_path / "noweights" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights found"):
        load_model(tmp_path / "noweights")


def test_missing_tokenizer(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "notok")
    (tmp_path / "notok" / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError, match="no tokenizer found"):
        load_model(tmp_path / "notok")


def test_malformed_config(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="malformed JSON"):
        load_model(tmp_path / "bad")


def test_unknown_model_type(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "gpt")
    data = json.loads((tmp_path / "gpt" / "config.json").read_text())
    data["model_type"] = "gpt2"
    (tmp_path / "gpt" / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="unknown model_type 'gpt2'"):
        load_model(tmp_path / "gpt")


def test_shapes_disagree_with_config_names_the_keys(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "shape")
    data = json.loads((tmp_path / "shape" / "config.json").read_text())
    data["intermediate_size"] = 40
    (tmp_path / "shape" / "config.json").write_text(json.dumps(data))
    with pytest.raises(
        CheckpointError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight \(37, 32\)"
    ):
        load_model(tmp_path / "shape")


def test_missing_weights_named(tmp_path, bert_folder):
    rewrite(
        bert_folder,
        tmp_path / "partial",
        lambda t: {k: v for k, v in t.items() if "layer.1.output.dense" not in k},
    )
    with pytest.raises(CheckpointError, match=r"missing weights: encoder\.layer\.1\.output\.dense"):
        load_model(tmp_path / "partial")


def test_truncated_safetensors(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "cut")
    path = tmp_path / "cut" / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated safetensors"):
        load_model(tmp_path / "cut")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "evil")
    (tmp_path / "evil" / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil" / "pytorch_model.bin", "wb") as f:
        pickle.dump({"embeddings.word_embeddings.weight": _Exploit(marker)}, f)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_model(tmp_path / "evil")
    assert not marker.exists()


def test_empty_text(bert_folder):
    loaded = load_model(bert_folder)
    with pytest.raises(InputError, match="empty text"):
        loaded.encode("   ")


def test_long_text_is_truncated_and_says_so(bert_folder):
    loaded = load_model(bert_folder)
    encoded = loaded.encode("the king " * 200)
    assert encoded.truncated
    assert len(encoded) == loaded.config.max_position_embeddings
    assert encoded.tokens[-1] == "[SEP]"
    out = loaded.run(encoded)
    assert out.hidden_states[-1].shape == (1, 64, 32)
    assert not loaded.encode("the king").truncated


def test_failed_save_keeps_the_good_checkpoint(tmp_path, bert_folder, reference_output):
    target = tmp_path / "target"
    shutil.copytree(bert_folder, target)

    def crash(folder):
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(CheckpointError) as caught:
        atomic_folder(target, crash)
    assert str(caught.value) == f"could not write {target}: disk full"  # one line, no traceback
    assert_same_output(target, reference_output)
    assert [p.name for p in tmp_path.iterdir()] == ["target"]  # no temporary folder left


def test_save_overwrites_atomically(tmp_path, bert_folder, reference_output):
    loaded = load_model(bert_folder)
    save_model(loaded, tmp_path / "out")
    save_model(loaded, tmp_path / "out")
    assert_same_output(tmp_path / "out", reference_output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_saved_folder_has_ordinary_permissions(tmp_path, bert_folder):
    old = os.umask(0o022)
    try:
        save_model(load_model(bert_folder), tmp_path / "perm")
    finally:
        os.umask(old)
    assert (tmp_path / "perm").stat().st_mode & 0o777 == 0o755


def test_saved_files_respect_the_umask(tmp_path, bert_folder):
    old = os.umask(0o022)
    try:
        save_model(load_model(bert_folder), tmp_path / "perm")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "perm").iterdir()}
    assert "model.safetensors" in modes
    assert modes == dict.fromkeys(modes, 0o644)
    old = os.umask(0o077)
    try:
        save_model(load_model(bert_folder), tmp_path / "private")
    finally:
        os.umask(old)
    private = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "private").iterdir()}
    assert private == dict.fromkeys(modes, 0o600)


# -- checked before anything is allocated ---------------------------------------------------------
def _no_tensor_reads(monkeypatch):
    """Make reading tensor data fail: a check that passes never got that far."""

    def refuse(folder):
        raise AssertionError("tensor data was read before the checks")

    monkeypatch.setattr(loaded_model, "read_weights", refuse)


def with_config(src, dst, **changes):
    shutil.copytree(src, dst)
    data = json.loads((dst / "config.json").read_text())
    data.update(changes)
    (dst / "config.json").write_text(json.dumps(data))
    return dst


def test_config_disagreeing_with_the_header_is_refused_without_reading_tensors(
    tmp_path, bert_folder, monkeypatch
):
    folder = with_config(bert_folder, tmp_path / "wide", hidden_size=10**6)
    _no_tensor_reads(monkeypatch)
    with pytest.raises(
        CheckpointError,
        match=r"weight shapes disagree with config\.json: embeddings\.word_embeddings\.weight "
        r"\(99, 32\) \(config expects \(99, 1000000\)\)",
    ):
        load_model(folder)


def test_pytorch_bin_disagreeing_with_config_names_the_key(tmp_path, bert_folder):
    shutil.copytree(bert_folder, tmp_path / "bin")
    tensors = load_file(str(tmp_path / "bin" / "model.safetensors"))
    (tmp_path / "bin" / "model.safetensors").unlink()
    torch.save(tensors, tmp_path / "bin" / "pytorch_model.bin")
    with_config(tmp_path / "bin", tmp_path / "bin-long", max_position_embeddings=80)
    with pytest.raises(
        CheckpointError,
        match=r"embeddings\.position_embeddings\.weight \(64, 32\) \(config expects \(80, 32\)\)",
    ):
        load_model(tmp_path / "bin-long")


def test_fused_qkv_shapes_from_the_header(bert_folder):
    config = load_model(bert_folder).config
    raw, tensors, file_bytes = peek_weights(bert_folder)
    assert tensors is None
    assert file_bytes == (bert_folder / "model.safetensors").stat().st_size
    shapes = engine_shapes(raw, config)
    H = config.hidden_size
    assert raw["bert.encoder.layer.0.attention.self.query.weight"] == (H, H)
    assert shapes["encoder.layer.0.attention.qkv.weight"] == (3 * H, H)
    assert shapes["encoder.layer.0.attention.qkv.bias"] == (3 * H,)
    state = hf_to_engine(read_weights(bert_folder), config)
    assert shapes == {k: tuple(v.shape) for k, v in state.items()}


def test_absurd_config_is_refused_in_one_line_without_allocating():
    config = preset("bert-base", hidden_size=10**6, num_attention_heads=8)
    with pytest.raises(CheckpointError) as info:
        check_fits(config, "cpu")
    message = str(info.value)
    assert "\n" not in message
    with torch.device("meta"):
        n = sum(p.numel() for p in build_model(config).parameters())
    assert f"{n:,} parameters x 4 bytes" in message
    assert re.search(
        r"needs about [\d,.]+ TB .* but only [\d,.]+ [KMGT]?B of RAM is available", message
    )


def test_check_fits_counts_parameters_times_bytes(bert_folder):
    loaded = load_model(bert_folder)
    n = sum(p.numel() for p in loaded.model.parameters())
    assert check_fits(loaded.config, "cpu") == 4 * n
    assert check_fits(loaded.config, "cpu", dtype=torch.bfloat16) == 2 * n
    encoder_only = Heads(pooler=True)
    with torch.device("meta"):
        bare = sum(p.numel() for p in build_model(loaded.config, encoder_only).parameters())
    assert check_fits(loaded.config, "cpu", heads=encoder_only) == 4 * bare < 4 * n


def test_load_refused_when_memory_is_short(bert_folder, monkeypatch):
    n = sum(p.numel() for p in load_model(bert_folder).model.parameters())
    file_bytes = (bert_folder / "model.safetensors").stat().st_size
    monkeypatch.setattr(loaded_model, "available_memory", lambda device: 4 * n + file_bytes - 1)
    real_read = loaded_model.read_weights
    _no_tensor_reads(monkeypatch)
    with pytest.raises(
        CheckpointError, match=rf"{n:,} parameters x 4 bytes \+ .* of weights read\) but only"
    ):
        load_model(bert_folder)
    monkeypatch.setattr(loaded_model, "read_weights", real_read)
    monkeypatch.setattr(loaded_model, "available_memory", lambda device: 4 * n + file_bytes)
    assert load_model(bert_folder)(TEXT).mlm_logits.shape[-1] == 99


def test_cuda_target_is_checked_against_gpu_memory_too(monkeypatch):
    """RAM holds the model while it is built; the GPU must hold it after the move. (The free
    figures are stubbed: this runs without a GPU.)"""
    config = tiny_config("bert")
    with torch.device("meta"):
        model = build_model(config)
    n = sum(p.numel() for p in model.parameters())
    free = {"cpu": 10**12, "cuda": 4 * n - 1}
    monkeypatch.setattr(loaded_model, "available_memory", lambda device: free[device.type])
    assert loaded_model._check_fits(model, torch.device("cpu"), torch.float32, "m") == 4 * n
    with pytest.raises(CheckpointError, match=r"^m: .* but only .* of cuda:0 memory is available$"):
        loaded_model._check_fits(model, torch.device("cuda:0"), torch.float32, "m")
    assert loaded_model._check_fits(model, torch.device("cuda:0"), torch.float16, "m") == 2 * n
