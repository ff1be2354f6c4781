"""Export any analysis result to JSON (complete, reloadable), to tidy CSV and, where it has
arrays, to NPZ: :func:`write` picks the format from the file name, for the CLI and the window.

JSON keeps the whole dataclass tree: arrays as nested lists with their dtype, tuples tagged, the
class named, so :func:`load_json` rebuilds an equal object (float32 values survive exactly:
each becomes the double that represents it). A ``meta`` block carries model names and
settings.

CSV is *tidy* (Wickham 2014): one row per observation — per token, per layer transition, per
layer and head, per component, per memory item — in one long file with a ``table`` column
naming the kind of row, the ``meta`` fields repeated as leading columns, and an empty cell
where a column does not apply. :func:`load_csv` reads it back to the same rows. Each result
type builds its own rows (``table_rows()``, next to its fields).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis.attention import AttentionStats
from core.analysis.hidden_states import LayerStats
from core.analysis.probe import MaskPrediction, ProbeResult, SentencePrediction, TokenInfo
from core.analysis.summary import ProbeAnalysis
from core.atomic import atomic_path, write_text_atomic
from core.cost.compare import Comparison, ModelSummary
from core.cost.flops import FlopsEstimate
from core.cost.measure import Latency, MeasuredMemory
from core.cost.memory import MemoryEstimate, MemoryItem
from core.cost.params import ComponentCount, ParamReport
from core.errors import InputError

FORMAT = "bertscope-analysis"
VERSION = 1

RESULT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        TokenInfo, MaskPrediction, SentencePrediction, ProbeResult, LayerStats, AttentionStats, ProbeAnalysis,
        ComponentCount, ParamReport, MemoryItem, MemoryEstimate, MeasuredMemory, Latency,
        FlopsEstimate, ModelSummary, Comparison,
    )
}  # fmt: skip

# Columns that always hold text, even when a cell looks like a number (a token "1").
STRING_COLUMNS = frozenset({
    "table", "model", "model_type", "token", "component", "item", "group", "formula", "mode",
    "precision", "optimizer", "device", "method", "text", "pair", "term", "phase", "kind",
    "attention_kernel", "prediction", "peak_phase", "name", "sentence_head", "label",
})  # fmt: skip


# -- JSON ----------------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """A JSON-ready tree of ``obj``: dataclasses tagged with ``__type__``, arrays with
    ``__ndarray__`` and dtype, tuples with ``__tuple__``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"__type__": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = to_jsonable(getattr(obj, f.name))
        return out
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [to_jsonable(v) for v in obj]}
    if isinstance(obj, list):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot export {type(obj).__name__} to JSON")


def from_jsonable(data: Any) -> Any:
    """The inverse of :func:`to_jsonable`."""
    if isinstance(data, list):
        return [from_jsonable(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__ndarray__" in data:
        arr = np.array(data["__ndarray__"], dtype=data["dtype"])
        return arr.reshape(data["shape"])
    if "__tuple__" in data:
        return tuple(from_jsonable(v) for v in data["__tuple__"])
    if "__type__" in data:
        name = data["__type__"]
        if name not in RESULT_TYPES:
            raise InputError(f"unknown result type {name!r} in the JSON file")
        cls = RESULT_TYPES[name]
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: from_jsonable(v) for k, v in data.items() if k in names}
        return cls(**kwargs)
    return {k: from_jsonable(v) for k, v in data.items()}


def dumps_json(obj: Any, meta: dict | None = None, indent: int | None = None) -> str:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": type(obj).__name__,
        "meta": to_jsonable(meta or {}),
        "result": to_jsonable(obj),
    }
    return json.dumps(payload, indent=indent)


def save_json(obj: Any, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``obj`` (any analysis result) and ``meta`` (model names, settings) atomically."""
    path = Path(path)
    write_text_atomic(path, dumps_json(obj, meta) + "\n", newline="")
    return path


def load_json(path: str | os.PathLike) -> tuple[Any, dict]:
    """Read a file written by :func:`save_json`: ``(result, meta)``."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a JSON file ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a BertScope analysis export")
    return from_jsonable(payload["result"]), from_jsonable(payload.get("meta", {}))


# -- tidy rows -----------------------------------------------------------------------------
def _python(value: Any) -> Any:
    """Python scalars for numpy values (float32 -> the double that represents it)."""
    return value.item() if isinstance(value, np.generic) else value


def tidy_rows(obj: Any, meta: dict | None = None) -> list[dict]:
    """One dict per observation (the result's own ``table_rows()``), its leading columns
    (``table_meta()``: a comparison's settings) and ``meta`` first, ``None`` cells left out."""
    if not hasattr(obj, "table_rows"):
        raise TypeError(f"no tidy table for {type(obj).__name__}")
    leading = {**(obj.table_meta() if hasattr(obj, "table_meta") else {}), **(meta or {})}
    out = []
    for row in obj.table_rows():
        merged = {**leading, **row}  # a row's own value wins (e.g. its model name)
        out.append({k: _python(v) for k, v in merged.items() if v is not None})
    return out


def _columns(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def dumps_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def save_csv(obj: Any, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write the tidy rows of ``obj`` (see :func:`tidy_rows`) atomically."""
    path = Path(path)
    write_text_atomic(path, dumps_csv(tidy_rows(obj, meta)), newline="")
    return path


def save_rows(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write already built tidy rows (e.g. several results concatenated) atomically."""
    path = Path(path)
    write_text_atomic(path, dumps_csv(rows), newline="")
    return path


_INT = re.compile(r"-?\d+")


def _parse(column: str, cell: str) -> Any:
    if column in STRING_COLUMNS:
        return cell
    if cell in ("True", "False"):
        return cell == "True"
    if _INT.fullmatch(cell):
        return int(cell)
    try:
        return float(cell)
    except ValueError:
        return cell


def load_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV written by :func:`save_csv`, empty cells left out, numbers parsed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    reader = csv.DictReader(io.StringIO(text))
    return [{k: _parse(k, v) for k, v in row.items() if v != ""} for row in reader]


# -- one writer, the format by suffix ------------------------------------------------------
ARRAY_FORMATS: tuple[str, ...] = (".json", ".npz")  # of a mapping of named arrays


def _save_npz(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _save_lists(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    write_text_atomic(path, json.dumps({k: np.asarray(v).tolist() for k, v in arrays.items()}))


def _writers(result: Any, meta: dict | None) -> dict[str, Callable[[Path], object]]:
    """Suffix -> writer, for the formats ``result`` has."""
    if isinstance(result, Mapping):  # named arrays (ARRAY_FORMATS), e.g. ProbeAnalysis.arrays()
        return {".json": partial(_save_lists, result), ".npz": partial(_save_npz, result)}
    writers: dict[str, Callable[[Path], object]] = {".json": partial(save_json, result, meta=meta)}
    if hasattr(result, "table_rows"):
        writers[".csv"] = partial(save_csv, result, meta=meta)
    if hasattr(result, "arrays"):
        writers[".npz"] = lambda path: _save_npz(result.arrays(), path)
    return writers


def check_suffix(path: str | os.PathLike, allowed: tuple[str, ...], option: str = "") -> Path:
    """``path`` if its suffix (in any case) is one of ``allowed``, else a one-line
    :class:`InputError` naming the suffix, the allowed ones and ``option`` (a CLI flag), so a
    command can refuse a file name before it does any work."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in allowed:
        given = f"unknown suffix {path.suffix!r}" if suffix else "no suffix"
        *others, last = allowed
        choices = f"{', '.join(others)} or {last}" if others else last
        raise InputError(f"{f'{option} ' if option else ''}{path}: {given}; choose {choices}")
    return path


def write(result: Any, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``result`` atomically in the format its file name's suffix names.

    ``.json``: the whole result, reloadable with :func:`load_json`, ``meta`` alongside;
    ``.csv``: its tidy rows (:func:`tidy_rows`), ``meta`` as leading columns; ``.npz``: its
    ``arrays()`` (a :class:`ProbeAnalysis`). A mapping of named arrays (what ``probe --out``
    writes) goes to ``.npz`` or to one flat ``.json`` object of lists; ``meta`` is not used.
    Any other suffix raises :class:`InputError` naming the ones ``result`` has.
    """
    writers = _writers(result, meta)
    path = check_suffix(path, tuple(writers))
    writers[path.suffix.lower()](path)
    return path
