"""Light and dark themes that follow the system (Qt 6.5+ ``styleHints().colorScheme()``).

The theme is a ``QPalette`` on the Fusion style; pyqtgraph canvases repaint themselves from the
palette when it changes (:class:`app.widgets.plot_canvas.PlotCanvas`), so switching needs no
bookkeeping in the views. Token colours (segment A/B, special tokens, [MASK]) are defined here
once for the strip, the axes and the plots.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
ATTENTION_COLORMAP = "inferno"  # perceptually uniform, dark = no attention
STAT_COLORMAP = "viridis"
FOCUS_OUTLINE = "#19c0f0"  # the clicked token's row in an attention heatmap (cyan on inferno)


@dataclass(frozen=True)
class TokenColors:
    segment_a: QColor
    segment_b: QColor
    special: QColor
    mask: QColor
    selected: QColor
    text: QColor
    unknown: QColor  # outline of tokens unknown to the vocabulary
    dropped: QColor  # text cut by truncation


# Token groups the plots colour by (token_categories): by vocabulary id, not by the spelling.
TEXT_A, TEXT_B, SPECIAL, MASK = 0, 1, 2, 3


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def token_colors(palette: QPalette | None = None) -> TokenColors:
    if is_dark(palette):
        return TokenColors(
            QColor("#2c4a6e"),
            QColor("#6e4a20"),
            QColor("#4a4a4a"),
            QColor("#7a2a4a"),
            QColor("#f0c419"),
            QColor("#e8e8e8"),
            QColor("#ff5a5a"),
            QColor("#7c7c7c"),
        )
    return TokenColors(
        QColor("#d6e6f7"),
        QColor("#fde2c4"),
        QColor("#e2e2e2"),
        QColor("#f6c8dc"),
        QColor("#d08c00"),
        QColor("#1e1e1e"),
        QColor("#d62728"),
        QColor("#9a9a9a"),
    )


def segment_pens(palette: QPalette | None = None) -> tuple[QColor, QColor, QColor]:
    """Saturated colours for points and bars: segment A, segment B, special tokens."""
    if is_dark(palette):
        return QColor("#5aa9ff"), QColor("#ffa64d"), QColor("#a0a0a0")
    return QColor("#1f6fc5"), QColor("#d9730d"), QColor("#7a7a7a")


def token_pens(palette: QPalette | None = None) -> tuple[QColor, QColor, QColor, QColor]:
    """:func:`segment_pens` plus [MASK] pink: one colour per :func:`token_categories` group."""
    mask = QColor("#ff6fae") if is_dark(palette) else QColor("#d6337a")
    return (*segment_pens(palette), mask)


def system_scheme_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(37, 37, 40), QColor(26, 26, 28), QColor(226, 226, 226)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(44, 44, 48),
        QPalette.ColorRole.ToolTipBase: QColor(50, 50, 54),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(48, 48, 52),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: QColor(90, 169, 255),
        QPalette.ColorRole.Highlight: QColor(58, 110, 165),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Light: QColor(70, 70, 74),
        QPalette.ColorRole.Midlight: QColor(56, 56, 60),
        QPalette.ColorRole.Mid: QColor(44, 44, 48),
        QPalette.ColorRole.Dark: QColor(20, 20, 22),
        QPalette.ColorRole.Shadow: QColor(0, 0, 0),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def light_palette() -> QPalette:
    app = QApplication.instance()
    return app.style().standardPalette() if app is not None else QPalette()


def resolve(name: str) -> str:
    """'system' -> 'light' or 'dark' as the desktop says; others unchanged."""
    if name not in THEMES:
        name = "system"
    if name == "system":
        return "dark" if system_scheme_is_dark() else "light"
    return name


def apply_theme(name: str) -> str:
    """Apply ``name`` ('system', 'light', 'dark') to the application; returns the resolved one."""
    app = QApplication.instance()
    if app is None:
        return resolve(name)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    resolved = resolve(name)
    app.setPalette(dark_palette() if resolved == "dark" else light_palette())
    return resolved


def display_token(text: str) -> str:
    """A token as the views label it: SentencePiece's word-start mark "▁" is dropped (the strip
    shows word starts by spacing), a lone "▁" stays visible. Tooltips and read-outs keep the
    exact token."""
    return text[1:] if text.startswith("\u2581") and len(text) > 1 else text


def _by_id(result, role: str):
    """``result.ids_of(role)``; for a bare list of tokens (no vocabulary ids known) all False."""
    import numpy as np

    if hasattr(result, "ids_of"):
        return result.ids_of(role)
    return np.zeros(len(result), dtype=bool)


def token_label_style(result, palette: QPalette | None = None):
    """Axis label texts, colours and bold flags for a ``core`` ProbeResult (or a plain list of
    its TokenInfo): special tokens grey and bold, [MASK] pink and bold, unknown tokens red (both
    recognised by id, so only with a ProbeResult), text B in the segment-B colour, text A in the
    default colour."""
    _, seg_b, special, mask_pen = token_pens(palette)
    unknown = token_colors(palette).unknown
    masks, unknowns = _by_id(result, "mask"), _by_id(result, "unk")
    tokens = result.tokens if hasattr(result, "tokens") else list(result)
    labels = [display_token(t.text) for t in tokens]
    colors = []
    for i, t in enumerate(tokens):
        if masks[i]:
            colors.append(mask_pen)
        elif unknowns[i]:
            colors.append(unknown)
        else:
            colors.append(special if t.special else (seg_b if t.segment == 1 else None))
    bold = [bool(t.special or masks[i]) for i, t in enumerate(tokens)]
    return labels, colors, bold


def token_categories(result):
    """Per token TEXT_A, TEXT_B, SPECIAL or MASK (by id), to draw each group with one brush."""
    import numpy as np

    tokens = result.tokens if hasattr(result, "tokens") else list(result)
    groups = np.array(
        [SPECIAL if t.special else (TEXT_B if t.segment == 1 else TEXT_A) for t in tokens],
        dtype=np.int64,
    )
    groups[_by_id(result, "mask")] = MASK
    return groups
