"""Pretraining data: plain-text corpus -> MLM + NSP (BERT) or MLM + SOP (ALBERT) batches.

Follows Google's ``create_pretraining_data.py`` for BERT (Devlin et al. 2019) and ALBERT
(Lan et al. 2020), with three deliberate changes, each explained where it happens:

- *Corpus.* One document per blank-line-separated block (or per file); each line is a
  sentence. The text is streamed through the tokenizer into memory-mapped arrays in a cache
  folder, so a corpus larger than memory costs disk, not RAM, and any document can still be
  read at random (NSP needs a random *other* document).
- *Pairs.* Segments fill up to ``seq_len - 3`` tokens; 10% of the time a shorter target
  length is drawn (per sequence here; per document in Google's code). A chunk is split into
  A and B at a sentence boundary. BERT's NSP replaces B with text from another document half
  the time (label 1 = random, as transformers' ``next_sentence_label``); ALBERT's SOP swaps
  A and B half the time (label 1 = swapped, as ``sentence_order_label``). A chunk of a single
  long sentence is cut inside the sentence, so both segments are real consecutive text, and
  over-long pairs are trimmed away from the A|B junction, which is what NSP/SOP look at.
- *Masking* is drawn when a batch is made, from a generator seeded by (seed, epoch, example
  index): masks differ every epoch, and every example's mask is the same whichever process
  (rank) or step builds it. 15% of the non-special positions (at most ``max_predictions``)
  are predicted; of those 80% become the mask token, 10% a random token, 10% stay. ALBERT
  masks n-grams of whole words, n <= 3 with p(n) proportional to 1/n (6/11, 3/11, 2/11);
  the length is drawn before the place, so the lengths that reach the model keep that law.

Examples of an epoch form one stream, identical on every rank; a training step takes the
next ``batch x grad_accum x world_size`` of them and rank r keeps its own slice. The stream
position (epoch, index) is all a checkpoint needs to resume exactly where it stopped.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer as HFTokenizer

from core.errors import InputError
from core.tokenizer import Tokenizer

log = logging.getLogger(__name__)

TASKS = ("nsp", "sop")


# -- settings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataConfig:
    seq_len: int = 128  # longest sequence, [CLS] A [SEP] B [SEP] included
    task: str = "nsp"  # sentence task: "nsp" (BERT) or "sop" (ALBERT)
    short_seq_prob: float = 0.1  # chance that a sequence gets a random shorter target length
    mlm_probability: float = 0.15  # share of non-special positions the model must predict
    mask_token_prob: float = 0.8  # of those: replaced by the mask token ...
    random_token_prob: float = 0.1  # ... by a random token (the rest stay unchanged)
    max_predictions: int | None = None  # cap per sequence; None: round(0.15 * seq_len) + 1
    max_ngram: int = 1  # ALBERT: spans of up to 3 words, p(n) proportional to 1/n
    whole_word: bool = False  # mask all pieces of a word together
    shuffle_buffer: int = 1000  # examples mixed across documents before batching

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown sentence task {self.task!r}; expected 'nsp' or 'sop'")
        if not isinstance(self.seq_len, int) or self.seq_len < 8:
            raise InputError(f"sequence length must be an integer >= 8, got {self.seq_len!r}")
        for name in ("short_seq_prob", "mlm_probability", "mask_token_prob", "random_token_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value!r}")
        if self.mask_token_prob + self.random_token_prob > 1.0:
            raise InputError("mask_token_prob + random_token_prob must not exceed 1")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise InputError(f"max_predictions must be >= 1, got {self.max_predictions!r}")
        if not 1 <= self.max_ngram <= 10:
            raise InputError(f"max_ngram must be in 1..10, got {self.max_ngram!r}")

    @classmethod
    def for_model(cls, model_type: str, seq_len: int = 128, **changes) -> DataConfig:
        """BERT: NSP and single-token masking; ALBERT: SOP and whole-word n-gram masking."""
        if model_type == "bert":
            return cls(seq_len=seq_len, task="nsp", max_ngram=1, whole_word=False, **changes)
        if model_type == "albert":
            return cls(seq_len=seq_len, task="sop", max_ngram=3, whole_word=True, **changes)
        raise InputError(f"unknown model type {model_type!r}; expected 'bert' or 'albert'")

    @property
    def predictions_cap(self) -> int:
        if self.max_predictions is not None:
            return self.max_predictions
        return round(self.mlm_probability * self.seq_len) + 1  # 20 at 128, as in BERT

    @property
    def ngram_probs(self) -> np.ndarray:
        """p(n) for n = 1..max_ngram, proportional to 1/n (ALBERT's n-gram masking)."""
        inv = 1.0 / np.arange(1, self.max_ngram + 1)
        return inv / inv.sum()


@dataclass(frozen=True)
class DataPosition:
    """Where the example stream stands: the next example is number ``index`` of ``epoch``."""

    epoch: int = 0
    index: int = 0


# -- corpus files ----------------------------------------------------------------------------
# Line ends as Python's universal newlines (what iter_documents reads): \r\n, \r or \n.
_LINE_END = re.compile(r"\r\n|\r|\n")


class CheckedCorpus(list):
    """The checked files (a ``list`` of :class:`Path`, as before) with what the check counted
    on the way: ``documents`` (blank-line-separated blocks, as :func:`iter_documents` yields
    them), ``lines`` (non-empty lines) and ``characters`` (of those lines, stripped)."""

    def __init__(self, paths: Sequence[Path], documents: int, lines: int, characters: int):
        super().__init__(paths)
        self.documents = documents
        self.lines = lines
        self.characters = characters


def check_corpus(paths: Sequence[str | os.PathLike], what: str = "corpus") -> CheckedCorpus:
    """Fail fast, before any work: every file exists, is UTF-8, and holds some text. Counts
    documents on the way, so a task that needs several (NSP) can refuse before any work."""
    if not paths:
        raise InputError(f"no {what} files given")
    checked = []
    documents = lines = characters = 0
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{what} {path}: no such file")
        if not path.is_file():
            raise InputError(f"{what} {path}: not a file")
        decoder = codecs.getincrementaldecoder("utf-8")()
        has_text = False
        offset = 0
        line = 1
        partial = ""  # text after the last complete line end
        in_document = False
        with path.open("rb") as f:
            while True:
                chunk = f.read(1 << 20)
                final = not chunk
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError as err:
                    pending = len(decoder.getstate()[0]) if not final else 0
                    start = max(0, err.start - pending)
                    bad = (decoder.getstate()[0] + chunk)[err.start : err.start + 1]
                    at = offset - pending + err.start
                    line += chunk[:start].count(b"\n")
                    raise InputError(
                        f"{what} {path}: not UTF-8 text (byte 0x{bad.hex() or '??'} at offset "
                        f"{at}, line {line}); convert it with e.g. iconv -t UTF-8"
                    ) from None
                if not has_text and text.strip():
                    has_text = True
                buffer = partial + text
                hold = ""
                if not final and buffer.endswith("\r"):  # maybe the first half of \r\n
                    buffer, hold = buffer[:-1], "\r"
                pieces = _LINE_END.split(buffer)
                partial = ("" if final else pieces.pop()) + hold
                for piece in pieces:
                    stripped = piece.strip()
                    if stripped:
                        documents += not in_document
                        in_document = True
                        lines += 1
                        characters += len(stripped)
                    else:
                        in_document = False
                line += chunk.count(b"\n")
                offset += len(chunk)
                if final:
                    break
        if not has_text:
            raise InputError(f"{what} {path}: empty (no text to train on)")
        checked.append(path)
    return CheckedCorpus(checked, documents, lines, characters)


def iter_documents(paths: Sequence[str | os.PathLike]) -> Iterator[list[str]]:
    """Documents as lists of non-empty lines: blank lines (and file ends) separate them."""
    for path in paths:
        doc: list[str] = []
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if line:
                    doc.append(line)
                elif doc:
                    yield doc
                    doc = []
        if doc:
            yield doc


class TokenizedCorpus:
    """A corpus as token ids on disk, memory-mapped, with sentence and document boundaries.

    ``tokens[sentence_offsets[s]:sentence_offsets[s+1]]`` is sentence s; document d is
    sentences ``document_offsets[d]`` up to ``document_offsets[d+1]``. ``word_starts`` flags
    the first piece of every word (for whole-word masking). ``documents`` lists the documents
    this view uses (all, or a held-out subset).
    """

    FILES = ("tokens", "word_starts", "sentence_offsets", "document_offsets")

    def __init__(self, folder: Path, meta: dict, documents: np.ndarray | None = None):
        self.folder = folder
        self.meta = meta
        self.tokens = self._map("tokens", np.int32)
        self.word_starts = self._map("word_starts", np.bool_)
        self.sentence_offsets = self._map("sentence_offsets", np.int64)
        self.document_offsets = self._map("document_offsets", np.int64)
        n_docs = len(self.document_offsets) - 1
        self.documents = np.arange(n_docs) if documents is None else np.asarray(documents)
        self._owner: object | None = None

    def __reduce__(self):
        """Pickled as where it lives (folder, meta, documents), not what it holds: a child
        process (a DataLoader worker started with spawn) maps the same files again instead of
        receiving a copy of the tokens through a pipe. The parent's object must outlive the
        child (it owns a temporary folder, if any)."""
        return (TokenizedCorpus, (self.folder, self.meta, self.documents))

    def _map(self, name: str, dtype) -> np.ndarray:
        path = self.folder / f"{name}.bin"
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        # A plain ndarray over the mapping: numpy's memmap subclass routes every scalar
        # lookup through Python (__getitem__), which made walking the pair stream 3x slower.
        return np.asarray(np.memmap(path, dtype=dtype, mode="r"))

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        paths: Sequence[str | os.PathLike],
        tokenizer: Tokenizer,
        cache_dir: str | os.PathLike | None = None,
        batch_lines: int = 4096,
        progress: Callable[[float], None] | None = None,
    ) -> TokenizedCorpus:
        """Tokenize ``paths`` (streamed, ``batch_lines`` lines at a time) into a cache folder.

        With ``cache_dir`` the result is kept there under a key of the files (path, size,
        mtime) and the tokenizer, and reused next time; without, it lives in a temporary
        folder removed when the object is garbage-collected. ``progress`` gets the share of
        the text read so far (0..1, by characters against file sizes) after each batch.
        """
        paths = [Path(p) for p in paths]
        backend = HFTokenizer.from_str(tokenizer.backend.to_str())
        backend.no_truncation()
        backend.no_padding()
        key = hashlib.sha1(backend.to_str().encode())
        for p in paths:
            st = p.stat()
            key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        digest = key.hexdigest()[:16]
        if cache_dir is not None:
            folder = Path(cache_dir) / f"corpus-{digest}"
            if (folder / "meta.json").is_file():
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                log.info("reusing tokenized corpus %s", folder)
                return cls(folder, meta)
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".corpus-{digest}.tmp-", dir=cache_dir))
        else:
            work = Path(tempfile.mkdtemp(prefix="bertscope-corpus-"))
        try:
            meta = cls._write(paths, backend, work, batch_lines, progress)
            meta["files"] = [str(p) for p in paths]
            (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            if cache_dir is not None:
                try:
                    os.replace(work, folder)
                except OSError:  # another process finished the same cache first
                    shutil.rmtree(work, ignore_errors=True)
                corpus = cls(folder, meta)
            else:
                corpus = cls(work, meta)
                corpus._owner = weakref.finalize(corpus, shutil.rmtree, str(work), True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if meta["n_tokens"] == 0 or meta["n_documents"] == 0:
            raise InputError(f"corpus {', '.join(map(str, paths))}: no tokens after tokenization")
        return corpus

    @staticmethod
    def _write(
        paths: list[Path],
        backend: HFTokenizer,
        work: Path,
        batch_lines: int,
        progress: Callable[[float], None] | None = None,
    ) -> dict:
        counts = {"n_tokens": 0, "n_sentences": 0, "n_documents": 0}
        total_size = max(1, sum(p.stat().st_size for p in paths))
        read = 0
        handles = {name: (work / f"{name}.bin").open("wb") for name in TokenizedCorpus.FILES}
        pending: list[list[str]] = []

        def flush() -> None:
            lines = [line for doc in pending for line in doc]
            encodings = iter(backend.encode_batch(lines, add_special_tokens=False))
            ids_parts, ws_parts, sentence_ends, document_ends = [], [], [], []
            for doc in pending:
                before = counts["n_sentences"]
                for _ in doc:
                    enc = next(encodings)
                    if not enc.ids:
                        continue
                    words = np.array([-1 if w is None else w for w in enc.word_ids])
                    ws = np.ones(len(words), dtype=np.bool_)
                    ws[1:] = (words[1:] != words[:-1]) | (words[1:] < 0)
                    ids_parts.append(np.asarray(enc.ids, dtype=np.int32))
                    ws_parts.append(ws)
                    counts["n_tokens"] += len(words)
                    counts["n_sentences"] += 1
                    sentence_ends.append(counts["n_tokens"])
                if counts["n_sentences"] > before:  # a document with no tokens is dropped
                    counts["n_documents"] += 1
                    document_ends.append(counts["n_sentences"])
            if ids_parts:
                handles["tokens"].write(np.concatenate(ids_parts).tobytes())
                handles["word_starts"].write(np.concatenate(ws_parts).tobytes())
                handles["sentence_offsets"].write(np.asarray(sentence_ends, np.int64).tobytes())
                handles["document_offsets"].write(np.asarray(document_ends, np.int64).tobytes())
            pending.clear()

        try:
            handles["sentence_offsets"].write(np.zeros(1, np.int64).tobytes())
            handles["document_offsets"].write(np.zeros(1, np.int64).tobytes())
            buffered = 0
            for doc in iter_documents(paths):
                pending.append(doc)
                buffered += len(doc)
                read += sum(len(line) + 1 for line in doc)
                if buffered >= batch_lines:
                    flush()
                    buffered = 0
                    if progress is not None:
                        progress(min(read / total_size, 1.0))
            flush()
            if progress is not None:
                progress(1.0)
        finally:
            for handle in handles.values():
                handle.close()
        return counts

    # -- views -------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return int(self.meta["n_tokens"])

    @property
    def n_documents(self) -> int:
        return len(self.documents)

    def subset(self, documents: np.ndarray) -> TokenizedCorpus:
        """A view over some documents only (shares the memory-mapped arrays)."""
        view = TokenizedCorpus.__new__(TokenizedCorpus)
        view.__dict__.update(self.__dict__)
        view.documents = np.asarray(documents)
        view._parent = self  # keep the owner (and its temporary folder) alive
        return view

    def split_heldout(
        self, every: int = 50, minimum: int = 1
    ) -> tuple[TokenizedCorpus, TokenizedCorpus]:
        """(train, held-out): every ``every``-th document is held out, at least ``minimum``
        (NSP needs 2 on each side: its random B segment comes from another document)."""
        docs = self.documents
        if len(docs) < 2 * minimum:
            raise InputError(
                f"the corpus has {len(docs)} document(s), too few to hold {minimum} out for "
                "evaluation and train on the rest; separate documents by blank lines or give "
                "an evaluation corpus"
            )
        held = docs[every - 1 :: every] if len(docs) >= every else docs[:0]
        if len(held) < minimum:  # the last documents not already held out
            rest = np.setdiff1d(docs, held)
            held = np.union1d(held, rest[len(rest) - (minimum - len(held)) :])
        keep = np.setdiff1d(docs, held)
        return self.subset(keep), self.subset(held)

    def sentences_of(self, doc: int) -> tuple[int, int]:
        return int(self.document_offsets[doc]), int(self.document_offsets[doc + 1])

    def span(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (and word starts) of sentences ``first`` .. ``last - 1`` (contiguous)."""
        a, b = int(self.sentence_offsets[first]), int(self.sentence_offsets[last])
        return np.array(self.tokens[a:b]), np.array(self.word_starts[a:b])

    def pair(self, span: PairSpan) -> PairExample:
        """The arrays of a :class:`PairSpan` (copies, as :meth:`span` gives)."""
        tokens, words = self.tokens, self.word_starts
        return PairExample(
            a=np.array(tokens[span.a_lo : span.a_hi]),
            b=np.array(tokens[span.b_lo : span.b_hi]),
            a_words=np.array(words[span.a_lo : span.a_hi]),
            b_words=np.array(words[span.b_lo : span.b_hi]),
            label=span.label,
        )

    def sentence_length(self, s: int) -> int:
        return int(self.sentence_offsets[s + 1] - self.sentence_offsets[s])


# -- examples ---------------------------------------------------------------------------------
@dataclass
class PairExample:
    """Two segments before masking; ``label`` 1 = random B (NSP) or swapped (SOP)."""

    a: np.ndarray
    b: np.ndarray
    a_words: np.ndarray  # word-start flags of a
    b_words: np.ndarray
    label: int


@dataclass(frozen=True)
class PairSpan:
    """A pair as token offsets into the corpus: walking the stream makes these (a few ints),
    and only the pairs a process masks become arrays (:meth:`TokenizedCorpus.pair`), so
    walking past the other ranks' and workers' pairs copies no tokens."""

    a_lo: int
    a_hi: int
    b_lo: int
    b_hi: int
    label: int


@dataclass
class MaskedExample:
    input_ids: np.ndarray  # (T,) after masking
    token_type_ids: np.ndarray  # (T,)
    positions: np.ndarray  # (N,) sorted positions the model must predict
    labels: np.ndarray  # (N,) the original ids there
    sentence_label: int


@dataclass
class Batch:
    """Model inputs and targets; ``mlm_labels`` follow ``mlm_positions`` in row-major order."""

    input_ids: torch.Tensor  # (B, T) long
    token_type_ids: torch.Tensor  # (B, T) long
    attention_mask: torch.Tensor | None  # (B, T) long, 0 on padding; None: no padding
    mlm_positions: torch.Tensor  # (B, T) bool, or (N,) int64 flat indices (for a GPU)
    mlm_labels: torch.Tensor  # (N,) long; -100 pads a fixed-size index
    sentence_labels: torch.Tensor  # (B,) long
    n_tokens: int  # non-padding tokens
    n_masked: int  # positions to predict (not counting -100 padding)

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return self._map_tensors(lambda value: value.to(device, non_blocking=nb))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory, so that copies to a GPU run asynchronously."""
        return self._map_tensors(lambda value: value.pin_memory())

    def _map_tensors(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return Batch(
            **{
                name: fn(value) if isinstance(value, torch.Tensor) else value
                for name, value in self.__dict__.items()
            }
        )

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


def collate(examples: Sequence[MaskedExample], pad_id: int) -> Batch:
    """Pad to the longest example of the batch."""
    B = len(examples)
    T = max(len(e.input_ids) for e in examples)
    ids = np.full((B, T), pad_id, dtype=np.int64)
    types = np.zeros((B, T), dtype=np.int64)
    attn = np.zeros((B, T), dtype=np.int64)
    where = np.zeros((B, T), dtype=np.bool_)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = e.input_ids
        types[i, :n] = e.token_type_ids
        attn[i, :n] = 1
        where[i, e.positions] = True
    labels = np.concatenate([e.labels for e in examples]).astype(np.int64)
    return Batch(
        input_ids=torch.from_numpy(ids),
        token_type_ids=torch.from_numpy(types),
        attention_mask=torch.from_numpy(attn),
        mlm_positions=torch.from_numpy(where),
        mlm_labels=torch.from_numpy(labels),
        sentence_labels=torch.tensor([e.sentence_label for e in examples], dtype=torch.long),
        n_tokens=int(attn.sum()),
        n_masked=len(labels),
    )


def truncate_pair(la: int, lb: int, total: int) -> tuple[int, int]:
    """Lengths after BERT's rule (trim the longer segment, one token at a time) in closed form."""
    if la + lb <= total:
        return la, lb
    na = min(la, max(total - lb, (total + 1) // 2))
    return na, min(lb, total - na)


class PretrainingData:
    """Examples and batches for one model family from a :class:`TokenizedCorpus`."""

    def __init__(
        self, corpus: TokenizedCorpus, tokenizer: Tokenizer, config: DataConfig, seed: int = 0
    ):
        self.corpus = corpus
        self.config = config
        self.seed = int(seed)
        self.cls_id = tokenizer.token_id("cls")
        self.sep_id = tokenizer.token_id("sep")
        self.mask_id = tokenizer.token_id("mask")
        self.pad_id = tokenizer.token_id("pad")
        specials = np.array(sorted(tokenizer.special_ids), dtype=np.int64)
        self.random_ids = np.setdiff1d(np.arange(tokenizer.vocab_size), specials)
        if config.task == "nsp" and corpus.n_documents < 2:
            raise InputError(
                "next-sentence prediction needs at least 2 documents (the random B segment "
                "comes from another one); separate documents by blank lines"
            )
        if corpus.n_documents < 1:
            raise InputError("the corpus has no documents")

    @property
    def examples_per_epoch_estimate(self) -> int:
        """Roughly how many sequences one pass makes (tokens / (seq_len - 3))."""
        docs = self.corpus.documents
        first = self.corpus.document_offsets[docs]
        last = self.corpus.document_offsets[docs + 1]
        tokens = int(
            (self.corpus.sentence_offsets[last] - self.corpus.sentence_offsets[first]).sum()
        )
        return max(
            1, round(tokens / (self.config.seq_len - 3) / (1 - self.config.short_seq_prob / 2))
        )

    # -- pairs -------------------------------------------------------------------------------
    def _target_length(self, rng: np.random.Generator) -> int:
        max_tokens = self.config.seq_len - 3
        if rng.random() < self.config.short_seq_prob:
            return int(rng.integers(2, max_tokens + 1))
        return max_tokens

    def _random_segment(self, doc: int, target: int, rng: np.random.Generator):
        docs = self.corpus.documents
        k = int(rng.integers(len(docs) - 1))
        other = int(docs[k])
        if other == doc:  # uniform over the other documents
            other = int(docs[-1])
        first, end = self.corpus.sentences_of(other)
        start = int(rng.integers(first, end))
        stop = start
        length = 0
        while stop < end and length < target:
            length += self.corpus.sentence_length(stop)
            stop += 1
        offsets = self.corpus.sentence_offsets
        return int(offsets[start]), int(offsets[stop])

    def _document_pairs(self, doc: int, rng: np.random.Generator) -> Iterator[PairSpan]:
        corpus = self.corpus
        offsets = corpus.sentence_offsets
        max_tokens = self.config.seq_len - 3
        first, end = corpus.sentences_of(doc)
        target = self._target_length(rng)
        chunk_start = first
        length = 0
        i = first
        while i < end:
            length += corpus.sentence_length(i)
            if i == end - 1 or length >= target:
                n_chunk = i + 1 - chunk_start
                a = None  # (lo, hi) token offsets of segment A, then B
                if n_chunk == 1:
                    lo, hi = int(offsets[i]), int(offsets[i + 1])
                    if hi - lo >= 2:
                        # One long sentence: cut inside it so A and B are consecutive text.
                        cut = lo + int(rng.integers(1, hi - lo))
                        a, b = (lo, cut), (cut, hi)
                        unused = 0
                else:
                    a_end = chunk_start + int(rng.integers(1, n_chunk))
                    a = (int(offsets[chunk_start]), int(offsets[a_end]))
                    b = (int(offsets[a_end]), int(offsets[i + 1]))
                    unused = i + 1 - a_end
                if a is not None:
                    label = 0
                    len_a = a[1] - a[0]
                    if self.config.task == "nsp" and rng.random() < 0.5:
                        label = 1
                        b = self._random_segment(doc, max(1, target - len_a), rng)
                        i -= unused  # the real continuation is used for the next pair
                    la, lb = truncate_pair(len_a, b[1] - b[0], max_tokens)
                    # Keep the tokens next to the A|B junction: trim A's front, B's back.
                    a, b = (a[1] - la, a[1]), (b[0], b[0] + lb)
                    if self.config.task == "sop" and rng.random() < 0.5:
                        label = 1  # swapped after trimming, so the real junction survives
                        a, b = b, a
                    if la > 0 and lb > 0:
                        yield PairSpan(a[0], a[1], b[0], b[1], label)
                chunk_start = i + 1
                length = 0
                target = self._target_length(rng)
            i += 1

    def examples(self, epoch: int, seed: int | None = None) -> Iterator[PairExample]:
        """The unmasked pairs of one epoch, in order; the same for a given (seed, epoch)."""
        for span in self.pair_spans(epoch, seed):
            yield self.corpus.pair(span)

    def pair_spans(self, epoch: int, seed: int | None = None) -> Iterator[PairSpan]:
        """:meth:`examples` as token offsets (no arrays made)."""
        rng = np.random.default_rng([self.seed if seed is None else seed, epoch, 0])
        docs = self.corpus.documents.copy()
        rng.shuffle(docs)
        size = max(1, self.config.shuffle_buffer)
        buffer: list[PairSpan] = []
        for doc in docs:
            for example in self._document_pairs(int(doc), rng):
                if len(buffer) < size:
                    buffer.append(example)
                    continue
                k = int(rng.integers(size))
                yield buffer[k]
                buffer[k] = example
        rng.shuffle(buffer)
        yield from buffer

    # -- masking -----------------------------------------------------------------------------
    def mask(
        self,
        example: PairExample,
        epoch: int,
        index: int,
        seed: int | None = None,
        spans: list[int] | None = None,
    ) -> MaskedExample:
        """[CLS] A [SEP] B [SEP] with this epoch's MLM mask for example ``index``.

        ``spans``, when given, receives the length in words of every masked n-gram (tests).
        """
        rng = np.random.default_rng([self.seed if seed is None else seed, epoch, index, 1])
        cfg = self.config
        la, lb = len(example.a), len(example.b)
        ids = np.empty(la + lb + 3, dtype=np.int64)
        ids[0] = self.cls_id
        ids[1 : la + 1] = example.a
        ids[la + 1] = self.sep_id
        ids[la + 2 : la + lb + 2] = example.b
        ids[-1] = self.sep_id
        types = np.zeros_like(ids)
        types[la + 2 :] = 1
        n_cand = la + lb
        budget = min(cfg.predictions_cap, max(1, round(n_cand * cfg.mlm_probability)))
        if cfg.max_ngram == 1 and not cfg.whole_word:
            cand = np.concatenate([np.arange(1, la + 1), np.arange(la + 2, la + lb + 2)])
            positions = np.sort(rng.choice(cand, size=min(budget, n_cand), replace=False))
            if spans is not None:
                spans.extend([1] * len(positions))
        else:
            positions = self._ngram_positions(example, budget, cfg.predictions_cap, rng, spans)
        labels = ids[positions].copy()
        action = rng.random(len(positions))
        to_mask = action < cfg.mask_token_prob
        to_random = (action >= cfg.mask_token_prob) & (
            action < cfg.mask_token_prob + cfg.random_token_prob
        )
        ids[positions[to_mask]] = self.mask_id
        n_random = int(to_random.sum())
        if n_random:
            ids[positions[to_random]] = self.random_ids[
                rng.integers(len(self.random_ids), size=n_random)
            ]
        return MaskedExample(ids, types, positions, labels, example.label)

    def _ngram_positions(
        self,
        example: PairExample,
        budget: int,
        cap: int,
        rng: np.random.Generator,
        spans: list[int] | None,
    ) -> np.ndarray:
        """Whole-word n-gram spans (ALBERT): draw n ~ p(n), then a random place where n free
        words of one segment fit; repeat until about ``budget`` tokens are masked, never more
        than ``cap``. Only when no place exists is a span shortened, as ALBERT does."""
        cfg = self.config
        la = len(example.a)
        # Word boundaries as token positions in the full sequence, per segment.
        starts_a = np.flatnonzero(example.a_words) + 1 if cfg.whole_word else np.arange(la) + 1
        starts_b = (
            np.flatnonzero(example.b_words) + la + 2
            if cfg.whole_word
            else np.arange(len(example.b)) + la + 2
        )
        if len(starts_a) == 0 or starts_a[0] != 1:
            starts_a = np.concatenate([[1], starts_a])
        if len(starts_b) == 0 or starts_b[0] != la + 2:
            starts_b = np.concatenate([[la + 2], starts_b])
        word_start = np.concatenate([starts_a, starts_b])
        word_end = np.concatenate([starts_a[1:], [la + 1], starts_b[1:], [la + len(example.b) + 2]])
        segment = np.concatenate([np.zeros(len(starts_a), int), np.ones(len(starts_b), int)])
        n_words = len(word_start)
        covered = np.zeros(n_words, dtype=np.bool_)
        probs = cfg.ngram_probs
        ngrams = np.arange(1, cfg.max_ngram + 1)
        chosen: list[np.ndarray] = []
        count = 0
        # Stop *before* a draw once the target is reached, so that whether a span is drawn
        # never depends on its own length: every drawn length then follows p(n) (optional
        # stopping). The last span overshoots the target by (span - 1) / 2 tokens on average,
        # so the target is lowered by that much (randomly rounded) to keep 15% on average.
        span_tokens = float(probs @ ngrams) * (word_end - word_start).mean()
        early = int(np.floor((span_tokens - 1) / 2 + rng.random()))
        while count == 0 or count + early < budget:
            n = int(rng.choice(ngrams, p=probs))
            w = -1
            while n > 0 and w < 0:
                # A random place for n free words of one segment within the hard cap.
                for _ in range(50):
                    s = int(rng.integers(n_words))
                    e = s + n
                    if (
                        e <= n_words
                        and segment[s] == segment[e - 1]
                        and count + int(word_end[e - 1] - word_start[s]) <= cap
                        and not covered[s:e].any()
                    ):
                        w = s
                        break
                else:
                    n -= 1  # no room for n words (tiny or full sequence): shorter, as ALBERT
            if w < 0:
                break
            covered[w : w + n] = True
            chosen.append(np.arange(word_start[w], word_end[w + n - 1]))
            count += int(word_end[w + n - 1] - word_start[w])
            if spans is not None:
                spans.append(n)
        if not chosen:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(chosen))

    # -- streams -----------------------------------------------------------------------------
    def stream(self, position: DataPosition) -> Iterator[tuple[int, int, PairSpan]]:
        """(epoch, index, pair span) from ``position`` on, through as many epochs as asked."""
        epoch, skip = position.epoch, position.index
        while True:
            produced = 0
            for index, example in enumerate(self.pair_spans(epoch)):
                produced += 1
                if index >= skip:
                    yield epoch, index, example
            if produced == 0:
                raise InputError("the corpus yields no training examples (every line is empty?)")
            epoch, skip = epoch + 1, 0

    def step_batches(
        self,
        position: DataPosition,
        batch_size: int,
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
        every: int = 1,
        offset: int = 0,
    ) -> Iterator[tuple[list[Batch], DataPosition]]:
        """For each optimizer step: this rank's ``grad_accum`` micro-batches and the position
        after the step. The step takes the next ``batch_size * grad_accum * world_size``
        examples of the stream; micro-batch m of rank r is slice (m * world_size + r).

        With ``every`` > 1 only steps s (counted from ``position``) with s % every == offset
        are built and yielded; the others' examples are walked past unmasked (worker
        ``offset`` of ``every`` in :class:`core.training.batch_loader.StepBatchLoader`)."""
        per_step = batch_size * grad_accum * world_size
        stream = self.stream(position)
        step = -1
        while True:
            group = [next(stream) for _ in range(per_step)]
            step += 1
            if step % every != offset:
                continue
            micro = []
            for m in range(grad_accum):
                lo = (m * world_size + rank) * batch_size
                masked = [
                    self.mask(self.corpus.pair(span), ep, idx)
                    for ep, idx, span in group[lo : lo + batch_size]
                ]
                micro.append(collate(masked, self.pad_id))
            ep, idx, _ = group[-1]
            yield micro, DataPosition(ep, idx + 1)

    def eval_batches(
        self,
        batch_size: int,
        max_examples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 1234,
    ) -> Iterator[Batch]:
        """A fixed evaluation set: epoch 0 under ``seed`` (one pass), examples i with
        i % world_size == rank, masks drawn from the same seed: the same numbers every time."""
        batch: list[MaskedExample] = []
        for index, example in enumerate(self.examples(0, seed=seed)):
            if max_examples is not None and index >= max_examples:
                break
            if index % world_size != rank:
                continue
            batch.append(self.mask(example, 0, index, seed=seed))
            if len(batch) == batch_size:
                yield collate(batch, self.pad_id)
                batch = []
        if batch:
            yield collate(batch, self.pad_id)
