"""Export the probed sentence through ``core``'s writers (File -> Export, Ctrl+E).

``.json``: ``core.export.save_json`` of the whole analysis (reloadable with
``load_json``); ``.csv``: its tidy rows (``save_csv``: one row per token, head, layer
transition, attention cell, PCA point); ``.npz``: the arrays the ``bertscope-cli probe``
command writes (``core.export.write_probe``), so files from the window and the CLI match.
All writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis

FORMATS = (".json", ".csv", ".npz")


def export_analysis(analysis: ProbeAnalysis, path: Path) -> Path:
    from core.errors import InputError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: choose a .json, .csv or .npz file name")
    result = analysis.result
    meta = {"model": result.model_name, "model_type": result.model_type, "text": result.text}
    if result.pair is not None:
        meta["pair"] = result.pair
    if suffix == ".json":
        from core.export import save_json

        return save_json(analysis, path, meta)
    if suffix == ".csv":
        from core.export import save_csv

        return save_csv(analysis, path, meta)
    from core.export import probe_arrays, write_probe

    arrays = {
        "input_ids": result.input_ids,
        "segment_ids": result.segment_ids,
        "hidden_states": result.hidden_states,
        "attentions": result.attentions,
    }
    if result.mlm_logits is not None:
        arrays["mlm_logits"] = result.mlm_logits
    arrays.update(probe_arrays(analysis))
    write_probe(path, result.token_strings, arrays, truncated=result.truncated)
    return path
