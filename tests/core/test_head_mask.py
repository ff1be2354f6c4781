"""Head masks (Michel et al. 2019's ξ_h = 0) against transformers with a forward pre-hook that
zeroes the head's slice of the attention output projection's input; ALBERT at one depth and in
the shared layer at every depth; every head off leaves the projection's bias; an empty mask is
bit-identical to the unmasked model."""

from __future__ import annotations

import pytest
import torch

from core import load_model
from core.analysis.ablation import ablate, depth_groups, head_mask, parse_heads
from core.analysis.probe import probe
from core.errors import InputError
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
)
ALBERT = dict(
    vocab_size=99,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=3,
    num_hidden_groups=1,
    inner_group_num=1,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=40,
)
IDS = torch.tensor([[2, 7, 12, 4, 30, 41, 9, 3]])


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = hf_checkpoint(tmp_path_factory.mktemp("m") / "bert", "BertForMaskedLM", **BERT)
    ref = transformers.BertForMaskedLM.from_pretrained(folder, attn_implementation="eager")
    return load_model(folder, device="cpu"), ref.eval()


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    folder = hf_checkpoint(tmp_path_factory.mktemp("m") / "albert", "AlbertForMaskedLM", **ALBERT)
    ref = transformers.AlbertForMaskedLM.from_pretrained(folder, attn_implementation="eager")
    return load_model(folder, device="cpu"), ref.eval()


def zero_head_hook(head: int, head_size: int, calls: set[int] | None = None):
    """A pre-hook on the output projection zeroing one head's slice of its input; with
    ``calls``, only at those uses of the module (0-based), i.e. those ALBERT depths."""
    seen = [0]

    def hook(module, inputs):
        (x,) = inputs
        use = seen[0]
        seen[0] += 1
        if calls is not None and use not in calls:
            return None
        x = x.clone()
        x[..., head * head_size : (head + 1) * head_size] = 0
        return (x,)

    return hook


def ours_logits(loaded, mask=None):
    with torch.no_grad():
        gates = None if mask is None else mask.tensor()
        return loaded.model(IDS, head_mask=gates).mlm_logits


def test_bert_head_mask_matches_transformers_hook(bert):
    loaded, ref = bert
    mask = head_mask(loaded, [(1, 2)])
    handle = ref.bert.encoder.layer[1].attention.output.dense.register_forward_pre_hook(
        zero_head_hook(2, 8)
    )
    try:
        with torch.no_grad():
            expected = ref(IDS).logits
    finally:
        handle.remove()
    got = ours_logits(loaded, mask)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
    assert (got - ours_logits(loaded)).abs().max() > 1e-3  # the head mattered
    assert mask.removed == 1
    assert head_mask(loaded, [(1, 2)], shared=True).removed == 1  # BERT: nothing shared


@pytest.mark.parametrize(("shared", "calls"), [(False, {1}), (True, None)])
def test_albert_head_mask_one_depth_and_every_depth(albert, shared, calls):
    loaded, ref = albert
    mask = head_mask(loaded, [(1, 3)], shared=shared)
    assert mask.removed == (3 if shared else 1)  # one shared layer, 3 depths
    dense = ref.albert.encoder.albert_layer_groups[0].albert_layers[0].attention.dense
    handle = dense.register_forward_pre_hook(zero_head_hook(3, 8, calls))
    try:
        with torch.no_grad():
            expected = ref(IDS).logits
    finally:
        handle.remove()
    torch.testing.assert_close(ours_logits(loaded, mask), expected, atol=TOL, rtol=0)


def test_depth_groups(bert, albert):
    assert depth_groups(bert[0]) == [[0], [1], [2]]
    assert depth_groups(albert[0]) == [[0, 1, 2]] * 3


def test_every_head_off_leaves_only_the_output_bias(bert):
    attn = bert[0].model.encoder.layer[0].attention
    x = torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, _ = attn(x, None, False, torch.zeros(4))
        expected = attn.LayerNorm(x + attn.dense.bias)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_empty_mask_is_bit_identical(bert, albert):
    for loaded, _ in (bert, albert):
        mask = head_mask(loaded, [])
        assert mask.empty and mask.tensor() is None
        intact = ours_logits(loaded)
        assert torch.equal(ours_logits(loaded, mask), intact)
        with torch.no_grad():  # all gates 1: the multiply by one changes no bit either
            ones = loaded.model(IDS, head_mask=torch.ones(3, 4)).mlm_logits
        assert torch.equal(ones, intact)


def test_ablate_reports_the_change(bert):
    loaded, _ = bert
    text = "the king [MASK] to the city ."
    result = ablate(loaded, text, None, head_mask(loaded, [(0, 0), (1, 2)]))
    assert len(result.changes) == 1
    change = result.changes[0]
    intact = probe(loaded, text)
    assert change.intact_top == intact.masked[0].tokens[0]
    ablated = torch.softmax(
        torch.from_numpy(result.ablated.mlm_logits[change.position]).double(), -1
    )
    assert change.ablated_prob == pytest.approx(float(ablated[intact.masked[0].ids[0]]), rel=1e-9)
    assert change.ablated_rank == int((ablated > ablated[intact.masked[0].ids[0]]).sum()) + 1


def test_bad_heads_are_one_line_errors(bert):
    loaded, _ = bert
    assert parse_heads("2.3, 4.1") == [(1, 2), (3, 0)]
    with pytest.raises(InputError, match="outside the model"):
        head_mask(loaded, [(3, 0)])
    with pytest.raises(InputError, match=r"head 5 is outside layer 1 \(1..4\)"):
        head_mask(loaded, [(0, 4)])
    for spec in ("2", "a.b", "0.1", "2.3.4"):
        with pytest.raises(InputError, match="mask-heads"):
            parse_heads(spec)
