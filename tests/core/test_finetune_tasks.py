"""User task files: column detection, the stratified split, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InputError
from core.finetune.tasks import count_summary, load_task, stratified_split


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _rows(n_a=30, n_b=10):
    return (
        "sentence,label\n"
        + "".join(f"the king went {i},a\n" for i in range(n_a))
        + "".join(f"she said {i},b\n" for i in range(n_b))
    )


def test_columns_are_detected_and_counts_and_baseline_shown(tmp_path):
    task = load_task(_csv(tmp_path, _rows()), seed=1)
    assert task.labels == ("a", "b") and task.train.pairs is None
    summary = count_summary(task)
    assert summary["dev"] == {"a": 3, "b": 1} and summary["test"] == {"a": 3, "b": 1}
    assert summary["train"] == {"a": 24, "b": 8}
    assert summary["majority_dev_accuracy"] == pytest.approx(0.75)


def test_stratified_split_is_deterministic_and_disjoint():
    ids = np.array([0] * 50 + [1] * 20 + [2] * 10)
    one = stratified_split(ids, 7, 0.1, 0.1)
    two = stratified_split(ids, 7, 0.1, 0.1)
    other = stratified_split(ids, 8, 0.1, 0.1)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert not np.array_equal(one[1], other[1])
    joined = np.concatenate(one)
    assert sorted(joined.tolist()) == list(range(80))
    assert np.bincount(ids[one[1]]).tolist() == [5, 2, 1]


def test_jsonl_and_tsv_with_a_pair_column(tmp_path):
    rows = [
        {"text": f"a {i}", "text_pair": f"b {i}", "label": "yes" if i % 2 else "no"}
        for i in range(20)
    ]
    jl = tmp_path / "p.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows))
    task = load_task(jl)
    assert task.train.pairs is not None and len(task.train.pairs) == len(task.train)
    tsv = _csv(
        tmp_path, "t\tp\ty\n" + "".join(f"x {i}\ty {i}\t{i % 2}\n" for i in range(20)), "p.tsv"
    )
    task = load_task(tsv, text_col="t", pair_col="p", label_col="y")
    assert task.labels == ("0", "1") and task.train.pairs[0].startswith("y ")


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (
            "words,label\nx,a\n",
            {},
            "no text column found among words, label: name it with --text-col",
        ),
        ("text,label\nx,a\n", {"label_col": "y"}, "no label column 'y' \\(columns: text, label\\)"),
        ("text,label\nx,a\ny,a\n", {}, "only one class \\('a'\\) in 'label'"),
        ("text,label\n1,a\n2,b\n3.5,a\n", {}, "text column 'text' holds only numbers"),
        ('text,label\nok,a\n"broken,b\nnext,a\n', {}, "line \\d+: broken quoting"),
        ("text,label\n,a\n ,b\nx,a\ny,b\n", {}, "2 of 4 rows have an empty 'text' text"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        load_task(_csv(tmp_path, content), **kwargs)
    assert "\n" not in str(err.value)


def test_non_utf8_names_its_line(tmp_path):
    path = _csv(tmp_path, b"text,label\nfine,a\ncaf\xe9,b\n")
    with pytest.raises(InputError, match="line 3 is not UTF-8"):
        load_task(path)


def test_a_few_empty_texts_are_skipped_and_counted(tmp_path):
    task = load_task(_csv(tmp_path, _rows() + " ,a\n"))
    assert task.skipped_empty == 1 and len(task.train) + len(task.dev) + len(task.test) == 40


def test_task_info_command_prints_counts_and_baseline(tmp_path, capsys):
    from core.cli import main

    assert main(["task-info", str(_csv(tmp_path, _rows())), "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"] == {"a": 24, "b": 8} and summary["majority_dev_accuracy"] == 0.75
    assert main(["task-info", str(_csv(tmp_path, "text,label\nx,a\n"))]) == 2
    assert "only one class" in capsys.readouterr().err


def test_separate_dev_file_and_a_label_train_never_saw(tmp_path):
    train = _csv(tmp_path, _rows(), "train.csv")
    dev = _csv(tmp_path, "sentence,label\nthe city,a\nthe day,b\n", "dev.csv")
    task = load_task(train, dev_path=dev)
    assert len(task.train) == 40 and task.dev.label_ids.tolist() == [0, 1] and task.test is None
    bad = _csv(tmp_path, "sentence,label\nthe city,a\nthe day,c\n", "bad.csv")
    with pytest.raises(InputError, match=r"bad\.csv: label 'c' never occurs in train"):
        load_task(train, dev_path=dev, test_path=bad)
