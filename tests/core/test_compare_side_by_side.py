"""The Compare view's maths in core: character alignment of two tokenizations (the shipped demo
models' WordPiece and Unigram tokenizers), relative-depth layer links, per-layer head
statistics, masked words matched by offset, the cost table and trade-off sentence, the
calculator against the ALBERT paper, the HTML report and the ``compare`` CLI defaults."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.analysis import attention_stats, layer_stats, probe
from core.analysis.side_by_side import (
    HEAD_SUMMARY_FIELDS,
    align_tokens,
    depth_link,
    head_summary,
    mask_offsets,
    match_masks,
    matching_layer,
    relative_depth,
)
from core.cli import main
from core.config import preset
from core.cost.calculator import (
    PAPER_CONFIGS,
    XXLARGE_NOTE,
    calculate,
    make_config,
    paper_config,
    relative_difference,
)
from core.cost.memory import inference_memory, training_memory
from core.cost.params import param_report
from core.cost.tradeoff import (
    cost_rows,
    default_seq,
    measure_pair,
    memory_groups,
    predicted_comparison,
    tradeoff_sentence,
)
from core.errors import ConfigError, InputError
from core.export import load_json, save_json
from core.loaded_model import load_model
from core.report import comparison_html, save_comparison_html
from tests.tiny_models import engine_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[2]
DEMOS = ROOT / "resources" / "models"
SENTENCE = "the shepherdess walked unto jerusalem , weeping bitterly ."


@pytest.fixture(scope="module")
def demos():
    return load_model(DEMOS / "bert-mini"), load_model(DEMOS / "albert-mini")


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    a = engine_checkpoint(root / "bert", tiny_config("bert"), seed=1)
    b = engine_checkpoint(root / "albert", tiny_config("albert", inner_group_num=2), seed=2)
    return a, b


# -- alignment ---------------------------------------------------------------------------
def test_alignment_maps_wordpiece_and_unigram_splits(demos):
    bert, albert = demos
    ra, rb = probe(bert, SENTENCE), probe(albert, SENTENCE)
    ta, tb = ra.token_strings, rb.token_strings
    # the two tokenizers really split these words differently
    assert ta[2:4] == ["shepherd", "##ess"] and tb[2:4] == ["\u2581shepherd", "ess"]
    assert "weeping" in ta and "\u2581weep" in tb and "ing" in tb
    links = align_tokens(ra, rb)
    assert links[ta.index("weeping")] == [tb.index("\u2581weep"), tb.index("ing")]
    assert links[ta.index("bitterly")] == [tb.index("\u2581bitter"), tb.index("ly")]
    assert links[ta.index("##ess")] == [tb.index("ess")]
    assert links[0] == [0]  # [CLS]
    assert links[len(ta) - 1] == [len(tb) - 1]  # [SEP]
    # the other way round: "ing" covers characters of "weeping" only
    back = align_tokens(rb, ra)
    assert back[tb.index("ing")] == [ta.index("weeping")]
    # a bare "▁" is the word start of the punctuation after it: it covers the same character
    comma = tb.index(",")
    assert tb[comma - 1] == "\u2581"
    assert back[comma - 1] == back[comma] == [ta.index(",")]


def test_alignment_of_pairs_keeps_the_texts_apart(demos):
    bert, albert = demos
    ra = probe(bert, "the lord came .", "the lord went .")
    rb = probe(albert, "the lord came .", "the lord went .")
    links = align_tokens(ra, rb)
    lord_a = [i for i, t in enumerate(ra.tokens) if t.text == "lord"]
    lord_b = [i for i, t in enumerate(rb.tokens) if t.text == "\u2581lord"]
    assert [links[i] for i in lord_a] == [[lord_b[0]], [lord_b[1]]]
    seps_a = [i for i, t in enumerate(ra.tokens) if t.text == "[SEP]"]
    seps_b = [i for i, t in enumerate(rb.tokens) if t.text == "[SEP]"]
    assert [links[i] for i in seps_a] == [[seps_b[0]], [seps_b[1]]]
    with pytest.raises(InputError, match="same text"):
        align_tokens(ra, probe(albert, "another text"))


# -- depth and head statistics -------------------------------------------------------------
def test_relative_depth_links():
    assert matching_layer(2, 4, 12) == 8  # layer 3 of 4 -> layer 9 of 12
    assert matching_layer(0, 4, 12) == 2
    assert matching_layer(3, 4, 12) == 11
    assert matching_layer(5, 12, 4) == 1  # layer 6 of 12 -> layer 2 of 4
    assert [matching_layer(i, 4, 4) for i in range(4)] == [0, 1, 2, 3]
    assert matching_layer(1, 2, 4) == 3
    assert depth_link(2, 4, 5, 12) == (
        "layer 3 of 4 \u2194 layer 6 of 12 (nearest relative depth: 3/4 = 0.75, 6/12 = 0.50)"
    )
    assert depth_link(2, 4, 5, 8) == "layer 3 of 4 \u2194 layer 6 of 8 (same relative depth)"
    assert depth_link(1, 4, 1, 4) == "layer 2 of 4 \u2194 layer 2 of 4"
    np.testing.assert_allclose(relative_depth(4), [0.25, 0.5, 0.75, 1.0])
    with pytest.raises(InputError):
        matching_layer(4, 4, 12)


def test_head_summary_is_the_head_mean(demos):
    result = probe(demos[1], SENTENCE)
    stats = attention_stats(result)
    summary = head_summary(stats)
    assert set(summary) == set(HEAD_SUMMARY_FIELDS)
    for name, values in summary.items():
        assert values.shape == (result.num_layers,)
        np.testing.assert_allclose(values, getattr(stats, name).mean(axis=1), rtol=1e-6)
    # entropy by hand for layer 0: mean over heads and queries of -sum p log p
    a = result.attentions[0].astype(np.float64)
    by_hand = -(a * np.log(np.where(a > 0, a, 1))).sum(-1).mean()
    assert summary["entropy"][0] == pytest.approx(by_hand, rel=1e-5)


def test_masks_matched_by_character_offset(demos):
    bert, albert = demos
    text = "the [MASK] of the lord came upon [MASK] ."
    ra, rb = probe(bert, text), probe(albert, text)
    second = text.index("[MASK]", 5)
    assert mask_offsets(ra) == mask_offsets(rb) == [(0, 4), (0, second)]
    pairs = match_masks(ra, rb)
    assert [(p.sequence, p.start) for p in pairs] == [(0, 4), (0, second)]
    for pair, pa, pb in zip(pairs, ra.masked, rb.masked, strict=True):
        assert pair.a is pa and pair.b is pb
        assert ra.tokens[pa.position].span[0] == pair.start
        # ALBERT's [MASK] absorbs the space before it (as transformers' AlbertTokenizer)
        assert rb.tokens[pb.position].span == (pair.start - 1, pair.start + len("[MASK]"))


# -- cost table -----------------------------------------------------------------------------
def test_predicted_comparison_equals_the_memory_and_param_models(demos):
    bert, albert = demos
    ra, rb = probe(bert, SENTENCE), probe(albert, SENTENCE)
    c = predicted_comparison(
        bert, albert, SENTENCE, 4, 64, "bf16", "lamb",
        (layer_stats(ra), layer_stats(rb)), (ra.token_strings, rb.token_strings),
    )  # fmt: skip
    assert c.a.params.total_unique == sum(p.numel() for p in bert.model.parameters())
    assert c.b.params.total_unique == sum(p.numel() for p in albert.model.parameters())
    expected = training_memory(albert.model, 4, 64, "bf16", "lamb", "cpu", albert.name)
    assert c.b.memory_training.total == expected.total
    assert (
        c.b.memory_inference.total
        == inference_memory(albert.model, 4, 64, "bf16", True, "cpu").total
    )
    groups = memory_groups(c.b.memory_training)
    assert groups["weights"] == 4 * c.b.params.total_unique
    assert groups["optimizer states"] == 8 * c.b.params.total_unique
    rows = {(r.section, r.label): r for r in cost_rows(c)}
    unique = rows[("parameters", "unique (stored)")]
    assert unique.ratio == pytest.approx(c.b.params.total_unique / c.a.params.total_unique)
    assert rows[("memory: training", "peak (measured)")].a is None
    sentence = tradeoff_sentence(c)
    share = c.b.params.total_unique / c.a.params.total_unique
    assert sentence.startswith(f"albert-mini: {share:.0%} of bert-mini's parameters")
    assert "at 4 \u00d7 64 bf16 (predicted)" in sentence
    assert default_seq(bert.config, albert.config) == 128
    assert default_seq(tiny_config("bert")) == 64


def test_measure_pair_yields_progress_and_fills_measurements(tiny_pair):
    a, b = (load_model(p) for p in tiny_pair)
    c = predicted_comparison(a, b, "the lord", 2, 16)
    gen = measure_pair(c, a, b, runs=1)
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        measured = stop.value
    assert [s.done for s in steps] == [1, 2, 3, 4, 5, 6]
    assert measured.a.measured_training.peak > 0 and measured.b.latency.tokens_per_s > 0
    assert measured.a.memory_training == c.a.memory_training
    assert "(measured)" in tradeoff_sentence(measured)
    # closing the generator between steps stops it: nothing else is measured
    gen = measure_pair(c, a, b, runs=1)
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)


# -- calculator -----------------------------------------------------------------------------
@pytest.mark.parametrize("paper", PAPER_CONFIGS, ids=lambda p: p.label)
def test_calculator_reproduces_the_paper(paper):
    ours = calculate(paper.config).params.backbone_unique
    if paper.note:  # ALBERT-xxlarge: the architecture gives 222.6M, not the printed 235M
        assert paper.note == XXLARGE_NOTE
        assert ours == pytest.approx(222.6e6, rel=1e-3)
        assert relative_difference(ours, paper.published) == pytest.approx(-0.0528, abs=1e-3)
    else:
        assert abs(relative_difference(ours, paper.published)) < 0.03


def test_make_config_fields_and_errors():
    albert = make_config("albert", 30000, 128, 768, 12, 12, 3072, "attention")
    assert albert == preset("albert-base", sharing="attention")
    assert param_report(albert).backbone_unique == calculate(albert).params.backbone_unique
    grouped = make_config("albert", 30000, 128, 768, 12, 12, 3072, "all", groups=2, inner=2)
    assert grouped.effective_layers == 24 and grouped.num_hidden_groups == 2
    bert = make_config("bert", 30522, 999, 768, 12, 12, 3072)
    assert bert == preset("bert-base")
    with pytest.raises(ConfigError, match="not divisible"):
        make_config("bert", 100, 32, 30, 2, 4, 64)
    with pytest.raises(ConfigError, match="num_hidden_groups 5 does not divide"):
        make_config("albert", 100, 16, 32, 12, 4, 64, groups=5)
    assert paper_config("BERT-large").published == 334e6


def test_calculation_memory_equals_the_model():
    config = preset("albert-large")
    calc = calculate(config, 2, 256, "fp16", "adamw")
    assert calc.training.total == training_memory(config, 2, 256, "fp16", "adamw", "cpu").total
    assert calc.flops.forward_per_token > 0


# -- report and JSON -----------------------------------------------------------------------
def _png() -> bytes:
    # a 1x1 PNG, written by hand so core stays free of image libraries
    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )


def test_report_html_is_self_contained(demos, tmp_path):
    bert, albert = demos
    ra, rb = probe(bert, SENTENCE), probe(albert, SENTENCE)
    c = predicted_comparison(bert, albert, SENTENCE, layers=(layer_stats(ra), layer_stats(rb)))
    path = save_comparison_html(c, tmp_path / "r.html", {"curves": _png()})
    text = path.read_text(encoding="utf-8")
    assert text.count("<table>") == 4
    assert 'src="data:image/png;base64,' in text
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", text)
    assert tradeoff_sentence(c).replace("'", "&#x27;") in text
    with pytest.raises(ValueError, match="not a PNG"):
        comparison_html(c, {"x": b"GIF89a"})
    # JSON of the window's comparison has the CLI's schema and both models
    save_json(c, tmp_path / "c.json", {"model_a": "bert-mini", "model_b": "albert-mini"})
    loaded, meta = load_json(tmp_path / "c.json")
    assert (loaded.a.name, loaded.b.name) == ("bert-mini", "albert-mini")
    assert type(loaded).__name__ == "Comparison" and meta["model_b"] == "albert-mini"


# -- CLI --------------------------------------------------------------------------------------
def test_cli_compare_default_seq_fits_short_models(tiny_pair, capsys, tmp_path):
    a, b = tiny_pair  # 64 positions each
    out_json = tmp_path / "cmp.json"
    assert (
        main(["compare", str(a), str(b), "the lord", "--no-measure", "--json", str(out_json)]) == 0
    )
    assert "settings: batch 8, seq 64" in capsys.readouterr().out
    assert load_json(out_json)[0].seq == 64


def test_cli_compare_explicit_seq_too_long_is_an_error(tiny_pair):
    a, b = tiny_pair
    done = subprocess.run(
        [sys.executable, "-m", "core", "compare", str(a), str(b), "the lord", "--seq", "128",
         "--no-measure"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: seq 128 is longer than the model's 64 positions"
    ]
