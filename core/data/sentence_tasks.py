"""Sentence-level evaluation sets built once from held-out text (the ALBERT paper's Table 5
scores every model on NSP *and* SOP): NSP (B is A's continuation, or a segment of another
document), SOP (A and B in order, or swapped) and hard-NSP (the negative from the *same*
document, at least ``k`` sentences away, so topic alone cannot solve it).

Label 0 is the coherent pair in all three (NSP's "is next", SOP's "in order"), as the training
data labels them; exactly half of every set is each label. A pair is a span of whole sentences
as A (up to half the token budget) and the sentences after it as B; the same ``seed`` gives the
same set, example for example.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.corpus_cache import TokenizedCorpus
from core.data.examples import truncate_pair
from core.errors import InputError

SENTENCE_TASKS: tuple[str, ...] = ("nsp", "sop", "hard-nsp")
EVAL_TASK_SEED = 20200226  # the sets' fixed seed unless one is given (ALBERT's ICLR date)


@dataclass(frozen=True)
class SentenceTaskSet:
    """``n`` pairs of one task as token spans of ``corpus``: A is ``tokens[a[i,0]:a[i,1]]``,
    B likewise; ``a_doc``/``b_doc`` their documents and ``a_end``/``b_start`` the sentence
    after A and B's first sentence (the construction's evidence, for tests and reports)."""

    task: str
    a: np.ndarray  # (n, 2) int64 token offsets
    b: np.ndarray  # (n, 2) int64
    labels: np.ndarray  # (n,) int64: 0 coherent (is next / in order), 1 not
    a_doc: np.ndarray  # (n,) int64
    b_doc: np.ndarray  # (n,) int64
    a_end: np.ndarray  # (n,) int64: index of the sentence after A's last
    b_start: np.ndarray  # (n,) int64: index of B's first sentence

    def __len__(self) -> int:
        return len(self.labels)


def _span(corpus: TokenizedCorpus, first: int, end: int, budget: int) -> int:
    """The sentence after the longest run from ``first`` (one sentence at least, before
    ``end``) that fits ``budget`` tokens."""
    stop, length = first, 0
    while stop < end and (stop == first or length + corpus.sentence_length(stop) <= budget):
        length += corpus.sentence_length(stop)
        stop += 1
    return stop


def _far(first: int, end: int, a_start: int, a_end: int, k: int) -> list[int]:
    """The sentences of a document [first, end) at least ``k`` sentences from A (sentences
    a_start .. a_end - 1): starting k or more after A's end, or ending k or more before it."""
    return [t for t in range(first, end) if t >= a_end - 1 + k or t + k <= a_start]


def build_sentence_task(
    corpus: TokenizedCorpus,
    task: str,
    n: int,
    seq_len: int = 128,
    seed: int = EVAL_TASK_SEED,
    min_distance: int = 3,
) -> SentenceTaskSet:
    """``n`` pairs (rounded down to even, at most the corpus's anchors) of ``task``, 50/50.

    Raises :class:`InputError` in one line where the task cannot be built: NSP with fewer
    than two documents, hard-NSP without a document long enough for a negative
    ``min_distance`` sentences away."""
    if task not in SENTENCE_TASKS:
        raise InputError(f"unknown sentence task {task!r}; choose {', '.join(SENTENCE_TASKS)}")
    if not isinstance(n, int) or n < 2:
        raise InputError(f"a sentence task needs at least 2 examples, got {n!r}")
    if min_distance < 1:
        raise InputError(f"hard-NSP distance must be >= 1 sentence, got {min_distance}")
    docs = [int(d) for d in corpus.documents]
    if task == "nsp" and len(docs) < 2:
        raise InputError(
            f"the NSP evaluation needs at least 2 documents (its negative comes from another "
            f"one); the held-out text has {len(docs)}"
        )
    # Anchors: (document, A's first sentence, the sentence after A) with at least one
    # sentence after A; hard-NSP also needs a sentence >= min_distance away, before or after.
    half = (seq_len - 3) // 2
    anchors = []
    for d in docs:
        first, end = (int(x) for x in corpus.sentences_of(d))
        for s in range(first, end - 1):
            a_end = _span(corpus, s, end - 1, half)  # leave a sentence for B
            if task != "hard-nsp" or _far(first, end, s, a_end, min_distance):
                anchors.append((d, s, a_end))
    if not anchors:
        raise InputError(
            f"the {task.upper()} evaluation needs documents of at least "
            f"{min_distance + 2 if task == 'hard-nsp' else 2} sentences; the held-out text "
            "has none"
        )
    rng = np.random.default_rng(seed)
    n = min(n, len(anchors)) // 2 * 2
    if n < 2:
        raise InputError(f"the held-out text holds too few sentence pairs for {task.upper()}")
    picked = rng.choice(len(anchors), size=n, replace=False)
    labels = rng.permutation(np.repeat(np.array([0, 1], np.int64), n // 2))
    offsets = corpus.sentence_offsets
    rows = []
    for index, label in zip(picked, labels, strict=True):
        d, s, a_end = anchors[int(index)]
        first, end = (int(x) for x in corpus.sentences_of(d))
        b_doc, b_start = d, a_end
        b_limit = int(corpus.sentences_of(d)[1])
        if label == 1 and task == "nsp":
            others = [o for o in docs if o != d]
            b_doc = others[int(rng.integers(len(others)))]
            o_first, o_end = (int(x) for x in corpus.sentences_of(b_doc))
            b_start, b_limit = int(rng.integers(o_first, o_end)), o_end
        elif label == 1 and task == "hard-nsp":
            far = _far(first, end, s, a_end, min_distance)
            b_start = far[int(rng.integers(len(far)))]
            b_limit = s if b_start < s else end  # B never runs into A
        b_end = _span(corpus, b_start, b_limit, half)
        a = [int(offsets[s]), int(offsets[a_end])]
        b = [int(offsets[b_start]), int(offsets[b_end])]
        la, lb = truncate_pair(a[1] - a[0], b[1] - b[0], seq_len - 3)
        a, b = [a[1] - la, a[1]], [b[0], b[0] + lb]  # keep the tokens next to the junction
        if label == 1 and task == "sop":
            a, b = b, a
        rows.append((a, b, int(label), d, b_doc, a_end, b_start))
    a, b, labels, a_doc, b_doc, a_end, b_start = zip(*rows, strict=True)
    return SentenceTaskSet(
        task=task,
        a=np.asarray(a, np.int64),
        b=np.asarray(b, np.int64),
        labels=np.asarray(labels, np.int64),
        a_doc=np.asarray(a_doc, np.int64),
        b_doc=np.asarray(b_doc, np.int64),
        a_end=np.asarray(a_end, np.int64),
        b_start=np.asarray(b_start, np.int64),
    )
