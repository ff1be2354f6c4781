"""Attribution against references: Integrated Gradients equals Captum's LayerIntegratedGradients
(same layer, baseline, steps and Gauss-Legendre rule) within 1e-4 relative; saliency and
gradient x input equal torch.autograd.grad of the target logit; IG's completeness on the demo
models; bad input gives one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core import load_model
from core.analysis.ablation import head_mask
from core.analysis.attribution import Target, attribute, parse_target
from core.blocks import ModelOutput
from core.errors import InputError
from tests.tiny_models import engine_checkpoint, tiny_config

captum_attr = pytest.importorskip("captum.attr")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "models"
TEXT = "the king [MASK] to the city ."
PAIR = "he saw the water"


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = engine_checkpoint(
        tmp_path_factory.mktemp("m") / "bert", tiny_config("bert", initializer_range=0.2), seed=3
    )
    return load_model(folder, device="cpu")


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    config = tiny_config("albert", num_hidden_layers=2, num_hidden_groups=1, initializer_range=0.2)
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "albert", config, seed=4)
    return load_model(folder, device="cpu")


def mask_position(loaded, text=TEXT, pair=None):
    return loaded.encode(text, pair).input_ids.index(loaded.tokenizer.token_id("mask"))


def baseline_ids(loaded, encoded, fill_role):
    mask_id = loaded.tokenizer.token_id("mask")
    fill = loaded.tokenizer.token_id(fill_role)
    return torch.tensor(
        [
            [
                t if s or t == mask_id else fill
                for s, t in zip(encoded.special_tokens_mask, encoded.input_ids, strict=True)
            ]
        ]
    )


def captum_ig(loaded, layer, text, pair, target, baseline, steps):
    """Captum's LayerIntegratedGradients on the same layer, per token (summed over D)."""
    encoded = loaded.encode(text, pair)
    tensors = encoded.tensors()
    model = loaded.model

    def forward(ids):
        types = tensors["token_type_ids"].expand(ids.shape[0], -1)
        if target[0] == "mask":
            sel = torch.zeros(ids.shape, dtype=torch.bool)
            sel[:, target[1]] = True
            return model(ids, token_type_ids=types, mlm_positions=sel).mlm_logits[:, target[2]]
        out = model(ids, token_type_ids=types)
        logits = out.nsp_logits if out.nsp_logits is not None else out.sop_logits
        return logits[:, target[2]]

    lig = captum_attr.LayerIntegratedGradients(forward, layer)
    attr, delta = lig.attribute(
        tensors["input_ids"],
        baselines=baseline_ids(loaded, encoded, baseline),
        n_steps=steps,
        method="gausslegendre",
        return_convergence_delta=True,
    )
    return attr[0].sum(-1).double().numpy(), float(delta)


@pytest.mark.parametrize("baseline", ["pad", "mask"])
def test_ig_matches_captum_bert(bert, baseline):
    pos = mask_position(bert)
    ours = attribute(bert, TEXT, Target("mask", pos), steps=20, baseline=baseline)
    ref, _ = captum_ig(
        bert,
        bert.model.embeddings.word_embeddings,
        TEXT,
        None,
        ("mask", pos, ours.target_id),
        baseline,
        20,
    )
    np.testing.assert_allclose(ours.scores, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("layer", ["word", "hidden"])
def test_ig_matches_captum_albert_at_both_widths(albert, layer):
    pos = mask_position(albert)
    ours = attribute(albert, TEXT, Target("mask", pos), steps=16, layer=layer, chunk_tokens=30)
    module = (
        albert.model.embeddings.word_embeddings
        if layer == "word"
        else albert.model.encoder.embedding_hidden_mapping_in
    )
    ref, _ = captum_ig(albert, module, TEXT, None, ("mask", pos, ours.target_id), "pad", 16)
    np.testing.assert_allclose(ours.scores, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert ours.layer.startswith(
        "word embeddings (E=16)" if layer == "word" else "output of embedding_hidden"
    )


def test_ig_sentence_target_matches_captum(bert):
    ours = attribute(bert, TEXT, Target("sentence", label=1), pair=PAIR, steps=12)
    ref, _ = captum_ig(
        bert, bert.model.embeddings.word_embeddings, TEXT, PAIR, ("sentence", None, 1), "pad", 12
    )
    np.testing.assert_allclose(ours.scores, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert ours.target.startswith("NSP logit of class 1")


def test_chunking_does_not_change_ig(bert):
    pos = mask_position(bert)
    whole = attribute(bert, TEXT, Target("mask", pos), steps=10)
    chunked = attribute(bert, TEXT, Target("mask", pos), steps=10, chunk_tokens=1)  # 1 step each
    np.testing.assert_allclose(
        chunked.scores, whole.scores, rtol=1e-5, atol=1e-6 * np.abs(whole.scores).max()
    )


def autograd_gradient(loaded, pos, token_id):
    """The gradient of the target logit with respect to the word-embedding output."""
    tensors = loaded.encode(TEXT).tensors()
    emb = loaded.model.embeddings
    words = emb.word_embeddings(tensors["input_ids"]).detach().requires_grad_(True)
    T = words.shape[1]
    x = words + emb.token_type_embeddings(tensors["token_type_ids"])
    x = emb.LayerNorm(x + emb.position_embeddings(torch.arange(T)))
    hidden, _ = loaded.model.encoder(x, None, False)
    out = ModelOutput(hidden_states=())
    loaded.model.add_heads(out, hidden[-1], None)
    (grad,) = torch.autograd.grad(out.mlm_logits[0, pos, token_id], words)
    return grad[0].double().numpy(), words[0].detach().double().numpy()


@pytest.mark.parametrize("name", ["bert", "albert"])
def test_saliency_and_gxi_equal_autograd(request, name):
    loaded = request.getfixturevalue(name)
    pos = mask_position(loaded)
    sal = attribute(loaded, TEXT, Target("mask", pos, token="king"), method="saliency")
    gxi = attribute(loaded, TEXT, Target("mask", pos, token="king"), method="gxi")
    grad, x = autograd_gradient(loaded, pos, sal.target_id)
    norms, products = np.linalg.norm(grad, axis=-1), (grad * x).sum(-1)
    np.testing.assert_allclose(sal.scores, norms, rtol=1e-5, atol=1e-6 * norms.max())
    np.testing.assert_allclose(gxi.scores, products, rtol=1e-5, atol=1e-6 * np.abs(products).max())
    assert sal.target_token == "king" and sal.completeness_error is None


def test_word_mode_sums_pieces(bert):
    text = "the king [MASK] to the cityab ."  # "cityab" -> city ##a ##b
    pos = mask_position(bert, text)
    a = attribute(bert, text, Target("mask", pos), steps=8, words=True)
    assert "cityab" in a.words
    w = a.words.index("cityab")
    pieces = [i for i, t in enumerate(a.tokens) if t in ("city", "##a", "##b")]
    assert len(pieces) == 3
    assert a.word_scores[w] == pytest.approx(a.scores[pieces].sum(), rel=1e-12)
    assert a.word_scores.sum() == pytest.approx(a.scores.sum(), rel=1e-9)


def test_head_mask_changes_attribution(bert):
    pos = mask_position(bert)
    intact = attribute(bert, TEXT, Target("mask", pos), steps=8)
    off = attribute(
        bert,
        TEXT,
        Target("mask", pos, token=intact.target_token),
        steps=8,
        head_mask=head_mask(bert, [(0, 1), (1, 2)]),
    )
    assert not np.allclose(intact.scores, off.scores)
    empty = attribute(bert, TEXT, Target("mask", pos), steps=8, head_mask=head_mask(bert, []))
    np.testing.assert_array_equal(empty.scores, intact.scores)


@pytest.mark.parametrize("name", ["bert-mini", "albert-mini"])
@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_completeness_on_demo_models(name, baseline):
    loaded = load_model(DEMO / name, device="cpu")
    text = "he [MASK] to the house"
    a = attribute(
        loaded, text, Target("mask", mask_position(loaded, text)), steps=64, baseline=baseline
    )
    assert a.completeness_error < 0.01
    assert a.scores.sum() == pytest.approx(a.f_input - a.f_baseline, rel=0.01)


def test_parse_target():
    assert parse_target("mask:3") == (Target("mask", position=3), False)
    assert parse_target("mask:3:word") == (Target("mask", position=3), True)
    assert parse_target("sentence") == (Target("sentence"), False)
    assert parse_target("sentence:1") == (Target("sentence", label=1), False)
    for bad in ("mask", "mask:x", "mask:3:piece", "sentence:2", "class:A"):
        with pytest.raises(InputError, match="--target"):
            parse_target(bad)


def test_bad_input_is_one_line_errors(bert):
    pos = mask_position(bert)
    cases = [
        (dict(target=Target("mask", 1)), "token 1 is 'the', not \\[MASK\\]"),
        (dict(target=Target("mask", 99)), "outside the sequence"),
        (dict(target=Target("mask", pos), steps=0), "--steps must be a positive integer"),
        (dict(target=Target("mask", pos), method="lrp"), "--method"),
        (dict(target=Target("mask", pos), baseline="unk"), "--baseline"),
        (dict(target=Target("mask", pos, token="zebra")), "--token 'zebra' is not in"),
        (dict(target=Target("sentence")), "needs a pair"),
        (dict(target=Target("mask", pos), layer="hidden"), "ALBERT's only"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message) as err:
            attribute(bert, TEXT, **kwargs)
        assert "\n" not in str(err.value)
    bert.tokenizer.special.pop("pad")  # a vocabulary without [PAD]
    try:
        with pytest.raises(InputError, match="--baseline pad: the vocabulary has no pad token"):
            attribute(bert, TEXT, Target("mask", pos))
    finally:
        bert.tokenizer.special["pad"] = "[PAD]"
