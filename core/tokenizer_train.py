"""Train a tokenizer from plain-text files: WordPiece for BERT, Unigram for ALBERT.

Both pipelines copy the ones the original checkpoints ship, so a model trained here tokenizes
like its published cousins:

- BERT (Devlin et al. 2019): ``BertNormalizer`` (clean text, Chinese-character spacing,
  lower-casing with accent stripping when uncased), ``BertPreTokenizer`` (whitespace and
  punctuation), WordPiece with ``##`` continuations; specials [PAD] [UNK] [CLS] [SEP] [MASK]
  (ids 0, 1, 2, 3, 4 here; Google's vocab puts them at 0, 100-103, which no code relies on).
- ALBERT (Lan et al. 2020) uses SentencePiece's Unigram model (Kudo 2018). We build the same
  pipeline as transformers' ``AlbertConverter``: quote normalisation, NFKD + accent stripping,
  lower-casing, collapsed spaces, ``Metaspace`` ("▁" marks a word start) and a Unigram model;
  specials <pad> <unk> [CLS] [SEP] [MASK] at ids 0-4, exactly as in ``albert-base-v2``.

The result is a :class:`core.tokenizer.Tokenizer` with the template post-processor
([CLS] A [SEP] B [SEP]) that ``core.tokenizer.bert_post_processor`` builds for both families.
ALBERT's mask token absorbs the space before it (``lstrip``), as in transformers.

Training is deterministic: the same files and settings give a byte-identical
``tokenizer.json`` in every process, so the same ``train`` command and seed give the same
model. The ``tokenizers`` trainers are not (their word tables are hash maps with a per-process
random seed): WordPieceTrainer breaks ties between equally frequent merges by ids assigned in
hash order, so even the vocabulary differs, and UnigramTrainer's EM sums over sentences in
hash order, so scores jitter in the last digits (~1e-11) and the rare characters it adds at
the end get their scores in hash order. So WordPiece is learnt here (:func:`learn_wordpiece`,
the same BPE-style merges as WordPieceTrainer with ties broken by text), and the Unigram model
is put in a canonical form (:func:`_canonical_unigram`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, decoders, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import Unigram, WordPiece

from core.errors import InputError, TokenizerError
from core.tokenizer import (
    SPECIAL_DEFAULTS,
    Tokenizer,
    bert_post_processor,
    load_tokenizer,
    strip_left_of_mask,
)

log = logging.getLogger(__name__)

# Order of the special tokens in the vocabulary (their ids are 0, 1, 2, ...).
SPECIAL_ORDER: tuple[str, ...] = ("pad", "unk", "cls", "sep", "mask")
MIN_VOCAB_SIZE = 32


def special_tokens(model_type: str) -> list[str]:
    """The family's special tokens in vocabulary order (pad first, so pad_token_id is 0)."""
    if model_type not in SPECIAL_DEFAULTS:
        raise InputError(f"unknown model type {model_type!r}; expected 'bert' or 'albert'")
    return [SPECIAL_DEFAULTS[model_type][role] for role in SPECIAL_ORDER]


def _bert_backend(lowercase: bool) -> HFTokenizer:
    special = SPECIAL_DEFAULTS["bert"]
    backend = HFTokenizer(WordPiece(unk_token=special["unk"], max_input_chars_per_word=100))
    # strip_accents=None follows lowercase, as in BertTokenizerFast.
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _albert_backend(lowercase: bool) -> HFTokenizer:
    backend = HFTokenizer(Unigram())
    steps = [
        normalizers.Replace("``", '"'),
        normalizers.Replace("''", '"'),
        normalizers.NFKD(),
        normalizers.StripAccents(),
    ]
    if lowercase:
        steps.append(normalizers.Lowercase())
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    backend.normalizer = normalizers.Sequence(steps)
    # Split on any whitespace first (tabs and newlines too, as transformers' AlbertTokenizer
    # does), then mark each word's start with "▁".
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return backend


def _check_files(files: Sequence[str | os.PathLike]) -> list[str]:
    paths = [str(Path(f)) for f in files]
    if not paths:
        raise InputError("no corpus files given to train the tokenizer on")
    for path in paths:
        if not Path(path).is_file():
            raise InputError(f"corpus {path}: no such file")
    return paths


def train_tokenizer(
    files: Sequence[str | os.PathLike],
    model_type: str,
    vocab_size: int = 8000,
    lowercase: bool = True,
    max_length: int = 512,
) -> Tokenizer:
    """Learn a ``model_type`` ("bert" or "albert") tokenizer of ``vocab_size`` tokens, specials
    included, from UTF-8 text files. Small corpora may yield fewer tokens than asked."""
    special = special_tokens(model_type)
    if not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
        raise InputError(f"vocab size must be an integer >= {MIN_VOCAB_SIZE}, got {vocab_size!r}")
    paths = _check_files(files)
    if model_type == "bert":
        backend = _bert_backend(lowercase)
        vocab = learn_wordpiece(_word_counts(backend, paths), vocab_size, special)
        backend.model = WordPiece(
            {tok: i for i, tok in enumerate(vocab)},
            unk_token=SPECIAL_DEFAULTS["bert"]["unk"],
            max_input_chars_per_word=100,
        )
        backend.add_special_tokens(special)
    else:
        backend = _albert_backend(lowercase)
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=special,
            unk_token=SPECIAL_DEFAULTS["albert"]["unk"],
            max_piece_length=16,
            show_progress=False,
        )
        try:
            backend.train(paths, trainer)
        except Exception as err:  # the Rust library raises bare Exceptions (bad UTF-8, ...)
            raise TokenizerError(
                f"tokenizer training failed on {', '.join(paths)}: {err}"
            ) from None
        backend.model = _canonical_unigram(backend, len(special))
        strip_left_of_mask(backend, SPECIAL_DEFAULTS["albert"]["mask"])
    ids = [backend.token_to_id(tok) for tok in special]
    if ids != list(range(len(special))):
        raise TokenizerError(f"special tokens landed at ids {ids}, expected 0..{len(special) - 1}")
    roles = SPECIAL_DEFAULTS[model_type]
    backend.post_processor = bert_post_processor(backend, roles)
    tokenizer = Tokenizer(backend, roles, max_length, do_lower_case=lowercase)
    log.info(
        "trained a %s tokenizer: %d tokens from %s",
        model_type,
        tokenizer.vocab_size,
        ", ".join(paths),
    )
    return tokenizer


def _word_counts(backend: HFTokenizer, paths: list[str]) -> Counter[str]:
    """How often each word (after the backend's normaliser and pre-tokeniser) occurs."""
    normalize = backend.normalizer.normalize_str
    split = backend.pre_tokenizer.pre_tokenize_str
    counts: Counter[str] = Counter()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    counts.update(word for word, _ in split(normalize(line)))
        except UnicodeDecodeError as err:
            raise TokenizerError(f"corpus {path}: not UTF-8 text ({err})") from None
    return counts


def learn_wordpiece(
    counts: Counter[str] | dict[str, int],
    vocab_size: int,
    special: Sequence[str],
    min_frequency: int = 2,
    prefix: str = "##",
) -> list[str]:
    """A WordPiece vocabulary in id order, learnt as ``tokenizers``' WordPieceTrainer learns it
    (BPE merges over the words, a continuation piece marked ``prefix``), deterministically.

    Words start as characters ("ship" -> s ##h ##i ##p); the most frequent adjacent pair is
    merged until the vocabulary has ``vocab_size`` tokens or no pair occurs ``min_frequency``
    times. Ties go to the pair whose texts sort first. Ids: ``special``, then the characters in
    text order, then the merged tokens in the order they were learnt (most frequent first).
    """
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, n in sorted(counts.items()):
        if word:
            words.append([word[0], *(prefix + c for c in word[1:])])
            freqs.append(int(n))
    vocab = list(dict.fromkeys([*special, *sorted({s for w in words for s in w})]))
    known = set(vocab)
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        for pair in itertools.pairwise(w):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-n, a, b) for (a, b), n in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        neg, a, b = heapq.heappop(heap)
        n = pair_counts.get((a, b), 0)
        if n != -neg:  # stale entry: counts only fall, except for pairs with the newest token
            if n > 0:
                heapq.heappush(heap, (-n, a, b))
            continue
        if n < min_frequency:
            break
        new = a + b.removeprefix(prefix)
        if new not in known:
            vocab.append(new)
            known.add(new)
        grown: set[tuple[str, str]] = set()
        for i in where.pop((a, b)):
            w, f = words[i], freqs[i]
            merged, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    merged.append(new)
                    j += 2
                else:
                    merged.append(w[j])
                    j += 1
            if len(merged) == len(w):
                continue  # an earlier merge already took this word's pair
            for pair in itertools.pairwise(w):
                pair_counts[pair] -= f
            for pair in itertools.pairwise(merged):
                pair_counts[pair] += f
                if new in pair:
                    where[pair].add(i)
                    grown.add(pair)
            words[i] = merged
        pair_counts.pop((a, b), None)
        for pair in sorted(grown):
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], *pair))
    return vocab


SCORE_DECIMALS = 6  # Unigram scores are rounded to 1e-6, far above the trainer's <= 4e-11 jitter
PENALTY_STEP = 1e-4  # the step of the scores UnigramTrainer gives the characters it appends


def _canonical_unigram(backend: HFTokenizer, n_special: int) -> Unigram:
    """The trained Unigram model in a canonical form: the same pieces with the same scores in
    the same order in every process (specials, then by score, then by text).

    UnigramTrainer ends by appending the characters pruning dropped, with scores on a ladder
    (the lowest score + k * 1e-4) handed out in hash order: here the same ladder values go to
    those characters in text order. Every score is then rounded to ``SCORE_DECIMALS`` to remove
    the EM's summation-order jitter, and equal scores are ordered by text."""
    model = json.loads(backend.to_str())["model"]
    pieces = [(str(p), float(s)) for p, s in model["vocab"]]
    unk_piece = pieces[model["unk_id"]][0]
    head, rest = pieces[:n_special], pieces[n_special:]
    if rest:
        lowest = min(s for _, s in rest)
        singles = sum(len(p) == 1 for p, _ in rest)

        def on_ladder(score: float) -> bool:
            k = round((score - lowest) / PENALTY_STEP)
            return 0 <= k <= singles and abs(score - lowest - k * PENALTY_STEP) < 1e-9

        appended = sorted(p for p, s in rest if len(p) == 1 and on_ladder(s))
        chosen = set(appended)
        values = sorted((s for p, s in rest if p in chosen), reverse=True)
        rescored = dict(zip(appended, values, strict=True))
        rest = [(p, rescored.get(p, s)) for p, s in rest]
    rest = [(p, round(s, SCORE_DECIMALS)) for p, s in rest]
    ordered = head + sorted(rest, key=lambda p: (-p[1], p[0]))
    unk = [p for p, _ in ordered].index(unk_piece)
    return Unigram(ordered, unk, model.get("byte_fallback", False))


def load_tokenizer_file(
    path: str | os.PathLike, model_type: str, max_length: int = 512
) -> Tokenizer:
    """A ``tokenizer.json`` (or a folder holding one) to train a model with."""

    path = Path(path)
    if path.is_file():
        if path.name != "tokenizer.json":
            raise TokenizerError(f"{path}: expected a tokenizer.json file or a folder holding one")
        path = path.parent
    if not path.is_dir():
        raise TokenizerError(f"{path}: no such tokenizer file or folder")
    return load_tokenizer(path, model_type, max_length)
