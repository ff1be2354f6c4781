"""The model card says when a model's sentence objective is not its family's own (recorded in
config.json by the trainer), and says nothing for a model trained as its family is."""

from __future__ import annotations

import pytest

from app.probe.calls import describe_loaded
from core import load_model
from core.config import SENTENCE_OBJECTIVE_KEY
from tests.tiny_models import engine_checkpoint, tiny_config


@pytest.mark.parametrize(
    ("family", "objective", "note"),
    [
        ("bert", None, ""),  # no key (a transformers checkpoint): the family's own
        ("albert", "sop", ""),
        ("bert", "sop", " \u2014 trained with SOP instead of BERT's NSP"),
        ("albert", "nsp", " \u2014 trained with NSP instead of ALBERT's SOP"),
        ("albert", "none", " \u2014 trained on MLM alone (no SOP)"),
    ],
)
def test_the_card_names_a_swapped_or_absent_objective(tmp_path, family, objective, note):
    extra = {} if objective is None else {SENTENCE_OBJECTIVE_KEY: objective}
    folder = engine_checkpoint(tmp_path / "m", tiny_config(family).replace(extra=extra))
    row = describe_loaded(load_model(folder, device="cpu"))
    assert row.objective_note == note
    assert ("sop" in row.heads, "nsp" in row.heads) == (
        (objective or family) in ("sop", "albert"),
        (objective or family) in ("nsp", "bert"),
    )
