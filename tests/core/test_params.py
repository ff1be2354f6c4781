"""Parameter counts against the papers: ALBERT Table 1 and Table 4 (all ten figures), counted on
the meta device, plus the unique/effective split that cross-layer sharing creates."""

from __future__ import annotations

import pytest
import torch

from core.config import preset
from core.cost.params import COMPONENTS, count_parameters
from core.loaded_model import build_model
from tests.tiny_models import tiny_config


def backbone(name: str, **overrides) -> int:
    with torch.device("meta"):
        model = build_model(preset(name, **overrides))
    return count_parameters(model).backbone_unique


@pytest.mark.parametrize(
    ("name", "millions"),
    [
        ("bert-base", 108),
        ("bert-large", 334),
        ("albert-base", 12),
        ("albert-large", 18),
        ("albert-xlarge", 60),
    ],
)
def test_table1(name, millions):
    assert backbone(name) == pytest.approx(millions * 1e6, rel=0.03)


def test_table1_albert_xxlarge():
    """Table 1 prints 235M, but the architecture it states (H=4096, 12 layers, FFN 16384, E=128,
    all shared) has 222.6M parameters: counted by hand below, by the engine, and by transformers'
    AlbertModel, and the figure Google's released albert-xxlarge checkpoints carry (223M). We
    check the architecture's count exactly; 235M is outside 3% of any faithful implementation."""
    H, E, V, F = 4096, 128, 30000, 16384
    embeddings = (V + 512 + 2) * E + 2 * E
    projection = E * H + H
    layer = 4 * (H * H + H) + 2 * H + (H * F + F) + (F * H + H) + 2 * H
    pooler = H * H + H
    assert backbone("albert-xxlarge") == embeddings + projection + layer + pooler
    assert backbone("albert-xxlarge") == pytest.approx(223e6, rel=0.03)


@pytest.mark.parametrize(
    ("embedding", "sharing", "millions"),
    [
        (768, "all", 31),
        (768, "attention", 83),
        (768, "ffn", 57),
        (768, "none", 108),
        (128, "all", 12),
        (128, "attention", 64),
        (128, "ffn", 38),
        (128, "none", 89),
    ],
)
def test_table4_sharing_ablation(embedding, sharing, millions):
    assert backbone("albert-base", embedding_size=embedding, sharing=sharing) == pytest.approx(
        millions * 1e6, rel=0.03
    )


def test_components_sum_and_match_module_count():
    for config in (
        tiny_config("bert"),
        tiny_config("albert", num_hidden_groups=2, inner_group_num=2, num_hidden_layers=4),
    ):
        model = build_model(config)
        b = count_parameters(model)
        assert sum(b.unique[c] for c in COMPONENTS) == b.total_unique
        assert b.total_unique == sum(p.numel() for p in model.parameters())


def test_effective_counts_shared_layers_per_use():
    config = tiny_config("albert", num_hidden_layers=4, num_hidden_groups=1, inner_group_num=1)
    b = count_parameters(build_model(config))
    assert b.effective["attention"] == 4 * b.unique["attention"]
    assert b.effective["feed-forward"] == 4 * b.unique["feed-forward"]
    assert b.effective["embeddings"] == b.unique["embeddings"]
    bert = count_parameters(build_model(tiny_config("bert")))
    assert bert.effective == bert.unique


def test_partial_sharing_aliases_the_right_modules():
    model = build_model(tiny_config("albert", num_hidden_layers=3).with_sharing("attention"))
    layers = model.encoder.schedule
    assert layers[0].attention is layers[2].attention
    assert layers[0].ffn is not layers[2].ffn
    model = build_model(tiny_config("albert", num_hidden_layers=3).with_sharing("ffn"))
    assert model.encoder.schedule[0].ffn is model.encoder.schedule[1].ffn
    assert model.encoder.schedule[0].attention is not model.encoder.schedule[1].attention


def test_meta_model_skips_initialisation_only_for_itself():
    """meta_model builds the same shapes as build_model on meta, and a real model built
    afterwards, or in another thread while it builds, is initialised exactly as before."""
    import threading

    import torch

    from core.config import preset
    from core.loaded_model import build_model, meta_model

    config = preset("bert-tiny")

    def real() -> dict:
        torch.manual_seed(0)
        return {k: v.clone() for k, v in build_model(config).state_dict().items()}

    before = real()
    with torch.device("meta"):
        plain = build_model(config)
    fast = meta_model(config)
    assert [(k, v.shape) for k, v in fast.state_dict().items()] == [
        (k, v.shape) for k, v in plain.state_dict().items()
    ]
    after = real()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert after["embeddings.word_embeddings.weight"].std() > 0  # initialised, not zeros

    other: dict = {}
    worker = threading.Thread(target=lambda: other.update(real()))
    worker.start()
    for _ in range(20):
        meta_model(preset("bert-base"))
    worker.join()
    assert all(torch.equal(before[k], other[k]) for k in before)
