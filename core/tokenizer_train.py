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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, decoders, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import Unigram, WordPiece

from core.errors import InputError, TokenizerError
from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, bert_post_processor, load_tokenizer

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
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
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
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=special,
            continuing_subword_prefix="##",
            show_progress=False,
        )
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
    except Exception as err:  # the Rust library raises bare Exceptions (bad UTF-8, tiny vocab)
        raise TokenizerError(f"tokenizer training failed on {', '.join(paths)}: {err}") from None
    if model_type == "albert":
        backend.model = _canonical_unigram(backend, len(special))
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


def _canonical_unigram(backend: HFTokenizer, n_special: int) -> Unigram:
    """The trained Unigram model with its pieces in a fixed order (specials, then by score,
    then by text). The trainer finds the same pieces every run but lists equal-score ones in
    hash order, which would shuffle embedding rows from one run to the next."""
    model = json.loads(backend.to_str())["model"]
    pieces = [tuple(p) for p in model["vocab"]]
    ordered = pieces[:n_special] + sorted(pieces[n_special:], key=lambda p: (-p[1], p[0]))
    unk = [p[0] for p in ordered].index(pieces[model["unk_id"]][0])
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
