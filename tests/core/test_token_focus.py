"""Token focus for every token (ProbeAnalysis.focus): computed with the analysis, equal to
token_focus and the head-averaged maps row by row, with the sentence-pair filters; and not part
of what exports write."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.analysis import token_focus
from core.analysis.summary import ProbeAnalysis, analyze
from core.loaded_model import load_model
from tests.tiny_models import engine_checkpoint, tiny_config


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = engine_checkpoint(tmp_path_factory.mktemp("m") / "bert", tiny_config("bert"), seed=1)
    return load_model(folder, device="cpu")


def test_focus_rows_are_token_focus_and_mean_maps(bert):
    x = analyze(bert, "the king went to the city .", pair="he saw the water")
    assert "focus" in x.__dict__  # computed by analyze, not at the first click
    r = x.result
    t, layers, heads = len(r.tokens), r.num_layers, r.num_heads
    assert x.focus.heads.shape == (t, layers, heads, t)
    assert x.focus.mean.shape == (t, layers, t)
    for i in range(t):
        np.testing.assert_array_equal(x.focus.heads[i], token_focus(r, i))
        np.testing.assert_array_equal(x.focus.mean[i], x.attention.mean_maps[:, i, :])
    seq = [tok.sequence for tok in r.tokens]
    a = [i for i, s in enumerate(seq) if s == 0]
    b = [i for i, s in enumerate(seq) if s == 1]
    np.testing.assert_array_equal(x.focus.keep[0], np.ones((t, t)))
    expected_ab = np.zeros((t, t))
    expected_ab[np.ix_(a, b)] = 1.0
    np.testing.assert_array_equal(x.focus.keep[1], expected_ab)
    np.testing.assert_array_equal(x.focus.keep[2], expected_ab.T)
    assert x.focus.sources[1].tolist() == [s == 0 for s in seq]
    assert x.focus.sources[2].tolist() == [s == 1 for s in seq]
    assert x.focus.sources[0].all()
    # A -> B mass of one head, through the filter, is pair_blocks' a_to_b
    ab_mass = np.stack([(x.focus.heads[i] * x.focus.keep[1, i]).sum(-1) for i in a]).mean(0)
    np.testing.assert_allclose(ab_mass, x.a_to_b, rtol=1e-5, atol=1e-6)


def test_single_sentence_has_nothing_to_filter_and_exports_hold_no_focus(bert):
    x = analyze(bert, "the king went to the city .")
    assert not x.focus.sources[1:].any()
    assert not x.focus.keep[1:].any()
    assert "focus" not in {f.name for f in dataclasses.fields(ProbeAnalysis)}
