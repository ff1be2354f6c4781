"""Export any analysis result to JSON (complete, reloadable) and to tidy CSV.

JSON keeps the whole dataclass tree: arrays as nested lists with their dtype, tuples tagged, the
class named, so :func:`load_json` rebuilds an equal object (float32 values survive exactly:
each becomes the double that represents it). A ``meta`` block carries model names and
settings.

CSV is *tidy* (Wickham 2014): one row per observation — per token, per layer transition, per
layer and head, per component, per memory item — in one long file with a ``table`` column
naming the kind of row, the ``meta`` fields repeated as leading columns, and an empty cell
where a column does not apply. :func:`load_csv` reads it back to the same rows.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis.attention import AttentionStats
from core.analysis.hidden_states import LayerStats
from core.analysis.probe import MaskPrediction, ProbeResult, TokenInfo
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
        TokenInfo, MaskPrediction, ProbeResult, LayerStats, AttentionStats, ProbeAnalysis,
        ComponentCount, ParamReport, MemoryItem, MemoryEstimate, MeasuredMemory, Latency,
        FlopsEstimate, ModelSummary, Comparison,
    )
}  # fmt: skip

# Columns that always hold text, even when a cell looks like a number (a token "1").
STRING_COLUMNS = frozenset({
    "table", "model", "model_type", "token", "component", "item", "group", "formula", "mode",
    "precision", "optimizer", "device", "method", "text", "pair", "term", "phase", "kind",
    "attention_kernel", "prediction", "peak_phase", "name",
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
def _f(x: Any) -> Any:
    """Python scalars for numpy values (float32 -> the double that represents it)."""
    return x.item() if isinstance(x, np.generic) else x


def _probe_rows(r: ProbeResult) -> list[dict]:
    rows = []
    for i, t in enumerate(r.tokens):
        rows.append(
            {
                "table": "tokens",
                "token_index": i,
                "token": t.text,
                "id": t.id,
                "special": t.special,
                "continuation": t.continuation,
                "start": t.span[0] if t.span else None,
                "end": t.span[1] if t.span else None,
                "segment": t.segment,
            }
        )
    for m in r.masked:
        for rank, (tok, tid, p) in enumerate(zip(m.tokens, m.ids, m.probs, strict=True), 1):
            rows.append(
                {
                    "table": "masked",
                    "token_index": m.position,
                    "rank": rank,
                    "prediction": tok,
                    "id": tid,
                    "prob": _f(p),
                }
            )
    return rows


def _layer_rows(s: LayerStats, tokens: list[str] | None = None) -> list[dict]:
    rows = []
    n_layers, n_tokens = s.norms.shape
    for layer in range(n_layers):
        for i in range(n_tokens):
            row = {"table": "layer_tokens", "layer": layer, "token_index": i}
            if tokens is not None:
                row["token"] = tokens[i]
            row["norm"] = _f(s.norms[layer, i])
            row["similarity_to_embedding"] = _f(s.similarity_to_embedding[layer, i])
            if layer > 0:
                row["l2_from_previous"] = _f(s.l2_distance[layer - 1, i])
                row["cosine_from_previous"] = _f(s.cosine[layer - 1, i])
                row["angle_deg_from_previous"] = _f(s.angle_deg[layer - 1, i])
            rows.append(row)
    for layer in range(s.num_layers):
        rows.append(
            {
                "table": "transitions",
                "layer": layer + 1,
                "l2_mean": _f(s.l2_mean[layer]),
                "cosine_mean": _f(s.cosine_mean[layer]),
                "l2_mean_words": _f(s.l2_mean_words[layer]),
                "cosine_mean_words": _f(s.cosine_mean_words[layer]),
                "angle_mean_deg": _f(s.angle_mean_deg[layer]),
                "angle_mean_deg_words": _f(s.angle_mean_deg_words[layer]),
            }
        )
    return rows


def _attention_rows(a: AttentionStats) -> list[dict]:
    rows = []
    n_layers, n_heads = a.entropy.shape
    for layer in range(n_layers):
        for head in range(n_heads):
            row = {"table": "heads", "layer": layer + 1, "head": head}
            for name in AttentionStats.PER_HEAD:
                row[name] = _f(getattr(a, name)[layer, head])
            rows.append(row)
    t = a.mean_maps.shape[-1]
    for layer in range(n_layers):
        for q in range(t):
            for k in range(t):
                rows.append(
                    {
                        "table": "attention_maps",
                        "layer": layer + 1,
                        "query": q,
                        "key": k,
                        "mean_attention": _f(a.mean_maps[layer, q, k]),
                        "rollout": _f(a.rollout[layer, q, k]),
                    }
                )
    return rows


def _analysis_rows(x: ProbeAnalysis) -> list[dict]:
    tokens = x.result.token_strings
    rows = _probe_rows(x.result) + _layer_rows(x.layers, tokens) + _attention_rows(x.attention)
    for layer in range(x.pca.shape[0]):
        for i in range(x.pca.shape[1]):
            rows.append(
                {
                    "table": "pca",
                    "layer": layer,
                    "token_index": i,
                    "token": tokens[i],
                    "pc1": _f(x.pca[layer, i, 0]),
                    "pc2": _f(x.pca[layer, i, 1]),
                    "pc1_variance": _f(x.pca_variance[layer, 0]),
                    "pc2_variance": _f(x.pca_variance[layer, 1]),
                }
            )
    if x.a_to_b is not None:
        for layer in range(x.a_to_b.shape[0]):
            for head in range(x.a_to_b.shape[1]):
                rows.append(
                    {
                        "table": "pair_blocks",
                        "layer": layer + 1,
                        "head": head,
                        "a_to_b": _f(x.a_to_b[layer, head]),
                        "b_to_a": _f(x.b_to_a[layer, head]),
                    }
                )
    return rows


def _param_rows(p: ParamReport) -> list[dict]:
    rows = [
        {
            "table": "params",
            "model": p.model,
            "component": c.component,
            "unique": c.unique,
            "effective": c.effective,
            "share_unique": c.share_unique,
            "share_effective": c.share_effective,
            "formula": c.formula,
        }
        for c in p.components
    ]
    rows.append(
        {
            "table": "params",
            "model": p.model,
            "component": "total",
            "unique": p.total_unique,
            "effective": p.total_effective,
            "share_unique": 1.0,
            "share_effective": 1.0,
        }
    )
    return rows


def _memory_rows(m: MemoryEstimate) -> list[dict]:
    return [
        {
            "table": "memory",
            "model": m.model,
            "mode": m.mode,
            "item": i.name,
            "group": i.group,
            "bytes": i.bytes,
            "formula": i.formula,
            "batch": m.batch,
            "seq": m.seq,
            "precision": m.precision,
            "optimizer": m.optimizer,
            "device": m.device,
            "attention_kernel": m.attention_kernel,
        }
        for i in m.items
    ]


def _measured_rows(m: MeasuredMemory, model: str | None = None) -> list[dict]:
    row = {"table": "measured_memory"}
    if model is not None:
        row["model"] = model
    row.update(dataclasses.asdict(m))
    return [row]


def _flops_rows(f: FlopsEstimate) -> list[dict]:
    rows = [
        {
            "table": "flops",
            "model": f.model,
            "term": k,
            "flops_per_token": v,
            "formula": f.formulas.get(k),
            "seq": f.seq,
        }
        for k, v in f.terms.items()
    ]
    for term, value in (
        ("forward", f.forward_per_token),
        ("training", f.training_per_token),
        ("6N approximation", f.approx_6n_per_token),
    ):
        rows.append(
            {
                "table": "flops",
                "model": f.model,
                "term": term,
                "flops_per_token": value,
                "formula": f.formulas.get(term),
                "seq": f.seq,
            }
        )
    return rows


def _latency_rows(lat: Latency, model: str | None = None) -> list[dict]:
    row = {"table": "latency"}
    if model is not None:
        row["model"] = model
    row.update(dataclasses.asdict(lat))
    return [row]


def _summary_rows(s: ModelSummary) -> list[dict]:
    rows = (
        _param_rows(s.params) + _memory_rows(s.memory_training) + _memory_rows(s.memory_inference)
    )
    for m in (s.measured_training, s.measured_inference):
        if m is not None:
            rows += _measured_rows(m, s.name)
    rows += _flops_rows(s.flops)
    if s.latency is not None:
        rows += _latency_rows(s.latency, s.name)
    rows += [{**r, "model": s.name} for r in _layer_rows(s.layers, s.tokens)]
    return rows


def tidy_rows(obj: Any, meta: dict | None = None) -> list[dict]:
    """One dict per observation, ``meta`` fields first, ``None`` cells left out."""
    if isinstance(obj, ProbeAnalysis):
        rows = _analysis_rows(obj)
    elif isinstance(obj, ProbeResult):
        rows = _probe_rows(obj)
    elif isinstance(obj, LayerStats):
        rows = _layer_rows(obj)
    elif isinstance(obj, AttentionStats):
        rows = _attention_rows(obj)
    elif isinstance(obj, ParamReport):
        rows = _param_rows(obj)
    elif isinstance(obj, MemoryEstimate):
        rows = _memory_rows(obj)
    elif isinstance(obj, MeasuredMemory):
        rows = _measured_rows(obj)
    elif isinstance(obj, FlopsEstimate):
        rows = _flops_rows(obj)
    elif isinstance(obj, Latency):
        rows = _latency_rows(obj)
    elif isinstance(obj, ModelSummary):
        rows = _summary_rows(obj)
    elif isinstance(obj, Comparison):
        rows = _summary_rows(obj.a) + _summary_rows(obj.b)
        meta = {
            "text": obj.text,
            "batch": obj.batch,
            "seq": obj.seq,
            "precision": obj.precision,
            "optimizer": obj.optimizer,
            "device": obj.device,
            **(meta or {}),
        }
    else:
        raise TypeError(f"no tidy table for {type(obj).__name__}")
    meta = meta or {}
    out = []
    for row in rows:
        merged = {**meta, **row}  # a row's own value wins (e.g. its model name)
        out.append({k: v for k, v in merged.items() if v is not None})
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


# -- probe arrays (the ``probe`` command's .npz/.json, and the window's NPZ export) ---------
def probe_arrays(x: ProbeAnalysis) -> dict[str, np.ndarray]:
    """Analysis arrays the ``probe`` command adds to its .npz/.json output."""
    arrays = {
        "norms": x.layers.norms,
        "l2_distance": x.layers.l2_distance,
        "cosine": x.layers.cosine,
        "l2_mean": x.layers.l2_mean,
        "cosine_mean": x.layers.cosine_mean,
        "angle_deg": x.layers.angle_deg,
        "angle_mean_deg": x.layers.angle_mean_deg,
        "similarity_to_embedding": x.layers.similarity_to_embedding,
        "pca": x.pca,
        "pca_variance": x.pca_variance,
        "mean_attention": x.attention.mean_maps,
        "rollout": x.attention.rollout,
    }
    for name in x.attention.PER_HEAD:
        arrays[f"head_{name}"] = getattr(x.attention, name)
    if x.attention.to_punct_all is not None:
        arrays["head_to_punct_all"] = x.attention.to_punct_all
    if x.a_to_b is not None:
        arrays["a_to_b"] = x.a_to_b
        arrays["b_to_a"] = x.b_to_a
    for i, m in enumerate(x.result.masked):
        arrays[f"masked_{i}_ids"] = np.asarray(m.ids, dtype=np.int64)
        arrays[f"masked_{i}_probs"] = m.probs
    if x.result.masked:
        arrays["masked_positions"] = np.asarray(
            [m.position for m in x.result.masked], dtype=np.int64
        )
    return arrays


def write_probe(
    out: Path, tokens: list[str], arrays: dict[str, np.ndarray], truncated: bool
) -> None:
    """Write probe arrays to .npz (arrays + tokens) or .json (nested lists), atomically."""
    if out.suffix != ".npz":
        payload = {
            "tokens": tokens,
            "truncated": truncated,
            **{k: v.tolist() for k, v in arrays.items()},
        }
        write_text_atomic(out, json.dumps(payload))
        return
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, tokens=np.asarray(tokens), truncated=np.asarray(truncated), **arrays)
