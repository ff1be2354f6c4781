"""Export the probed sentence (File -> Export, Ctrl+E) through ``core.export.write``, the
writer the CLI uses: ``.json`` (the whole analysis, reloadable with ``load_json``), ``.csv``
(its tidy rows) or ``.npz`` (the arrays ``bertscope-cli probe --out`` writes, the same file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.summary import ProbeAnalysis


def export_analysis(analysis: ProbeAnalysis, path: Path) -> Path:
    """Write ``analysis`` to ``path``, the model and the sentence as the file's ``meta``."""
    from core.export import write

    result = analysis.result
    meta = {"model": result.model_name, "model_type": result.model_type, "text": result.text}
    if result.pair is not None:
        meta["pair"] = result.pair
    return write(analysis, path, meta)
