"""Neuron view: its softmax is the attention row; hooks leave the outputs unchanged."""

import numpy as np
import pytest
import torch

from core.analysis.neuron import neuron_view, query_keys
from core.loaded_model import build_model
from tests.tiny_models import tiny_config


@pytest.mark.parametrize("family", ["bert", "albert"])
def test_softmax_equals_attention_row_with_padding(family):
    torch.manual_seed(0)
    model = build_model(tiny_config(family))
    model.init_weights()
    model.eval()
    ids = torch.tensor([[2, 10, 11, 3, 12, 13, 3], [2, 14, 3, 15, 3, 0, 0]])
    mask = torch.tensor([[1] * 7, [1] * 5 + [0, 0]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]])
    with torch.no_grad():
        ref = model(ids, attention_mask=mask, token_type_ids=types, output_attentions=True)
    qk = query_keys(model, ids, mask, types)
    with torch.no_grad():
        again = model(ids, attention_mask=mask, token_type_ids=types, output_attentions=True)
    assert torch.equal(ref.hidden_states[-1], again.hidden_states[-1])
    assert qk.queries.shape[1] == len(ref.attentions)
    for item in range(2):
        for layer in range(len(ref.attentions)):
            for head in range(4):
                for query in range(5):
                    view = neuron_view(qk, layer, head, query, item)
                    row = ref.attentions[layer][item, head, query].numpy()
                    np.testing.assert_allclose(view.softmax, row, atol=1e-6)
                    real = qk.key_mask[item]
                    np.testing.assert_allclose(
                        view.q_times_k.sum(1)[real] / np.sqrt(8), view.scores[real], atol=1e-5
                    )
