"""A comparison as one self-contained HTML file: the trade-off sentence, the cost table with
ratios, parameters by component, the memory breakdown and the layer transitions, plus any plots
the caller rendered, embedded as ``data:`` PNG images. No scripts, stylesheets, fonts or images
are fetched from anywhere: the file opens the same in any browser, offline.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from core.atomic import write_text_atomic
from core.cost.compare import Comparison
from core.cost.params import COMPONENTS
from core.cost.tradeoff import cost_rows, format_ratio, format_value, tradeoff_sentence

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #e8eef7; }
.sentence { font-size: 1.1em; background: #f4f7e8; padding: 0.6em; border-left: 4px solid #8a3; }
figure { display: inline-block; margin: 0.5em; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: list[str], rows: list[list[object]], tips: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        title = f' title="{_e(tips[i])}"' if tips and tips[i] else ""
        cells = "".join(f"<td>{_e(c)}</td>" for c in row)
        body.append(f"<tr{title}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def comparison_html(
    c: Comparison, images: dict[str, bytes] | None = None, title: str | None = None
) -> str:
    """The report as a string; ``images`` maps a caption to PNG bytes."""
    a, b = c.a, c.b
    title = title or f"{a.name} vs {b.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>BertScope comparison: {_e(title)}</h1>",
        f"<p>Sentence: <q>{_e(c.text)}</q>. Settings: batch {c.batch}, sequence {c.seq}, "
        f"{_e(c.precision)}, {_e(c.optimizer)}, device {_e(c.device)}.</p>",
        f'<p class="sentence">{_e(tradeoff_sentence(c))}</p>',
        "<h2>Cost</h2>",
    ]
    rows = cost_rows(c)
    parts.append(
        _table(
            ["section", "figure", a.name, b.name, "B / A", "source"],
            [
                [
                    r.section,
                    r.label,
                    format_value(r.a, r.unit),
                    format_value(r.b, r.unit),
                    format_ratio(r.ratio),
                    r.source,
                ]
                for r in rows
            ],
            [r.formula for r in rows],
        )
    )
    parts.append("<h2>Parameters by component (unique / effective)</h2>")
    comp_rows = []
    for comp in COMPONENTS:
        ca, cb = a.params.component(comp), b.params.component(comp)
        comp_rows.append(
            [comp, f"{ca.unique:,}", f"{ca.effective:,}", f"{cb.unique:,}", f"{cb.effective:,}",
             ca.formula]
        )  # fmt: skip
    parts.append(
        _table(
            ["component", f"{a.name} unique", f"{a.name} effective", f"{b.name} unique",
             f"{b.name} effective", f"formula ({a.name})"],
            comp_rows,
        )
    )  # fmt: skip
    parts.append("<h2>Memory, one training step (model)</h2>")
    parts.append(
        _table(
            ["item", a.name, b.name, f"formula ({a.name})"],
            [
                [i.name, format_value(i.bytes, "bytes"),
                 format_value(b.memory_training.get(i.name), "bytes"), i.formula]
                for i in a.memory_training.items
            ],
        )
    )  # fmt: skip
    if a.layers is not None and b.layers is not None:
        parts.append("<h2>Layer transitions of the sentence (ALBERT paper, Figure 1)</h2>")
        n = max(a.layers.num_layers, b.layers.num_layers)

        def cell(stats, name: str, i: int) -> str:
            values = getattr(stats, name)
            return f"{values[i]:.4f}" if i < len(values) else "-"

        fields = [("l2_mean", "L2"), ("cosine_mean", "cosine"), ("angle_mean_deg", "angle\u00b0")]
        fields = [(f, label) for f, label in fields if getattr(a.layers, f, None) is not None]
        parts.append(
            _table(
                ["layer", *(f"{label} {m.name}" for _f, label in fields for m in (a, b))],
                [
                    [f"{i}\u2192{i + 1}",
                     *(cell(m.layers, f, i) for f, _label in fields for m in (a, b))]
                    for i in range(n)
                ],
            )
        )  # fmt: skip
    if images:
        parts.append("<h2>Plots</h2>")
        for caption, png in images.items():
            if not png.startswith(PNG_MAGIC):
                raise ValueError(f"image {caption!r} is not a PNG")
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_e(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def save_comparison_html(
    c: Comparison,
    path: str | os.PathLike,
    images: dict[str, bytes] | None = None,
    title: str | None = None,
) -> Path:
    """Write :func:`comparison_html` atomically (temporary file, then rename)."""
    path = Path(path)
    write_text_atomic(path, comparison_html(c, images, title), newline="")
    return path
