"""Probe, layer and attention analysis, and exports: exact expectations on tiny models and on
hand-built attention maps and hidden states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core import InputError, load_model
from core.analysis import (
    attention_stats,
    layer_stats,
    pair_blocks,
    pca_all_layers,
    pca_projection,
    predict_masked,
    probe,
    rollout,
    token_focus,
)
from core.analysis.attention import entropy, is_clark_punctuation, is_punctuation
from core.analysis.hidden_states import hidden_state_stats, pca_explained_variance
from core.analysis.probe import ProbeResult, TokenInfo
from core.analysis.summary import analyze
from core.config import Heads
from core.export import load_csv, load_json, save_csv, save_json, tidy_rows
from tests.tiny_models import engine_checkpoint, tiny_config

TEXT = "the king went to the city , and he saw water ."


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "bert", tiny_config("bert"), seed=1)
    return load_model(folder, device="cpu")


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    config = tiny_config("albert", num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "albert", config, seed=2)
    return load_model(folder, device="cpu")


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    folder = engine_checkpoint(
        tmp_path_factory.mktemp("m") / "bare", tiny_config("bert"), heads=Heads(pooler=True)
    )
    return load_model(folder, device="cpu")


def fake_result(
    attentions: np.ndarray,
    tokens: list[str],
    hidden: np.ndarray | None = None,
    pair_from: int | None = None,
) -> ProbeResult:
    """A ProbeResult with hand-built arrays; [CLS]/[SEP] are special."""
    L, _, T, _ = attentions.shape
    infos = []
    for i, tok in enumerate(tokens):
        special = tok in ("[CLS]", "[SEP]")
        seq = None if special else (1 if pair_from is not None and i >= pair_from else 0)
        infos.append(
            TokenInfo(tok, i, special, False, None if special else (i, i + 1), int(seq == 1), seq)
        )
    if hidden is None:
        hidden = np.zeros((L + 1, T, 4), dtype=np.float32)
    return ProbeResult(
        model_name="hand",
        model_type="bert",
        text=" ".join(tokens),
        pair="b" if pair_from is not None else None,
        tokens=infos,
        input_ids=np.arange(T),
        segment_ids=np.zeros(T, dtype=np.int64),
        attentions=attentions.astype(np.float32),
        hidden_states=hidden.astype(np.float32),
        mlm_logits=None,
        masked=[],
        truncated=False,
        special_tokens={"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
    )


# -- probe -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bert", "albert"])
def test_probe_shapes_tokens_and_rows_sum_to_one(name, request):
    loaded = request.getfixturevalue(name)
    r = probe(loaded, "The king went to the city [MASK] .", pair="he saw the water")
    T = len(r.tokens)
    L = loaded.config.effective_layers
    assert r.attentions.shape == (L, 4, T, T) and r.attentions.dtype == np.float32
    assert r.hidden_states.shape == (L + 1, T, 32)
    assert r.mlm_logits.shape == (T, 99)
    np.testing.assert_allclose(r.attentions.sum(-1), 1.0, atol=1e-5)
    assert r.token_strings[0] == "[CLS]" and r.tokens[0].special and r.tokens[0].span is None
    king = r.tokens[2]
    assert king.text == "king" and r.text[king.span[0] : king.span[1]].lower() == "king"
    assert [t.segment for t in r.tokens] == list(r.segment_ids)
    assert r.tokens[-1].segment == 1 and r.tokens[-2].sequence == 1
    assert [m.position for m in r.masked] == [r.token_strings.index("[MASK]")]
    assert len(r.masked[0].tokens) == 5 and np.all(np.diff(r.masked[0].probs) <= 0)


def test_word_piece_continuations_are_marked(bert):
    r = probe(bert, "kingbad")  # not in the vocabulary: king ##b ##a ##d
    pieces = r.tokens[1:-1]
    assert pieces[0].text == "king" and not pieces[0].continuation
    assert all(p.continuation and p.text.startswith("##") for p in pieces[1:])
    assert pieces[-1].span == (6, 7)


def test_masked_predictions_match_engine_logits(bert):
    r = probe(bert, "the king [MASK] to the city .", top_k=4)
    pos = r.masked[0].position
    ids, types = torch.from_numpy(r.input_ids)[None], torch.from_numpy(r.segment_ids)[None]
    with torch.no_grad():
        logits = bert.model(ids, token_type_ids=types).mlm_logits[0, pos]
    probs = torch.softmax(logits, -1)
    top = torch.topk(probs, 4)
    assert r.masked[0].ids == top.indices.tolist()
    np.testing.assert_allclose(r.masked[0].probs, top.values.numpy(), rtol=1e-6)
    np.testing.assert_allclose(r.mlm_logits[pos], logits.numpy(), rtol=1e-6, atol=1e-6)
    # masking "went" on the fly gives what the model says with [MASK] typed there
    on_the_fly = predict_masked(bert, "the king went to the city .", pos, top_k=4)
    assert on_the_fly.ids == r.masked[0].ids and on_the_fly.position == pos
    np.testing.assert_allclose(on_the_fly.probs, r.masked[0].probs, rtol=1e-5)


def test_mask_only_decoding_gives_the_same_predictions(albert):
    text = "the [MASK] went to [MASK] city ."
    full, lean = probe(albert, text), probe(albert, text, full_logits=False)
    assert lean.mlm_logits is None and lean.has_mlm and len(lean.masked) == 2
    for a, b in zip(full.masked, lean.masked, strict=True):
        assert (a.position, a.ids) == (b.position, b.ids)
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5)
    np.testing.assert_allclose(full.attentions, lean.attentions, atol=1e-6)


def test_predict_masked_rejects_bad_positions(bert, bare):
    with pytest.raises(InputError, match="special token"):
        predict_masked(bert, "the king", 0)
    with pytest.raises(InputError, match="outside the sequence"):
        predict_masked(bert, "the king", 4)
    with pytest.raises(InputError, match="no MLM head"):
        predict_masked(bare, "the king", 1)
    r = probe(bare, "the [MASK] king")
    assert not r.has_mlm and r.masked == [] and "no MLM head" in r.note


# -- layers ----------------------------------------------------------------------------------
def test_identical_layers_have_cosine_one_and_l2_zero():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(1, 5, 8)).astype(np.float32)
    stats = hidden_state_stats(np.repeat(h, 4, axis=0))
    np.testing.assert_allclose(stats.cosine, 1.0, atol=1e-6)
    np.testing.assert_array_equal(stats.l2_distance, 0.0)
    np.testing.assert_allclose(stats.similarity_to_embedding, 1.0, atol=1e-6)


def test_layer_stats_by_hand():
    hidden = np.array([[[1, 0], [3, 4]], [[0, 2], [3, 4]]], dtype=np.float32)  # (2, 2, 2)
    s = hidden_state_stats(hidden, word_mask=np.array([True, False]))
    np.testing.assert_allclose(s.norms, [[1, 5], [2, 5]])
    np.testing.assert_allclose(s.l2_distance, [[math.sqrt(5), 0]], rtol=1e-6)
    np.testing.assert_allclose(s.cosine, [[0, 1]], atol=1e-7)
    np.testing.assert_allclose(s.l2_mean, [math.sqrt(5) / 2], rtol=1e-6)
    np.testing.assert_allclose(s.cosine_mean_words, [0.0], atol=1e-7)
    np.testing.assert_allclose(s.similarity_to_embedding, [[1, 1], [0, 1]], atol=1e-7)
    # degrees: 90 (orthogonal) and 0; their mean over both tokens, and over the word alone
    np.testing.assert_allclose(s.angle_deg, [[90, 0]], atol=1e-5)
    np.testing.assert_allclose(s.angle_mean_deg, [45.0], atol=1e-5)
    np.testing.assert_allclose(s.angle_mean_deg_words, [90.0], atol=1e-5)


def test_angle_is_the_mean_of_per_token_angles_not_the_angle_of_the_mean_cosine():
    # token 0 turns by 60 degrees, token 1 by 0: the mean angle is 30, arccos(mean cos) is 41.4
    c, t = math.cos(math.radians(60)), math.sin(math.radians(60))
    hidden = np.array([[[1, 0], [0, 2]], [[c, t], [0, 5]]], dtype=np.float32)
    s = hidden_state_stats(hidden)
    np.testing.assert_allclose(s.angle_deg, [[60, 0]], atol=1e-4)
    np.testing.assert_allclose(s.angle_mean_deg, [30.0], atol=1e-4)
    assert math.degrees(math.acos(s.cosine_mean[0])) == pytest.approx(41.41, abs=0.01)


def test_layer_stats_of_a_probe(albert):
    r = probe(albert, TEXT)
    s = layer_stats(r)
    L, T = albert.config.effective_layers, len(r)
    assert s.norms.shape == (L + 1, T) and s.cosine.shape == (L, T) and s.l2_mean.shape == (L,)
    h = r.hidden_states.astype(np.float64)
    expected = [np.linalg.norm(h[i + 1] - h[i], axis=-1).mean() for i in range(L)]
    np.testing.assert_allclose(s.l2_mean, expected, rtol=1e-5)
    words = ~r.special_mask
    np.testing.assert_allclose(s.cosine_mean_words, s.cosine[:, words].mean(1), rtol=1e-6)


def test_pca_preserves_distances_of_planar_data_and_fixes_signs():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(3, 6, 2)) * [3.0, 1.0]  # 3 layers, 6 tokens, 2-D data
    basis = np.linalg.qr(rng.normal(size=(16, 2)))[0]  # embedded in 16-D
    hidden = (plane @ basis.T + 5.0).astype(np.float32)
    r = fake_result(np.full((2, 1, 6, 6), 1 / 6), ["[CLS]", "a", "b", "c", "d", "[SEP]"], hidden)
    proj = pca_all_layers(r)
    assert proj.shape == (3, 6, 2)
    for layer in range(3):
        d_proj = np.linalg.norm(proj[layer][:, None] - proj[layer][None], axis=-1)
        d_true = np.linalg.norm(plane[layer][:, None] - plane[layer][None], axis=-1)
        np.testing.assert_allclose(d_proj, d_true, atol=1e-4)
        np.testing.assert_allclose(proj[layer].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(pca_explained_variance(r).sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(pca_projection(r, 1), proj[1])
    # the sign rule: the component's largest-|loading| coordinate is positive, so the
    # projection onto it equals x_c @ v with that v
    x = hidden[2] - hidden[2].mean(0)
    v = np.linalg.svd(x.astype(np.float64))[2][0]
    v = v if v[np.abs(v).argmax()] > 0 else -v
    np.testing.assert_allclose(proj[2][:, 0], x @ v, atol=1e-4)
    with pytest.raises(InputError):
        pca_projection(r, 3)


# -- attention -------------------------------------------------------------------------------
def test_rollout_of_identity_attention_is_identity():
    eye = np.broadcast_to(np.eye(5), (3, 2, 5, 5))
    np.testing.assert_array_equal(rollout(eye), np.broadcast_to(np.eye(5), (3, 5, 5)))


def test_rollout_by_hand():
    a0 = np.array([[0.5, 0.5], [0.0, 1.0]])
    a1 = np.array([[1.0, 0.0], [1.0, 0.0]])
    att = np.stack([np.stack([a0, a0]), np.stack([a1, a1])])  # (2 layers, 2 heads, 2, 2)
    r0 = (a0 + np.eye(2)) / 2  # rows of A + I sum to 2
    r1 = (a1 + np.eye(2)) / 2 @ r0
    np.testing.assert_allclose(rollout(att), np.stack([r0, r1]), atol=1e-7)


def test_clark_statistics_by_hand():
    tokens = ["[CLS]", "a", ",", "b", "[SEP]"]
    T = len(tokens)
    to_cls = np.zeros((T, T))
    to_cls[:, 0] = 1.0
    to_prev = np.eye(T, k=-1)
    to_prev[0, 0] = 1.0
    uniform = np.full((T, T), 1 / T)
    att = np.stack([np.stack([to_cls, to_prev, uniform])])  # (1 layer, 3 heads, T, T)
    s = attention_stats(fake_result(att, tokens))
    np.testing.assert_allclose(s.entropy[0], [0, 0, math.log(T)], atol=1e-6)
    np.testing.assert_allclose(s.to_cls[0], [1, 2 / T, 1 / T], atol=1e-6)  # rows 0, 1 -> [CLS]
    np.testing.assert_allclose(s.to_sep[0], [0, 0, 1 / T], atol=1e-6)
    np.testing.assert_allclose(s.to_punct[0], [0, 1 / T, 1 / T], atol=1e-6)  # "," only
    np.testing.assert_allclose(s.to_self[0], [1 / T, 1 / T, 1 / T], atol=1e-6)
    # Clark et al.'s released code divides previous/next by all T queries, not by T - 1.
    np.testing.assert_allclose(s.to_prev[0], [1 / T, (T - 1) / T, (T - 1) / T**2], atol=1e-6)
    np.testing.assert_allclose(s.to_next[0], [0, 0, (T - 1) / T**2], atol=1e-6)
    np.testing.assert_allclose(s.mean_maps[0], att[0].mean(0))
    assert s.max_entropy == pytest.approx(math.log(T))
    assert is_punctuation("##!") and is_punctuation("▁?") and not is_punctuation("[SEP]")


def test_punctuation_follows_clark_and_the_extended_set_has_its_own_name():
    tokens = ["[CLS]", "▁yes", "▁.", "!", "##,", ";", "[SEP]"]
    T = len(tokens)
    uniform = np.full((1, 1, T, T), 1 / T)
    s = attention_stats(fake_result(uniform, tokens))
    np.testing.assert_allclose(s.to_punct[0], [2 / T], atol=1e-6)  # "▁." and "##," only
    np.testing.assert_allclose(s.to_punct_all[0], [4 / T], atol=1e-6)  # and "!" and ";"
    assert is_clark_punctuation("▁.") and not is_clark_punctuation("!")


def test_attention_stats_of_a_probe(bert):
    r = probe(bert, TEXT, pair="she went home")
    s = attention_stats(r)
    L, T = r.num_layers, len(r)
    assert s.entropy.shape == (L, 4) and s.rollout.shape == (L, T, T)
    np.testing.assert_allclose(s.mean_maps.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(s.rollout.sum(-1), 1.0, atol=1e-5)
    assert np.all(s.entropy <= math.log(T) + 1e-5) and np.all(s.entropy >= 0)
    np.testing.assert_allclose(entropy(r.attentions), s.entropy)
    focus = token_focus(r, 3)
    np.testing.assert_array_equal(focus, r.attentions[:, :, 3, :])
    with pytest.raises(InputError):
        token_focus(r, T)
    blocks = pair_blocks(r)
    a = [i for i, t in enumerate(r.tokens) if t.sequence == 0]
    b = [i for i, t in enumerate(r.tokens) if t.sequence == 1]
    expected = r.attentions[:, :, a][:, :, :, b].sum(-1).mean(-1)
    np.testing.assert_allclose(blocks["a_to_b"], expected, rtol=1e-6)
    assert blocks["b_to_a_block"].shape == (L, 4, len(b), len(a))
    assert pair_blocks(probe(bert, TEXT))["a_to_b"] is None


# -- exports ---------------------------------------------------------------------------------
def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            _assert_same(getattr(a, name), getattr(b, name))
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    else:
        assert a == b


def test_json_round_trip(bert, tmp_path):
    x = analyze(bert, "the king [MASK] to the city .", pair="1 2")
    meta = {"model": bert.name, "top_k": 5}
    path = save_json(x, tmp_path / "probe.json", meta)
    y, meta_back = load_json(path)
    _assert_same(x, y)
    assert meta_back == meta
    with pytest.raises(InputError):
        load_json(tmp_path / "missing.json")


def test_csv_round_trip_and_tidy_rows(bert, tmp_path):
    x = analyze(bert, "1 king [MASK] , .", pair="she went")
    rows = tidy_rows(x, {"model": bert.name, "top_k": 5})
    path = save_csv(x, tmp_path / "probe.csv", {"model": bert.name, "top_k": 5})
    assert load_csv(path) == rows
    L, T = x.result.num_layers, len(x.result)
    heads = [r for r in rows if r["table"] == "heads"]
    assert len(heads) == L * 4 and heads[0]["model"] == bert.name
    assert heads[5]["to_cls"] == pytest.approx(float(x.attention.to_cls[1, 1]))
    tokens = [r for r in rows if r["table"] == "tokens"]
    assert [r["token"] for r in tokens] == x.result.token_strings  # "1" stays text
    assert len([r for r in rows if r["table"] == "layer_tokens"]) == (L + 1) * T
    assert len([r for r in rows if r["table"] == "transitions"]) == L


def test_probe_command_prints_and_writes_the_analysis(bert, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "p.npz"
    argv = [
        "probe",
        str(bert.path),
        "the king [MASK] to the city .",
        "--pair",
        "he went",
        "--top-k",
        "3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    expected = probe(bert, "the king [MASK] to the city .", pair="he went", top_k=3)
    m = expected.masked[0]
    assert f"[MASK] at {m.position}: {m.tokens[0]} {m.probs[0]:.3f}" in text
    assert "->[CLS]" in text and "1->2" in text
    data = np.load(out)
    L, T = expected.num_layers, len(expected)
    assert data["rollout"].shape == (L, T, T) and data["head_entropy"].shape == (L, 4)
    assert data["a_to_b"].shape == (L, 4) and list(data["masked_positions"]) == [m.position]
    np.testing.assert_array_equal(data["masked_0_ids"], m.ids)
    np.testing.assert_allclose(data["cosine_mean"], layer_stats(expected).cosine_mean, rtol=1e-6)
    angles = np.degrees(np.arccos(layer_stats(expected).cosine.astype(np.float64))).mean(1)
    np.testing.assert_allclose(data["angle_mean_deg"], angles, rtol=1e-5)
    assert data["head_to_punct_all"].shape == (L, 4)
    assert main([*argv[:-4], "--top-k", "0", "--out", str(out)]) == 2


def test_blas_is_limited_once_and_never_toggled(monkeypatch):
    """Changing OpenBLAS's thread count while another thread is inside a BLAS call can hang:
    the first analysis sets one thread for the process, later calls (any thread) leave it."""
    import threading

    from core.analysis import _threads

    limits = []

    class Controller:
        def limit(self, **kwargs):
            limits.append(kwargs)
            return object()

    monkeypatch.setattr(_threads, "ThreadpoolController", Controller)
    monkeypatch.setattr(_threads, "_limit", None)

    @_threads.single_threaded
    def analysis(x):
        return x @ x.T

    x = np.ones((4, 3))
    calls = [threading.Thread(target=analysis, args=(x,)) for _ in range(4)]
    for t in calls:
        t.start()
    for t in calls:
        t.join()
    np.testing.assert_array_equal(analysis(x), np.full((4, 4), 3.0))
    assert limits == [{"limits": 1, "user_api": "blas"}]
