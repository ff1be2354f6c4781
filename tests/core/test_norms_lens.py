"""Norm-based attention against the formula computed by hand from the checkpoint's own weights
(the safetensors file, transformers' key names), and the logit lens, whose last row is the
model's own masked-word prediction exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core import load_model
from core.analysis.logit_lens import logit_lens
from core.analysis.norms import norm_attention
from core.analysis.probe import probe
from core.errors import InputError
from tests.tiny_models import hf_checkpoint

BERT = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
)
ALBERT = dict(BERT, embedding_size=16, num_hidden_groups=1, inner_group_num=1, num_hidden_layers=3)
TEXT = "the king [MASK] to the city ."


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = hf_checkpoint(tmp_path_factory.mktemp("m") / "bert", "BertForMaskedLM", **BERT)
    return load_model(folder, device="cpu"), load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    folder = hf_checkpoint(tmp_path_factory.mktemp("m") / "albert", "AlbertForMaskedLM", **ALBERT)
    return load_model(folder, device="cpu"), load_file(folder / "model.safetensors")


def hand_norms(hidden, probs, w_v, b_v, w_o, heads):
    """‖α_ij f(x_j)‖ with f(x) = (x W_V + b_V) W_O, head by head, in float64."""
    x = hidden.astype(np.float64)
    H = x.shape[-1]
    hs = H // heads
    out = np.zeros(probs.shape)
    for h in range(heads):
        cols = slice(h * hs, (h + 1) * hs)
        f = (x @ w_v[cols].T.astype(np.float64) + b_v[cols]) @ w_o[:, cols].T.astype(np.float64)
        for i in range(x.shape[0]):
            for j in range(x.shape[0]):
                out[h, i, j] = np.linalg.norm(probs[h, i, j] * f[j])
    return out


def test_norm_attention_bert_by_hand(bert):
    loaded, w = bert
    r = probe(loaded, TEXT)
    n = norm_attention(loaded, TEXT)
    np.testing.assert_allclose(n.weights, r.attentions, atol=1e-6)
    for layer in range(2):
        key = f"bert.encoder.layer.{layer}.attention"
        expected = hand_norms(
            r.hidden_states[layer],
            r.attentions[layer].astype(np.float64),
            w[f"{key}.self.value.weight"].numpy(),
            w[f"{key}.self.value.bias"].numpy(),
            w[f"{key}.output.dense.weight"].numpy(),
            4,
        )
        np.testing.assert_allclose(n.norms[layer], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(n.norms.sum(-1), 1.0)  # not a distribution


def test_norm_attention_albert_every_depth_by_hand(albert):
    loaded, w = albert
    r = probe(loaded, TEXT)
    n = norm_attention(loaded, TEXT)
    key = "albert.encoder.albert_layer_groups.0.albert_layers.0.attention"
    assert n.norms.shape[0] == 3
    for depth in range(3):  # one shared layer's weights at every depth, each depth's input
        expected = hand_norms(
            r.hidden_states[depth],
            r.attentions[depth].astype(np.float64),
            w[f"{key}.value.weight"].numpy(),
            w[f"{key}.value.bias"].numpy(),
            w[f"{key}.dense.weight"].numpy(),
            4,
        )
        np.testing.assert_allclose(n.norms[depth], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(n.head_mean, n.norms.mean(axis=1))


@pytest.mark.parametrize("name", ["bert", "albert"])
def test_logit_lens_last_row_is_the_models_prediction(request, name):
    loaded, _ = request.getfixturevalue(name)
    r = probe(loaded, TEXT, top_k=7)
    lens = logit_lens(loaded, TEXT, top_k=7)
    assert len(lens.layers) == loaded.config.effective_layers + 1
    last, own = lens.layers[-1], r.masked[0]
    assert last.position == own.position == lens.position
    assert last.ids == own.ids and last.tokens == own.tokens
    np.testing.assert_array_equal(last.probs, own.probs)
    assert lens.token == own.tokens[0] and lens.ranks[-1] == 1
    assert lens.probs[-1] == pytest.approx(float(own.probs[0]), rel=1e-6)
    # an earlier layer decodes its own hidden state through the same head
    with torch.no_grad():
        from core.blocks import ModelOutput

        out = ModelOutput(hidden_states=())
        hidden = torch.from_numpy(r.hidden_states[1])[None]
        loaded.model.add_heads(out, hidden, None)
        p = torch.softmax(out.mlm_logits[0, lens.position], -1)
    assert lens.layers[1].ids[0] == int(p.argmax())
    assert lens.probs[1] == pytest.approx(float(p[lens.token_id]), rel=1e-5)


def test_logit_lens_bad_input(bert):
    loaded, _ = bert
    with pytest.raises(InputError, match="no \\[MASK\\] in the text"):
        logit_lens(loaded, "the king went")
    with pytest.raises(InputError, match="token 1 is not a \\[MASK\\]"):
        logit_lens(loaded, TEXT, position=1)
