"""A user's labelled file as a task: CSV, TSV or JSON Lines with a text column, an optional
second text column (a sentence-pair task) and a label column, named by the user or detected;
a seeded, stratified train/dev/test split of one file; class counts and the majority-class
baseline shown before training. Every problem with the file is a one-line
:class:`~core.errors.InputError` naming the file, and the line or column at fault."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError

TEXT_NAMES = ("text", "sentence", "sentence1", "text_a", "question")
PAIR_NAMES = ("pair", "sentence2", "text_b", "text_pair")
LABEL_NAMES = ("label", "labels", "class", "category", "target")
# Empty texts are skipped and counted; more than this share of the rows refuses the file.
MAX_EMPTY_SHARE = 0.1


@dataclass(frozen=True)
class TaskSplit:
    """One split: texts, optional pairs, and label ids into the task's ``labels``."""

    texts: tuple[str, ...]
    pairs: tuple[str, ...] | None
    label_ids: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    train: TaskSplit
    dev: TaskSplit
    test: TaskSplit | None
    skipped_empty: int  # rows dropped for an empty or all-whitespace text

    def class_counts(self, split: str = "train") -> dict[str, int]:
        ids = getattr(self, split).label_ids
        counts = np.bincount(ids, minlength=len(self.labels))
        return {name: int(n) for name, n in zip(self.labels, counts, strict=True)}

    def majority_baseline(self, split: str = "dev") -> float:
        """Accuracy on ``split`` of always answering train's most frequent class."""
        majority = int(np.bincount(self.train.label_ids, minlength=len(self.labels)).argmax())
        return float((getattr(self, split).label_ids == majority).mean())


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{path}: line {line} is not UTF-8 (byte {data[err.start]:#04x})"
        ) from None


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a .csv, .tsv or .jsonl file as dicts of column -> value."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text = _decode(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}: line {n} is not JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}: line {n} is not a JSON object")
            rows.append(row)
        return rows
    if suffix not in (".csv", ".tsv"):
        raise InputError(f"{path}: unknown file type {suffix!r} (expected .csv, .tsv or .jsonl)")
    reader = csv.DictReader(
        io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",", strict=True
    )
    try:
        rows = list(reader)
    except csv.Error as err:
        raise InputError(f"{path}: line {reader.line_num}: broken quoting ({err})") from None
    for row in rows:
        if None in row:
            raise InputError(f"{path}: line {reader.line_num}: more fields than the header has")
    return rows


def _column(
    columns: list[str], chosen: str | None, names: tuple[str, ...], what: str, path: Path
) -> str | None:
    if chosen is not None:
        if chosen not in columns:
            raise InputError(f"{path}: no {what} column {chosen!r} (columns: {', '.join(columns)})")
        return chosen
    return next((c for c in columns if c.lower() in names), None)


def _numeric(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


Row = tuple[str, str | None, str]  # text, pair, label


def _read_labelled(
    path: Path, text_col: str | None, pair_col: str | None, label_col: str | None
) -> tuple[list[Row], int, tuple[str, str | None, str]]:
    """A file's usable rows, how many were skipped for an empty text, and the columns used."""
    rows = read_rows(path)
    if not rows:
        raise InputError(f"{path}: no rows")
    columns = list(rows[0])
    text_col = _column(columns, text_col, TEXT_NAMES, "text", path)
    label_col = _column(columns, label_col, LABEL_NAMES, "label", path)
    pair_col = _column(columns, pair_col, PAIR_NAMES, "pair", path)
    if text_col is None or label_col is None:
        missing = "text" if text_col is None else "label"
        raise InputError(
            f"{path}: no {missing} column found among {', '.join(columns)}: name it with "
            f"--{missing}-col"
        )
    kept, empty = [], 0
    for n, row in enumerate(rows, 1):
        text, label = row.get(text_col), row.get(label_col)
        if label is None or str(label).strip() == "":
            raise InputError(f"{path}: row {n} has no {label_col!r} value")
        if text is None or not str(text).strip():
            empty += 1
            continue
        pair = None if pair_col is None else str(row.get(pair_col) or "")
        kept.append((str(text), pair, str(label).strip()))
    if empty > MAX_EMPTY_SHARE * len(rows):
        raise InputError(
            f"{path}: {empty} of {len(rows)} rows have an empty {text_col!r} text "
            f"(more than {MAX_EMPTY_SHARE:.0%}); is it the right column?"
        )
    if all(_numeric(t) for t, _, _ in kept):
        raise InputError(
            f"{path}: the text column {text_col!r} holds only numbers; choose the text "
            "column with --text-col"
        )
    return kept, empty, (text_col, pair_col, label_col)


def _split(rows: list[Row], labels: tuple[str, ...], paired: bool, source: Path) -> TaskSplit:
    index = {name: i for i, name in enumerate(labels)}
    unseen = sorted({label for _, _, label in rows} - set(index))
    if unseen:
        raise InputError(
            f"{source}: label {unseen[0]!r} never occurs in train (train has {', '.join(labels)})"
        )
    return TaskSplit(
        texts=tuple(r[0] for r in rows),
        pairs=tuple(r[1] for r in rows) if paired else None,
        label_ids=np.array([index[r[2]] for r in rows], dtype=np.int64),
    )


def load_task(
    path: str | os.PathLike,
    text_col: str | None = None,
    pair_col: str | None = None,
    label_col: str | None = None,
    seed: int = 0,
    dev_share: float = 0.1,
    test_share: float = 0.1,
    dev_path: str | os.PathLike | None = None,
    test_path: str | os.PathLike | None = None,
) -> Task:
    """A labelled file as a task: split train/dev/test (stratified by label, by ``seed``), or,
    with ``dev_path`` (and ``test_path``), those files as dev and test, read with the
    training file's columns."""
    path = Path(path)
    kept, empty, (text_col, pair_col, label_col) = _read_labelled(
        path, text_col, pair_col, label_col
    )
    labels = tuple(sorted({label for _, _, label in kept}))
    if len(labels) < 2:
        raise InputError(
            f"{path}: only one class ({labels[0]!r}) in {label_col!r}: nothing to learn"
        )
    paired = pair_col is not None
    if dev_path is None:
        if test_path is not None:
            raise InputError(f"{test_path}: a test file needs a dev file too")
        ids = np.array([labels.index(label) for _, _, label in kept], dtype=np.int64)
        parts = stratified_split(ids, seed, dev_share, test_share)
        train, dev, test = ([kept[i] for i in idx] for idx in parts)
    else:
        train, test = kept, []
        dev, dev_empty, _ = _read_labelled(Path(dev_path), text_col, pair_col, label_col)
        empty += dev_empty
        if test_path is not None:
            test, test_empty, _ = _read_labelled(Path(test_path), text_col, pair_col, label_col)
            empty += test_empty
    return Task(
        name=path.stem,
        labels=labels,
        train=_split(train, labels, paired, path),
        dev=_split(dev, labels, paired, Path(dev_path or path)),
        test=_split(test, labels, paired, Path(test_path or path)) if test else None,
        skipped_empty=empty,
    )


def stratified_split(
    label_ids: np.ndarray, seed: int, dev_share: float, test_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, dev and test: within each class, a seeded shuffle cut by the shares
    (at least one dev example per class with two or more), so each split keeps the class
    proportions; the same seed gives the same split."""
    if not (0 < dev_share < 1 and 0 <= test_share < 1 and dev_share + test_share < 1):
        raise InputError(f"dev and test shares {dev_share}, {test_share}: each in [0, 1), sum < 1")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for cls in np.unique(label_ids):
        members = np.flatnonzero(label_ids == cls)
        members = members[rng.permutation(len(members))]
        n_dev = max(1, round(dev_share * len(members))) if len(members) > 1 else 0
        n_test = round(test_share * len(members))
        parts[1].extend(members[:n_dev])
        parts[2].extend(members[n_dev : n_dev + n_test])
        parts[0].extend(members[n_dev + n_test :])
    return tuple(np.sort(np.array(p, dtype=np.int64)) for p in parts)


def count_summary(task: Task) -> dict:
    """Class counts per split and the majority baseline: what is shown before training."""
    summary = {
        "labels": list(task.labels),
        "train": task.class_counts("train"),
        "dev": task.class_counts("dev"),
        "majority_dev_accuracy": task.majority_baseline("dev"),
        "skipped_empty": task.skipped_empty,
    }
    if task.test is not None:
        summary["test"] = task.class_counts("test")
    return summary
