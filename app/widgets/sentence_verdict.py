"""One line for the sentence head's verdict on a pair (NSP: is B the next sentence; SOP: are A
and B in order), for one model (Probe) or side by side for two (Compare).

It renders ``ProbeResult.sentence_summary``, which core words; the logits go in the tooltip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

if TYPE_CHECKING:  # pragma: no cover
    from core.analysis.probe import ProbeResult

HELP = (
    "The pre-training sentence head's probability, read from [CLS]: BERT's NSP head (is the "
    "pair's B the sentence after A?) or ALBERT's SOP head (are A and B in their original "
    "order?). It needs a pair: type a second sentence."
)


class SentenceVerdict(QLabel):
    """The sentence head's line for each probe shown, named by its model when there are two."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("", parent)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_results(self, *results: ProbeResult) -> None:
        """One probe as its line; several as 'A: …  ·  B: …' (side by side)."""
        lines = [r.sentence_summary for r in results]
        if len(results) == 2:
            lines = [f"{side}: {line}" for side, line in zip("AB", lines, strict=True)]
        self.setText("  \u00b7  ".join(lines))
        details = [
            f"{r.model_name}: {r.sentence_summary}"
            + (
                f"; logits {r.sentence.logits[0]:.3f}, {r.sentence.logits[1]:.3f}"
                if r.sentence is not None
                else ""
            )
            for r in results
        ]
        self.setToolTip("\n".join([*details, "", HELP]))
