"""What the Train view asks the engine thread: the corpus check and the devices present.

Plain functions submitted to the engine (``core`` and torch are imported inside them, so the
GUI thread never pays for it). The training itself never runs here: it is a child process
(:mod:`app.train.runner`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

# BERT's pre-tokenizer splits words and punctuation; a trained WordPiece/Unigram vocabulary of
# 8000 pieces trained on the bundled corpus cuts about one piece per such word (measured on
# resources/corpus/heldout.txt: bert-mini's WordPiece 1.06, albert-mini's Unigram 0.99).
_PRE_TOKEN = re.compile(r"\w+|[^\w\s]")
PIECES_PER_WORD = 1.05


@dataclass(frozen=True)
class CorpusFigures:
    """What the form shows about the chosen files before a run starts."""

    files: int
    documents: int  # blank-line-separated blocks
    lines: int  # non-empty lines (sentences)
    characters: int
    words: int  # words and punctuation marks
    tokens_estimate: int  # word pieces, estimated

    def summary(self) -> str:
        return (
            f"{self.documents:,} documents, {self.lines:,} lines, {self.characters:,} "
            f"characters, \u2248{self.tokens_estimate:,} tokens"
        )


def check_corpus(paths: Sequence[str | os.PathLike], what: str = "corpus") -> CorpusFigures:
    """Core's corpus check (missing, empty, non-UTF-8 files fail with one line; it counts
    documents, lines and characters on the way), then the words for the token estimate."""
    from core.data import check_corpus as core_check
    from core.data import iter_documents

    checked = core_check(list(paths), what)
    words = sum(len(_PRE_TOKEN.findall(line)) for doc in iter_documents(checked) for line in doc)
    return CorpusFigures(
        files=len(checked),
        documents=checked.documents,
        lines=checked.lines,
        characters=checked.characters,
        words=words,
        tokens_estimate=round(words * PIECES_PER_WORD),
    )


@dataclass(frozen=True)
class Devices:
    """Which devices the trainer could use here (the form enables only these)."""

    cuda: bool
    mps: bool
    names: dict[str, str]  # "cpu"/"cuda"/"mps" -> core.device.describe_device text


def available_devices() -> Devices:
    import torch

    from core.device import describe_device

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    names = {"cpu": describe_device(torch.device("cpu"))}
    if cuda:
        names["cuda"] = describe_device(torch.device("cuda"))
    if mps:
        names["mps"] = describe_device(torch.device("mps"))
    return Devices(cuda=cuda, mps=mps, names=names)
