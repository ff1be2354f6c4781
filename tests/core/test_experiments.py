"""The experiment runner: each recipe expands to its grid with one setting varied on a shared
base; --print-commands lines parse with the CLI's own parser; bad input is one line before any
run; --collect gives the runner's table; a half-finished grid resumes without rerunning
finished runs."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from core.cli import build_parser, main
from core.errors import InputError
from core.training import experiments as ex
from core.training.experiments import RECIPES, collect, plan, print_commands, run_grid
from tests.core.training_text import write_train_and_heldout

SHARED = ("steps", "batch_size", "seq_len", "lr", "vocab_size", "optimizer", "warmup")


def _differing(runs) -> set[str]:
    """Names of the TrainConfig / ModelConfig settings that differ between the runs."""
    names = set()
    first = runs[0].config
    for run in runs[1:]:
        for f in dataclasses.fields(first):
            if f.name in ("seed", "config_overrides"):
                continue
            if getattr(first, f.name) != getattr(run.config, f.name):
                names.add(f.name)
        keys = set(first.config_overrides) | set(run.config.config_overrides)
        names |= {
            k for k in keys if first.config_overrides.get(k) != run.config.config_overrides.get(k)
        }
    return names


EXPECTED = {
    "table3": ({"embedding_size", "sharing"}, 8),
    "table4": ({"embedding_size", "sharing"}, 8),
    "table5": ({"sentence_objective"}, 3),
    "table11": ({"num_hidden_layers"}, 5),
    "table8": (
        {
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "classifier_dropout_prob",
            "steps",
        },
        4,
    ),
    "bert-vs-albert": ({"arch", "preset", "sentence_objective"}, 2),  # each its own, as Table 2
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_each_recipe_expands_to_its_grid_with_only_its_setting_varied(tmp_path, recipe):
    varied, n_configs = EXPECTED[recipe]
    runs = plan(recipe, "tiny", 2, tmp_path)
    assert len(runs) == 2 * n_configs
    assert [r.seed for r in runs] == [0, 1] * n_configs
    assert _differing([r for r in runs if r.seed == 0]) == varied
    assert len({r.out for r in runs}) == len(runs)  # one folder per run
    for run in runs:
        shared = {k for k in SHARED if k != "steps" or "steps" not in varied}
        for name in shared:
            assert getattr(run.config, name) == getattr(runs[0].config, name)


def test_table5_varies_the_objective_on_one_albert():
    runs = plan("table5", "tiny", 1, "/tmp/unused")
    assert [r.config.sentence_objective for r in runs] == ["none", "nsp", "sop"]
    assert {r.config.arch for r in runs} == {"albert"}


def test_bad_input_is_one_line_before_any_run(tmp_path, capsys):
    with pytest.raises(InputError, match="unknown recipe 'table99'; choose one of table3"):
        plan("table99", "tiny", 1, tmp_path)
    with pytest.raises(InputError, match="seeds must be a positive integer, got 0"):
        plan("table5", "tiny", 0, tmp_path)
    with pytest.raises(InputError, match="unknown scale 'huge'"):
        plan("table5", "huge", 1, tmp_path)
    out = tmp_path / "grid"
    assert main(["experiment", "table5", "--seeds", "-1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: seeds must be a positive integer, got -1"
    assert not out.exists()


def test_printed_commands_parse_with_the_clis_own_parser(tmp_path):
    corpus = write_train_and_heldout(tmp_path, seed=3)
    runs = plan("table5", "tiny", 2, tmp_path / "grid")
    lines = print_commands(runs, [str(corpus / "train.txt")], [str(corpus / "heldout.txt")])
    assert len(lines) == 6
    parser = build_parser()
    for line, run in zip(lines, runs, strict=True):
        words = shlex.split(line)
        assert words[:3] == ["python", "-m", "core"]
        args = parser.parse_args(words[3:])
        assert args.command == "train" and args.out == str(run.out)
        assert ex.TrainConfig.load(args.config_file) == run.config
    assert (tmp_path / "grid" / "slurm_array.sh").read_text().count("--array=1-6") == 1
    # A started run continues from its checkpoint, with the settings it saved.
    (runs[1].out / "checkpoint-0000002").mkdir()
    words = ex.train_command(runs[1], [str(corpus / "train.txt")], [])
    assert words[-1] == "--resume" and "--config-file" not in words
    assert parser.parse_args(words[3:]).resume == "latest"


@pytest.mark.slow
def test_the_grid_resumes_and_collect_gives_the_runners_table(tmp_path, monkeypatch, capsys):
    corpus = write_train_and_heldout(tmp_path, seed=5)
    files, heldout = [str(corpus / "train.txt")], [str(corpus / "heldout.txt")]
    tiny = {"steps": 3, "batch_size": 4, "seq_len": 32, "vocab_size": 60, "size": "tiny"}
    monkeypatch.setitem(ex.SCALES, "tiny", tiny)
    runs = plan("table5", "tiny", 1, tmp_path / "grid")
    first = run_grid(runs[:1], files, heldout)  # half the grid, then the whole
    assert first == runs[:1]
    mtime = (runs[0].out / "final" / "training_summary.json").stat().st_mtime_ns
    seen = []
    trained = run_grid(runs, files, heldout, on_run=lambda i, r: seen.append(i))
    assert trained == runs[1:] and seen == [1, 2]
    assert (runs[0].out / "final" / "training_summary.json").stat().st_mtime_ns == mtime
    table = collect(tmp_path / "grid")
    assert [r.variant for r in table] == ["objectivenone", "objectivensp", "objectivesop"]
    assert all(r.n_seeds == 1 and r.sd["mlm_accuracy"] == 0.0 for r in table)
    assert "sentence_accuracy" not in table[0].mean  # MLM alone: no sentence head
    assert "nsp_zero_shot" not in table[0].mean and "hard-nsp_probe" in table[0].mean
    assert {"nsp_zero_shot", "sop_zero_shot", "hard-nsp_zero_shot"} <= set(table[2].mean)
    # A run scored elsewhere, or not yet: --collect scores it on the held-out text, the same.
    (runs[2].out / ex.TASKS_FILE).unlink()
    grid = ["experiment", "--collect", str(tmp_path / "grid"), "--eval-corpus", *heldout]
    assert main(grid) == 0
    assert capsys.readouterr().out.strip() == ex.format_table(table)
