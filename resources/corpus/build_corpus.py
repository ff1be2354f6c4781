#!/usr/bin/env python3
"""Build the BertScope pretraining corpus from public-domain texts shipped by Debian.

Inputs (all read from installed Debian packages, nothing is downloaded):

  * r-cran-janeaustenr : Jane Austen's six novels, stored as R lazy-load data
                         in /usr/lib/R/site-library/janeaustenr/data/Rdata.{rdx,rdb}
  * r-cran-tokenizers  : Herman Melville's "Moby Dick", stored the same way
                         in /usr/lib/R/site-library/tokenizers/data/Rdata.{rdx,rdb}
  * bible-kjv(-text)   : King James Version; the New Testament is printed by
                         /usr/bin/bible from /usr/lib/bible.data

    apt-get install --no-install-recommends r-cran-janeaustenr r-cran-tokenizers bible-kjv bible-kjv-text

R itself is never run: the R serialization format is decoded below with the
standard library only (see read_lazydata).

Output format (UTF-8, "\\n" line endings):
  * one sentence (prose) or one verse (KJV) per line;
  * one document (a novel chapter or a Bible chapter) per block, blocks
    separated by a single blank line; every document has >= MIN_LINES lines.

Split: documents are numbered in a fixed order (Austen novels in publication
order, then Moby Dick, then the KJV New Testament); document i goes to
heldout.txt when i % HELDOUT_EVERY == HELDOUT_EVERY - 1, otherwise to
train.txt.  There is no randomness: the output is byte-identical on every run
with the same package versions.

Usage:  python3 resources/corpus/build_corpus.py [--out-dir DIR]
"""

import argparse
import bz2
import gzip
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import unicodedata
import zlib

R_SITE_LIBRARY = "/usr/lib/R/site-library"
HELDOUT_EVERY = 20
MIN_LINES = 3

# Austen novels in order of publication: (variable in janeaustenr, title).
AUSTEN = [
    ("sensesensibility", "Sense and Sensibility"),
    ("prideprejudice", "Pride and Prejudice"),
    ("mansfieldpark", "Mansfield Park"),
    ("emma", "Emma"),
    ("northangerabbey", "Northanger Abbey"),
    ("persuasion", "Persuasion"),
]
KJV_RANGE = "Mat1:1-Rev22:21"  # the whole New Testament


# --------------------------------------------------------------------------
# Minimal reader for R's XDR serialization format (versions 2 and 3), enough
# for the lazy-load data bases that R packages install (data/Rdata.rdx/.rdb).
# --------------------------------------------------------------------------

class _RReader:
    # special SEXP codes written instead of a full object
    _SPECIAL_NONE = {254, 253, 242, 241, 247, 251, 252, 0}  # NULL, envs, markers

    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def _int(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def _length(self):
        n = self._int()
        if n == -1:  # long vector
            hi, lo = self._int(), self._int()
            n = (hi << 32) + lo
        return n

    def read(self):
        if self.d[:2] != b"X\n":
            raise ValueError("not an XDR R serialization stream")
        self.p = 2
        version = self._int()
        self._int()  # writer R version
        self._int()  # minimal reader R version
        if version == 3:
            n = self._int()  # length of the native encoding name
            self.p += n
        elif version != 2:
            raise ValueError("unsupported R serialization version %d" % version)
        return self._item()

    def _item(self):
        flags = self._int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t in self._SPECIAL_NONE:
            return None
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self._int()
            return self.refs[idx - 1]
        if t in (248, 249, 250):  # PERSIST / NAMESPACE / PACKAGE: string vector
            self._int()
            obj = ("ns", [self._item() for _ in range(self._int())])
            self.refs.append(obj)
            return obj
        if t == 1:  # SYMSXP
            obj = ("sym", self._item())
            self.refs.append(obj)
            return obj
        if t == 4:  # ENVSXP
            env = {}
            self.refs.append(env)
            self._int()  # locked
            for key in ("enclos", "frame", "hashtab", "attrib"):
                env[key] = self._item()
            return env
        if t in (2, 3, 5, 6, 17, 239, 240):  # pairlist-like
            attr = self._item() if has_attr else None
            tag = self._item() if has_tag else None
            car = self._item()
            cdr = self._item()
            return ("pair", tag, car, cdr, attr)
        if t == 9:  # CHARSXP
            n = self._int()
            if n == -1:
                return None  # NA_character_
            raw = self.d[self.p:self.p + n]
            self.p += n
            levels = flags >> 12
            latin1 = bool(levels & 4) and not (levels & 8)
            return raw.decode("latin-1" if latin1 else "utf-8")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self._length()
            value = list(struct.unpack_from(">%di" % n, self.d, self.p))
            self.p += 4 * n
        elif t == 14:  # REALSXP
            n = self._length()
            value = list(struct.unpack_from(">%dd" % n, self.d, self.p))
            self.p += 8 * n
        elif t in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            value = [self._item() for _ in range(self._length())]
        else:
            raise ValueError("unsupported R SEXP type %d at byte %d" % (t, self.p))
        value = RVector(value)
        if has_attr:
            value.attrs = _pairlist_to_dict(self._item())
        return value


class RVector(list):
    """An R vector: a Python list plus its R attributes (e.g. "names")."""

    attrs = {}


def _unserialize(data):
    return _RReader(data).read()


def _pairlist_to_dict(pl):
    out = {}
    while isinstance(pl, tuple) and pl[0] == "pair":
        out[pl[1][1]] = pl[2]
        pl = pl[3]
    return out


def read_lazydata(package):
    """Return {name: object} for every dataset in an installed R package."""
    base = os.path.join(R_SITE_LIBRARY, package, "data", "Rdata")
    with open(base + ".rdx", "rb") as fh:
        index = _unserialize(gzip.decompress(fh.read()))
    fields = dict(zip(index.attrs["names"], index))
    variables = fields["variables"]
    ctype = fields["compressed"][0]
    with open(base + ".rdb", "rb") as fh:
        blob_file = fh.read()
    out = {}
    for name, (offset, length) in zip(variables.attrs["names"], variables):
        blob = blob_file[offset:offset + length]
        if ctype == 1:  # TRUE: 4-byte length + zlib stream
            payload = zlib.decompress(blob[4:])
        else:  # 2 (bzip2) / 3 (xz): 4-byte length + type byte + stream
            kind, body = blob[4:5], blob[5:]
            payload = {
                b"Z": zlib.decompress,
                b"2": bz2.decompress,
                b"X": lzma.decompress,
                b"0": lambda b: b,
            }[kind](body)
        out[name] = _unserialize(payload)
    return out


# --------------------------------------------------------------------------
# Text cleaning
# --------------------------------------------------------------------------

ABBREVIATIONS = {
    "mr", "mrs", "messrs", "dr", "st", "esq", "col", "capt", "gen", "rev",
    "lt", "sr", "jr", "mme", "mlle", "no", "vol", "viz", "ch", "ibid", "vs",
}
INTERJECTIONS = {"oh", "ah"}
_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]*[A-Z])")
_LAST_WORD = re.compile(r"(\w+)[.!?]+[\"')\]]*\s+$")


def normalise(text):
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\ufeff", "")
    text = text.replace("_", "")  # _emphasis_ markers of the Gutenberg texts
    text = text.replace("*", "")  # footnote markers
    return " ".join(text.split())


def split_sentences(paragraph):
    """Rule-based sentence splitter for 19th-century English prose."""
    sentences = []
    start = 0
    for m in _BOUNDARY.finditer(paragraph):
        chunk = paragraph[start:m.end()]
        w = _LAST_WORD.search(chunk)
        if w:
            word = w.group(1).lower()
            end = chunk.rstrip()
            if end.endswith("!") and word in INTERJECTIONS:
                continue  # "Oh! Mr. Bennet, ..." is one sentence
            if end.endswith(".") and not end.endswith(".."):
                if word in ABBREVIATIONS:
                    continue  # "Mr. Bennet"
                if len(word) == 1 and w.group(1).isupper() and word != "i":
                    continue  # an initial, as in "J. Ross Browne"
        sentences.append(chunk.strip())
        start = m.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


# editors' notes such as "[End volume one of this edition. ...]" or
# "(End of volume one.)"
_EDITORIAL = re.compile(r"^(\[.*\beditions?\b|\(End of volume [a-z]+\.\)$)", re.IGNORECASE)


def paragraphs(lines):
    """Group raw lines into normalised paragraphs (blank-line separated)."""
    block = []
    for line in lines + [""]:
        if line.strip():
            block.append(line)
        elif block:
            text = normalise(" ".join(block))
            if text and re.search(r"[A-Za-z]", text) and not _EDITORIAL.match(text):
                yield text
            block = []


def prose_document(lines):
    out = []
    for para in paragraphs(lines):
        out.extend(split_sentences(para))
    return out


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------

_AUSTEN_HEADING = re.compile(r"^(CHAPTER|Chapter)\s+([IVXLC]+|\d+)\.?$")
_AUSTEN_SKIP = re.compile(r"^(VOLUME\s+[IVX]+|THE END|FINIS|Finis)$")
_AUSTEN_STOP = re.compile(r"^A NOTE ON THE TEXT$")  # editor's note (Northanger Abbey)


def austen_documents():
    data = read_lazydata("janeaustenr")
    for var, title in AUSTEN:
        lines = ["" if s is None else s for s in data[var]]
        chapter = None
        for line in lines:
            s = line.strip()
            if _AUSTEN_STOP.match(s):
                break
            if _AUSTEN_HEADING.match(s):
                if chapter is not None:
                    yield ("austen:" + var, prose_document(chapter))
                chapter = []
                continue
            if chapter is None or _AUSTEN_SKIP.match(s):
                continue  # front matter before chapter 1, volume headings
            chapter.append(line)
        if chapter is not None:
            yield ("austen:" + var, prose_document(chapter))


_MOBY_HEADING = re.compile(r"^(CHAPTER \d+\. .*|Epilogue)$")


def moby_documents():
    text = read_lazydata("tokenizers")["mobydick"][0]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    chapter = None
    for line in lines:
        s = line.strip()
        if s.startswith("End of Project Gutenberg") or s.startswith("*** END OF"):
            break
        if _MOBY_HEADING.match(s):
            if chapter is not None:
                yield ("melville:mobydick", prose_document(chapter))
            chapter = []
            continue
        if chapter is None:
            continue  # Gutenberg header, transcriber's notes, etymology, extracts
        chapter.append(line)
    if chapter is not None:
        yield ("melville:mobydick", prose_document(chapter))


_KJV_VERSE = re.compile(r"^\s+(\d+) (.*)$")


def kjv_documents():
    bible = shutil.which("bible") or "/usr/bin/bible"
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "COLUMNS": "100000"}
    out = subprocess.run(
        [bible, "-l100000", KJV_RANGE],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=True, env=env,
    ).stdout.decode("ascii")
    chapter = None
    for line in out.split("\n"):
        if not line.strip():
            continue
        m = _KJV_VERSE.match(line)
        if m:
            chapter.append(normalise(m.group(2)))
        else:  # "Matthew 1", "1 Corinthians 13", ...
            if chapter:
                yield ("kjv:nt", chapter)
            chapter = []
    if chapter:
        yield ("kjv:nt", chapter)


# --------------------------------------------------------------------------

def build(out_dir):
    docs = []
    dropped = 0
    for source in (austen_documents, moby_documents, kjv_documents):
        for name, lines in source():
            lines = [l for l in lines if l]
            if len(lines) < MIN_LINES:
                dropped += 1
                continue
            docs.append((name, lines))

    splits = {"train.txt": [], "heldout.txt": []}
    for i, (_name, lines) in enumerate(docs):
        key = "heldout.txt" if i % HELDOUT_EVERY == HELDOUT_EVERY - 1 else "train.txt"
        splits[key].append("\n".join(lines))

    os.makedirs(out_dir, exist_ok=True)
    for fname, blocks in splits.items():
        path = os.path.join(out_dir, fname)
        payload = ("\n\n".join(blocks) + "\n").encode("utf-8")
        with open(path, "wb") as fh:
            fh.write(payload)
        nlines = sum(b.count("\n") + 1 for b in blocks)
        print("%-12s %4d documents %6d lines %8d bytes  sha256 %s" % (
            fname, len(blocks), nlines, len(payload),
            hashlib.sha256(payload).hexdigest()))
    per_source = {}
    for name, lines in docs:
        n, l, c = per_source.get(name, (0, 0, 0))
        per_source[name] = (n + 1, l + len(lines), c + sum(len(x) + 1 for x in lines))
    for name, (n, l, c) in per_source.items():
        print("  %-26s %4d documents %6d lines %8d chars" % (name, n, l, c))
    if dropped:
        print("  dropped %d documents with fewer than %d lines" % (dropped, MIN_LINES))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args(argv)
    build(args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
