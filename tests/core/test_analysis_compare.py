"""Model comparison: parameter breakdown, memory model against measurement, FLOPs against
PyTorch's FLOP counter, the ``compare`` and ``memory`` commands and their exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from core import build_model, load_model, preset
from core.cli import main
from core.config import Heads
from core.cost.compare import compare
from core.cost.flops import flops_per_token
from core.cost.measure import (
    masked_count,
    measure_inference_memory,
    measure_latency,
    measure_training_memory,
    synthetic_batch,
)
from core.cost.memory import inference_memory, training_memory
from core.cost.params import COMPONENTS, count_parameters, evaluate_formula, param_report
from core.errors import InputError
from core.export import load_csv, load_json, save_csv, save_json, tidy_rows
from tests.tiny_models import engine_checkpoint, tiny_config

ALBERT_GROUPS = dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    return (
        engine_checkpoint(root / "bert", tiny_config("bert"), seed=1),
        engine_checkpoint(root / "albert", tiny_config("albert", **ALBERT_GROUPS), seed=2),
    )


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        tiny_config("bert"),
        tiny_config("albert", **ALBERT_GROUPS),
        tiny_config("albert", num_hidden_layers=3, num_hidden_groups=3).with_sharing("ffn"),
        tiny_config("albert", num_hidden_layers=3, num_hidden_groups=3).with_sharing("attention"),
        preset("bert-base"),
        preset("albert-base"),
    ],
    ids=["bert", "albert-groups", "albert-ffn", "albert-attention", "bert-base", "albert-base"],
)
@pytest.mark.parametrize("heads", [None, Heads(pooler=True), Heads()])
def test_breakdown_sums_to_total_and_matches_engine(config, heads):
    with torch.device("meta"):
        model = build_model(config, heads)
    report = param_report(model, "m")
    engine = count_parameters(model)
    assert report.total_unique == sum(c.unique for c in report.components)
    assert report.total_unique == engine.total_unique == sum(p.numel() for p in model.parameters())
    assert report.total_effective == engine.total_effective
    for c in report.components:
        assert (c.unique, c.effective) == (
            engine.unique[c.component],
            engine.effective[c.component],
        )
        assert evaluate_formula(c.formula, report.symbols) == c.unique, c.component
    assert sum(c.share_unique for c in report.components) == pytest.approx(1.0)


def test_breakdown_matches_params_command(capsys):
    assert main(["params", "--preset", "albert-base", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["parameters"]
    report = param_report(preset("albert-base"))
    assert cli["total_unique"] == report.total_unique
    for comp in COMPONENTS:
        assert cli["components"][comp]["unique"] == report.component(comp).unique
        assert cli["components"][comp]["effective"] == report.component(comp).effective
    # ALBERT's factorized embedding: V x E + E x H (+ positions, segments), Lan et al. 3.2
    assert report.component("embeddings").unique == (30000 + 512 + 2) * 128
    assert report.component("embedding projection").unique == 128 * 768 + 768


# -- memory model ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bert-base", "albert-base", "bert-tiny"])
@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_weights_grads_and_optimizer_states_are_16_bytes_per_parameter(name, optimizer, device):
    n = param_report(preset(name)).total_unique
    for precision in ("fp32", "bf16"):
        est = training_memory(preset(name), 8, 128, precision, optimizer, device)
        state = est.get("weights") + est.get("gradients") + est.get("optimizer states")
        assert state == 16 * n
        assert est.get("autocast weight copies") == (
            0 if precision == "fp32" else est.get("autocast weight copies")
        )
    assert est.get("autocast weight copies") > 0


def test_attention_maps_only_with_a_materializing_kernel():
    bert = preset("bert-tiny")  # attention dropout 0.1: the CPU math path keeps 3 maps
    cpu = training_memory(bert, 8, 128, "fp32", "adamw", "cpu")
    assert cpu.attention_kernel == "materialized"
    maps = 2 * 3 * 8 * 2 * 128 * 128 * 4  # L·3·B·A·T²·4: probabilities, mask, dropped
    assert cpu.get("activations: attention maps") == maps
    cuda = training_memory(bert, 8, 128, "fp32", "adamw", "cuda")
    assert cuda.attention_kernel == "fused" and cuda.get("activations: attention maps") == 0
    inf = inference_memory(bert, 1, 32, "fp32", True, "cpu")
    assert inf.get("activations: attention maps") == 2 * 1 * 2 * 32 * 32 * 4


@pytest.mark.parametrize(
    ("model_type", "precision", "batch", "seq"),
    [
        ("bert", "fp32", 4, 32),
        ("albert", "fp32", 4, 32),
        ("bert", "bf16", 2, 16),
        ("albert", "bf16", 2, 16),
        ("bert", "fp32", 1, 8),
    ],
)
def test_memory_model_agrees_with_measurement(model_type, precision, batch, seq):
    config = tiny_config(model_type, **(ALBERT_GROUPS if model_type == "albert" else {}))
    for optimizer in ("adamw", "lamb"):
        est = training_memory(config, batch, seq, precision, optimizer, "cpu")
        got = measure_training_memory(config, batch, seq, precision, optimizer, "cpu")
        assert got.weights == est.get("weights") and got.gradients == est.get("gradients")
        assert got.optimizer_states == est.get("optimizer states")
        assert est.total == pytest.approx(got.peak, rel=0.05)
    est = inference_memory(config, batch, seq, precision, True, "cpu")
    got = measure_inference_memory(config, batch, seq, precision, True, "cpu")
    assert est.total == pytest.approx(got.peak, rel=0.05)


def test_fp32_activation_model_equals_saved_tensors():
    config = tiny_config("bert")
    est = training_memory(config, 4, 32, "fp32", "adamw", "cpu")
    got = measure_training_memory(config, 4, 32, "fp32", "adamw", "cpu")
    logits = masked_count(4, 32) * config.vocab_size * 4  # held by the output, not saved
    assert est.get("activations total") - logits == pytest.approx(got.activations_saved, rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bert-tiny", "albert-tiny", "bert-mini", "albert-mini"])
def test_memory_model_within_15_percent_for_presets(name):
    est = training_memory(preset(name), 8, 128, "fp32", "adamw", "cpu")
    got = measure_training_memory(preset(name), 8, 128, "fp32", "adamw", "cpu")
    assert abs(est.total / got.peak - 1) < 0.15


# -- FLOPs and latency -----------------------------------------------------------------------
@pytest.mark.parametrize("model_type", ["bert", "albert"])
def test_forward_flops_match_pytorch_flop_counter(model_type):
    config = tiny_config(model_type, **(ALBERT_GROUPS if model_type == "albert" else {}))
    torch.manual_seed(0)
    model = build_model(config).eval()
    B, T = 2, 16
    data = synthetic_batch(config, B, T, torch.device("cpu"))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        # output_attentions: explicit QK^T and AV matmuls, which the counter sees
        model(
            data.input_ids,
            token_type_ids=data.token_type_ids,
            output_attentions=True,
            mlm_positions=data.mlm_positions,
        )
    est = flops_per_token(config, T, mlm_fraction=masked_count(B, T) / (B * T))
    assert est.forward_per_token * B * T == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert est.training_per_token == 3 * est.forward_per_token


def test_albert_sharing_saves_parameters_not_flops():
    albert = preset("albert-base")
    unshared = albert.with_sharing("none")
    assert flops_per_token(albert).forward_per_token == flops_per_token(unshared).forward_per_token
    assert param_report(albert).total_unique < param_report(unshared).total_unique / 5


def test_latency_is_measured():
    config = tiny_config("bert")
    model = build_model(config)
    lat = measure_latency(model, 2, 8, runs=3)
    assert lat.runs == 3 and lat.min_ms <= lat.median_ms
    assert lat.tokens_per_s == pytest.approx(16 / (lat.median_ms / 1e3))
    with pytest.raises(InputError):
        measure_latency(model, 2, 65)  # longer than the positions


# -- compare and the CLI ---------------------------------------------------------------------
def test_compare_and_export_round_trip(folders, tmp_path):
    a, b = (load_model(f, device="cpu") for f in folders)
    c = compare(a, b, "the king went to the city .", batch=2, seq=16, runs=1)
    assert c.a.params.total_unique == count_parameters(a.model).total_unique
    assert c.b.layers.l2_mean.shape == (8,) and c.a.layers.l2_mean.shape == (2,)  # 4 x 2 inner
    assert c.a.memory_training.total == pytest.approx(c.a.measured_training.peak, rel=0.05)
    assert c.b.latency.median_ms > 0
    y, meta = load_json(save_json(c, tmp_path / "c.json", {"note": "x"}))
    assert meta == {"note": "x"}
    assert y.b.memory_training == c.b.memory_training and y.a.params == c.a.params
    np.testing.assert_array_equal(y.b.layers.cosine, c.b.layers.cosine)
    rows = tidy_rows(c)
    assert load_csv(save_csv(c, tmp_path / "c.csv")) == rows
    params = [r for r in rows if r["table"] == "params" and r["model"] == "albert"]
    assert {r["component"] for r in params} == {*COMPONENTS, "total"}
    assert all(r["batch"] == 2 and r["precision"] == "fp32" for r in rows)


def test_compare_command(folders, tmp_path, capsys):
    out = tmp_path / "c.json"
    argv = [
        "compare",
        str(folders[0]),
        str(folders[1]),
        "the king went",
        "--batch",
        "2",
        "--seq",
        "16",
        "--runs",
        "1",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "embedding projection" in text and "peak (measured)" in text
    assert "7->8" in text and "tokens / s" in text
    result, _ = load_json(out)
    assert result.seq == 16 and result.a.name == "bert"
    assert main(["compare", str(folders[0]), str(folders[1]), "x", "--seq", "65"]) == 2


def test_memory_command(folders, capsys, tmp_path):
    assert (
        main(
            [
                "memory",
                "--preset",
                "albert-base",
                "--precision",
                "bf16",
                "--kernels",
                "cuda",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [d["result"]["mode"] for d in data] == ["training", "inference"]
    est = training_memory(preset("albert-base"), 8, 128, "bf16", "adamw", "cuda")
    assert data[0]["result"]["total"] == est.total
    assert (
        main(
            [
                "memory",
                str(folders[1]),
                "--batch",
                "2",
                "--seq",
                "16",
                "--measure",
                "--mode",
                "training",
                "--optimizer",
                "lamb",
                "--csv",
                str(tmp_path / "m.csv"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "measured peak" in text and "LAMB" in text and "Np·2·4" in text
    assert any(r["table"] == "measured_memory" for r in load_csv(tmp_path / "m.csv"))
    assert main(["memory"]) == 2
    assert main(["memory", "--preset", "bert-tiny", "--seq", "1000"]) == 2
