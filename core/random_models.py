"""Random-initialised models with a small WordPiece vocabulary: stand-ins for the demo models
before they are trained, and full-size heads for benchmarks.

The vocabulary is the special tokens, single characters (and their ``##`` continuations),
punctuation and the corpus's commonest words, so any English sentence tokenizes into
word-sized pieces and the attention maps of an untrained model are still readable.
"""

from __future__ import annotations

import collections
import hashlib
import re
import tempfile
from pathlib import Path

import torch

from core.atomic import write_text_atomic
from core.config import preset
from core.loaded_model import LoadedModel, build_model
from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, wordpiece_from_vocab

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "resources" / "corpus" / "train.txt"
VOCAB_WORDS = 3000  # corpus words kept (most common first)
CORPUS_LINES = 40000  # lines of the corpus counted


def random_vocab(
    special: dict[str, str], corpus: Path | None = DEFAULT_CORPUS, words: int = VOCAB_WORDS
) -> Path:
    """A WordPiece vocabulary file: special tokens, characters and the commonest words.

    Written once to the temp folder (atomically) and reused; its name hashes its content.
    Without a corpus (or if it is missing) the vocabulary is characters and punctuation only.
    """
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,;:!?'\"()-[]&*/")
    common: list[str] = []
    if corpus is not None and Path(corpus).is_file():
        counts: collections.Counter[str] = collections.Counter()
        with Path(corpus).open(encoding="utf-8") as f:
            for _, line in zip(range(CORPUS_LINES), f, strict=False):
                counts.update(re.findall(r"[a-z]+", line.lower()))
        common = [w for w, _ in counts.most_common(words) if len(w) > 1]
    specials = [special["pad"], special["unk"], special["cls"], special["sep"], special["mask"]]
    vocab = list(dict.fromkeys(specials + chars + punct + ["##" + c for c in chars] + common))
    text = "\n".join(vocab) + "\n"
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"bertscope-random-vocab-{digest}.txt"
    if not path.is_file():
        write_text_atomic(path, text)
    return path


def random_tokenizer(
    family: str, max_length: int = 512, corpus: Path | None = DEFAULT_CORPUS
) -> Tokenizer:
    """A lower-casing WordPiece tokenizer over :func:`random_vocab` for ``family``."""
    special = SPECIAL_DEFAULTS[family]
    backend = wordpiece_from_vocab(random_vocab(special, corpus), lowercase=True, special=special)
    return Tokenizer(backend, special, max_length, do_lower_case=True)


def build_random_model(
    preset_name: str,
    seed: int = 0,
    full_vocab: bool = False,
    name: str | None = None,
    corpus: Path | None = DEFAULT_CORPUS,
) -> LoadedModel:
    """A random-initialised model of preset ``preset_name`` with a :func:`random_tokenizer`.

    The embedding table matches the small vocabulary unless ``full_vocab`` keeps the preset's
    (e.g. 30522 rows for BERT, so a benchmark pays the real masked-LM head cost). The same
    ``seed`` gives the same weights. ``name`` is what the model is called (default: the preset).
    """
    base = preset(preset_name)
    tokenizer = random_tokenizer(base.model_type, base.max_position_embeddings, corpus)
    overrides = {} if full_vocab else {"vocab_size": tokenizer.vocab_size}
    config = preset(preset_name, pad_token_id=tokenizer.token_id("pad"), **overrides)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = build_model(config)
        model.init_weights()
    finally:
        torch.random.set_rng_state(generator_state)  # leave the caller's random stream alone
    model.eval()
    return LoadedModel(config=config, model=model, tokenizer=tokenizer, name=name or preset_name)
