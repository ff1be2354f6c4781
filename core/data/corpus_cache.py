"""The corpus cache: plain-text files checked, then tokenized into memory-mapped arrays.

One document per blank-line-separated block (or per file); each line is a sentence. The text
is streamed through the tokenizer into memory-mapped arrays in a cache folder, so a corpus
larger than memory costs disk, not RAM, and any document can still be read at random (NSP
needs a random *other* document). A pair is read back from it by token offsets
(:class:`PairSpan`) as arrays (:class:`PairExample`).
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
from tokenizers import Tokenizer as HFTokenizer

from core.errors import InputError
from core.tokenizer import Tokenizer

log = logging.getLogger(__name__)

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
