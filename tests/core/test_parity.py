"""The engine against transformers (the reference): every hidden state, every attention map and
every head's logits within 1e-5, fp32, eval mode; and transformers loads what the engine saves."""

from __future__ import annotations

import pytest
import torch

from core import load_model, save_model
from tests.tiny_models import hf_checkpoint

transformers = pytest.importorskip("transformers")

TOL = 1e-5
BERT = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    attn_implementation="eager",
)
ALBERT = dict(
    vocab_size=99,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=4,
    num_hidden_groups=2,
    inner_group_num=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
    attn_implementation="eager",
)
ALBERT_PAPER = {**ALBERT, "num_hidden_groups": 1, "inner_group_num": 1}

CASES = [
    (
        "BertForPreTraining",
        BERT,
        {"mlm_logits": "prediction_logits", "nsp_logits": "seq_relationship_logits"},
    ),
    ("BertForMaskedLM", BERT, {"mlm_logits": "logits"}),
    ("BertModel", BERT, {"pooler_output": "pooler_output"}),
    (
        "AlbertForPreTraining",
        ALBERT,
        {"mlm_logits": "prediction_logits", "sop_logits": "sop_logits"},
    ),
    ("AlbertForMaskedLM", ALBERT, {"mlm_logits": "logits"}),
    ("AlbertModel", ALBERT, {"pooler_output": "pooler_output"}),
    (
        "AlbertForPreTraining",
        ALBERT_PAPER,
        {"mlm_logits": "prediction_logits", "sop_logits": "sop_logits"},
    ),
]


def batch(vocab: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Three sequences: full length, padded, heavily padded; segment B from position 5."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def assert_same(ours, ref, heads: dict[str, str]) -> None:
    assert len(ours.hidden_states) == len(ref.hidden_states)
    for a, b in zip(ours.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)
    assert len(ours.attentions) == len(ref.attentions)
    for a, b in zip(ours.attentions, ref.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)
    for ours_name, ref_name in heads.items():
        torch.testing.assert_close(
            getattr(ours, ours_name), getattr(ref, ref_name), atol=TOL, rtol=0
        )


def reference(folder, architecture: str):
    model = getattr(transformers, architecture).from_pretrained(folder, attn_implementation="eager")
    return model.eval()


@pytest.mark.parametrize(("architecture", "config", "heads"), CASES)
def test_outputs_match_transformers(tmp_path, architecture, config, heads):
    folder = hf_checkpoint(tmp_path / "ckpt", architecture, **config)
    ref_model = reference(folder, architecture)
    loaded = load_model(folder, device="cpu")
    inputs = batch(config["vocab_size"])
    with torch.no_grad():
        ref = ref_model(**inputs, output_hidden_states=True, output_attentions=True)
        ours = loaded.model(**inputs, output_attentions=True)
    assert_same(ours, ref, heads)
    # Attention rows over real tokens sum to one; padded keys get no weight.
    assert float(ours.attentions[0][2, :, :, 3:].abs().max()) == 0.0


@pytest.mark.parametrize(("architecture", "config"), [("BertModel", BERT), ("AlbertModel", ALBERT)])
def test_encoder_alone_matches_transformers(tmp_path, architecture, config):
    """The encoder owns the layer loop: from the embeddings' output and the 0/1 padding mask it
    returns every hidden state and attention map the reference model does."""
    folder = hf_checkpoint(tmp_path / "ckpt", architecture, **config)
    model = load_model(folder).model
    inputs = batch(config["vocab_size"])
    with torch.no_grad():
        ref = reference(folder, architecture)(
            **inputs, output_hidden_states=True, output_attentions=True
        )
        x = model.embeddings(inputs["input_ids"], inputs["token_type_ids"])
        hidden, attentions = model.encoder(x, inputs["attention_mask"], True)
        _, none = model.encoder(x, inputs["attention_mask"], False)
    assert none is None
    assert len(hidden) == len(ref.hidden_states) and len(attentions) == len(ref.attentions)
    for a, b in zip(hidden + attentions, ref.hidden_states + ref.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)


def test_albert_effective_depth(tmp_path):
    folder = hf_checkpoint(tmp_path / "ckpt", "AlbertModel", **ALBERT)
    loaded = load_model(folder)
    out = loaded("the king of the city .")
    assert loaded.config.effective_layers == 8  # 4 layers x inner_group_num 2
    assert len(out.hidden_states) == 9 and len(out.attentions) == 8


def test_sdpa_path_matches_explicit_attention(tmp_path):
    """Without attentions the engine uses scaled_dot_product_attention: same numbers."""
    folder = hf_checkpoint(tmp_path / "ckpt", "BertForPreTraining", **BERT)
    loaded = load_model(folder)
    inputs = batch(BERT["vocab_size"])
    with torch.no_grad():
        fast = loaded.model(**inputs, output_attentions=False)
        slow = loaded.model(**inputs, output_attentions=True)
    assert fast.attentions is None
    for a, b in zip(fast.hidden_states, slow.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)


@pytest.mark.parametrize(
    ("architecture", "config", "auto"),
    [
        ("BertForPreTraining", BERT, "AutoModelForPreTraining"),
        ("BertForMaskedLM", BERT, "AutoModelForMaskedLM"),
        ("BertModel", BERT, "AutoModel"),
        ("AlbertForPreTraining", ALBERT, "AutoModelForPreTraining"),
        ("AlbertForMaskedLM", ALBERT, "AutoModelForMaskedLM"),
        ("AlbertModel", ALBERT, "AutoModel"),
    ],
)
def test_round_trip_transformers_loads_what_we_save(tmp_path, architecture, config, auto):
    src = hf_checkpoint(tmp_path / "src", architecture, **config)
    saved = save_model(load_model(src), tmp_path / "saved")
    assert (saved / "model.safetensors").is_file()
    ref_model, info = getattr(transformers, auto).from_pretrained(
        saved, attn_implementation="eager", output_loading_info=True
    )
    assert info["missing_keys"] == set() or info["missing_keys"] == []
    assert info["unexpected_keys"] == set() or info["unexpected_keys"] == []
    assert info["mismatched_keys"] == set() or info["mismatched_keys"] == []
    original = reference(src, architecture)
    inputs = batch(config["vocab_size"], seed=3)
    with torch.no_grad():
        a = original(**inputs, output_hidden_states=True, output_attentions=True)
        b = ref_model.eval()(**inputs, output_hidden_states=True, output_attentions=True)
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(x, y, atol=TOL, rtol=0)
    # ...and the engine reads its own file back to the same numbers.
    again = load_model(saved)
    with torch.no_grad():
        ours = again.model(**inputs, output_attentions=True)
    for x, y in zip(ours.hidden_states, a.hidden_states, strict=True):
        torch.testing.assert_close(x, y, atol=TOL, rtol=0)


def test_tokenizer_matches_transformers_bert_tokenizer(tmp_path):
    folder = hf_checkpoint(tmp_path / "ckpt", "BertModel", **BERT)
    ref = transformers.AutoTokenizer.from_pretrained(folder)
    loaded = load_model(folder)
    text, pair = "The KING saw the light, and went.", "Then he said: what?"
    ours = loaded.encode(text, pair)
    theirs = ref(text, pair)
    assert ours.input_ids == theirs["input_ids"]
    assert ours.token_type_ids == theirs["token_type_ids"]


@pytest.mark.parametrize("sharing", ["attention", "ffn", "none"])
def test_sharing_ablations_save_as_plain_albert(tmp_path, sharing):
    """Partial sharing has no transformers class; saved with one group per layer (the shared
    tensors repeated), transformers' AlbertForPreTraining computes the same function, and the
    engine ties the shared modules again on load."""
    from tests.tiny_models import engine_checkpoint, tiny_config

    config = tiny_config("albert", num_hidden_layers=3).with_sharing(sharing)
    folder = engine_checkpoint(tmp_path / "ckpt", config)
    loaded = load_model(folder)
    assert loaded.config.sharing == sharing
    layers = loaded.model.encoder.schedule
    assert (layers[0].attention is layers[2].attention) == (sharing == "attention")
    assert (layers[0].ffn is layers[2].ffn) == (sharing == "ffn")
    ref = reference(folder, "AlbertForPreTraining")
    inputs = batch(99)
    with torch.no_grad():
        ours = loaded.model(**inputs, output_attentions=True)
        theirs = ref(**inputs, output_hidden_states=True, output_attentions=True)
    assert_same(ours, theirs, {"mlm_logits": "prediction_logits", "sop_logits": "sop_logits"})
