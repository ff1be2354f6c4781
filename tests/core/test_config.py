"""ModelConfig: presets, config.json round trip, and one clear message per invalid setting."""

from __future__ import annotations

import json

import pytest

from core.albert import AlbertModel
from core.bert import BertModel
from core.blocks import activation
from core.config import PRESETS, Heads, ModelConfig, preset
from core.cost.params import component_of
from core.errors import ConfigError

PAPER_PRESETS = [
    "bert-base",
    "bert-large",
    "albert-base",
    "albert-large",
    "albert-xlarge",
    "albert-xxlarge",
]
SMALL_PRESETS = [
    "bert-tiny",
    "bert-mini",
    "bert-small",
    "albert-tiny",
    "albert-mini",
    "albert-small",
]


def test_all_named_presets_exist():
    assert set(PAPER_PRESETS + SMALL_PRESETS) == set(PRESETS)


@pytest.mark.parametrize(
    ("name", "layers", "hidden", "heads", "embedding"),
    [
        ("bert-base", 12, 768, 12, 768),
        ("bert-large", 24, 1024, 16, 1024),
        ("albert-base", 12, 768, 12, 128),
        ("albert-large", 24, 1024, 16, 128),
        ("albert-xlarge", 24, 2048, 16, 128),
        ("albert-xxlarge", 12, 4096, 64, 128),
        ("bert-mini", 4, 256, 4, 256),
        ("albert-mini", 4, 256, 4, 128),
    ],
)
def test_preset_sizes(name, layers, hidden, heads, embedding):
    c = preset(name)
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.embedding_dim) == (
        layers,
        hidden,
        heads,
        embedding,
    )
    assert c.intermediate_size == 4 * hidden


def test_albert_adds_no_layers_or_heads():
    """ALBERT-base has BERT-base's depth and width: the savings are elsewhere."""
    b, a = preset("bert-base"), preset("albert-base")
    assert (a.num_hidden_layers, a.hidden_size, a.num_attention_heads, a.intermediate_size) == (
        b.num_hidden_layers,
        b.hidden_size,
        b.num_attention_heads,
        b.intermediate_size,
    )


def test_json_round_trip_keeps_unknown_keys(tmp_path):
    config = preset("albert-mini", vocab_size=8000)
    data = config.to_dict() | {"bos_token_id": 2, "architectures": ["AlbertForMaskedLM"]}
    (tmp_path / "config.json").write_text(json.dumps(data))
    loaded = ModelConfig.load(tmp_path)
    assert loaded == config
    assert loaded.extra["bos_token_id"] == 2
    loaded.save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        "AlbertForMaskedLM"
    ]


def test_bert_config_json_has_no_albert_fields():
    data = preset("bert-tiny").to_dict()
    assert "embedding_size" not in data and "sharing" not in data
    assert data["model_type"] == "bert"


def test_missing_fields_take_family_defaults():
    c = ModelConfig.from_dict({"model_type": "albert"})
    assert (c.hidden_size, c.embedding_size, c.hidden_act) == (4096, 128, "gelu_new")
    assert ModelConfig.from_dict({"model_type": "bert"}).hidden_size == 768


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"hidden_size": 30, "num_attention_heads": 4},
            "hidden_size 30 is not divisible by num_attention_heads 4",
        ),
        ({"model_type": "gpt2"}, "unknown model_type 'gpt2'"),
        ({"hidden_act": "swiglu"}, "unsupported hidden_act 'swiglu'"),
        ({"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"),
        ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
        ({"pad_token_id": 10**6}, "pad_token_id 1000000 is outside the vocabulary"),
    ],
)
def test_invalid_bert_settings(changes, message):
    with pytest.raises(ConfigError, match=message):
        preset("bert-tiny").replace(**changes)


def test_invalid_albert_settings():
    with pytest.raises(
        ConfigError, match="num_hidden_groups 5 does not divide num_hidden_layers 4"
    ):
        preset("albert-mini", num_hidden_groups=5)
    with pytest.raises(ConfigError, match="unknown sharing 'half'"):
        preset("albert-mini", sharing="half")
    with pytest.raises(ConfigError, match="ALBERT needs a positive embedding_size"):
        preset("albert-mini", embedding_size=0)
    with pytest.raises(ConfigError, match="ALBERT settings"):
        preset("bert-mini", num_hidden_groups=2)
    with pytest.raises(ConfigError, match="unknown preset 'bert-huge'"):
        preset("bert-huge")


def test_with_sharing_sets_groups():
    c = preset("albert-base", sharing="attention")
    assert (c.sharing, c.num_hidden_groups, c.inner_group_num) == ("attention", 12, 1)
    assert preset("albert-base", sharing="none").num_hidden_groups == 12
    assert c.with_sharing("all").num_hidden_groups == 1


def test_malformed_files(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        ModelConfig.load(tmp_path)
    (tmp_path / "config.json").write_text(
        '{"model_type": "bert", "position_embedding_type": "relative_key"}'
    )
    with pytest.raises(
        ConfigError, match="position_embedding_type 'relative_key' is not supported"
    ):
        ModelConfig.load(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 12}')
    with pytest.raises(ConfigError, match="no 'model_type' key"):
        ModelConfig.load(tmp_path)


# -- heads -------------------------------------------------------------------------------------
HEAD_SETS = [
    Heads(),
    Heads(pooler=True),
    Heads(mlm=True),
    Heads(mlm=True, pooler=True),
    Heads(sentence="nsp", pooler=True),
    Heads.pretraining("bert"),
    Heads.pretraining("albert"),
]


@pytest.mark.parametrize("heads", HEAD_SETS)
def test_head_names_are_sorted_and_read_back(heads):
    names = heads.names()
    assert names == sorted(names)
    assert Heads.from_names(names) == heads
    assert json.loads(json.dumps(names)) == names  # the serialised form is plain strings


def test_pretraining_heads_by_family():
    assert Heads.pretraining("bert").names() == ["mlm", "nsp", "pooler"]
    assert Heads.pretraining("albert").names() == ["mlm", "pooler", "sop"]
    assert Heads().names() == []


def test_invalid_heads():
    with pytest.raises(ConfigError, match="the NSP head reads the pooler output"):
        Heads(sentence="nsp")
    with pytest.raises(ConfigError, match="unknown sentence head 'itc'"):
        Heads(sentence="itc", pooler=True)
    with pytest.raises(ConfigError, match=r"unknown head names \['mlm', 'qa'\]"):
        Heads.from_names(["mlm", "qa"])
    with pytest.raises(ConfigError, match="unknown sentence objective 'itc'"):
        Heads.pretraining("bert", "itc")


def test_model_class_of_the_other_family_is_a_config_error():
    with pytest.raises(ConfigError, match="model_type 'albert': this is the 'bert' model class"):
        BertModel(preset("albert-tiny"))
    with pytest.raises(ConfigError, match="model_type 'bert': this is the 'albert' model class"):
        AlbertModel(preset("bert-tiny"))
    with pytest.raises(ConfigError, match=r"heads must be a core.config.Heads, got \{'mlm'\}"):
        BertModel(preset("bert-tiny"), {"mlm"})


def test_unknown_activation_and_component_are_config_errors():
    with pytest.raises(ConfigError, match="unsupported hidden_act 'swiglu'"):
        activation("swiglu")
    with pytest.raises(ConfigError, match=r"parameter 'adapter\.weight' belongs to no known"):
        component_of("adapter.weight")
