"""Small synthetic corpora and tokenizers for the training tests (fast, deterministic)."""

from __future__ import annotations

import random
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, pre_tokenizers
from tokenizers.models import WordLevel

from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, bert_post_processor
from core.training import TrainConfig

# A bert-tiny `train` on CPU, one thread, tokenizer trained to 80 pieces: the CLI tests' settings.
TINY_TRAIN_ARGS = [
    "--preset",
    "bert-tiny",
    "--seq-len",
    "32",
    "--batch-size",
    "4",
    "--vocab-size",
    "80",
    "--max-positions",
    "64",
    "--warmup",
    "1",
    "--device",
    "cpu",
    "--threads",
    "1",
]


def tiny_train_config(**changes) -> TrainConfig:
    """A bert-tiny run on the CPU (32 wide, 2 layers, 32 tokens, batches of 4, 3 steps): the
    in-process trainer tests' settings; ``changes`` replace any of them."""
    base = {
        "arch": "bert",
        "preset": "bert-tiny",
        "steps": 3,
        "batch_size": 4,
        "seq_len": 32,
        "lr": 2e-3,
        "warmup": 1,
        "device": "cpu",
        "eval_examples": 8,
        "config_overrides": {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64},
    }
    base.update(changes)
    return TrainConfig(**base)


def write_train_and_heldout(folder: Path, seed: int) -> Path:
    """``folder``/train.txt (16 documents) and heldout.txt (6), from seeds ``seed``, ``seed + 1``."""
    write_corpus(folder / "train.txt", n_docs=16, seed=seed)
    write_corpus(folder / "heldout.txt", n_docs=6, seed=seed + 1)
    return folder


ADJECTIVES = ["old", "young", "quiet", "bright", "gentle", "stubborn", "curious", "weary"]
NOUNS = [
    "captain",
    "sailor",
    "sister",
    "whale",
    "garden",
    "letter",
    "carriage",
    "village",
    "neighbour",
    "harbour",
    "stranger",
    "teacher",
]
VERBS = ["watched", "answered", "followed", "admired", "visited", "forgot", "praised", "doubted"]
ADVERBS = ["slowly", "warmly", "often", "quickly", "rarely", "kindly"]


def sentence(rng: random.Random) -> str:
    s = (
        f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} "
        f"the {rng.choice(NOUNS)}"
    )
    if rng.random() < 0.5:
        s += f" {rng.choice(ADVERBS)}"
    return s + " ."


def write_corpus(
    path: Path, n_docs: int = 12, sentences: tuple[int, int] = (4, 9), seed: int = 0
) -> Path:
    """Documents of grammatical toy sentences, one per line, blank lines between documents."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        docs.append("\n".join(sentence(rng) for _ in range(rng.randint(*sentences))))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def counting_tokenizer(n_words: int, model_type: str = "bert", max_length: int = 512) -> Tokenizer:
    """Whitespace word-level tokenizer over words ``t0 .. t{n-1}`` (ids 5 ..): a corpus that
    writes the k-th word as ``t{k}`` has token id = 5 + global position, so tests can tell
    exactly where every token of an example came from."""
    special = SPECIAL_DEFAULTS[model_type]
    vocab = {special[r]: i for i, r in enumerate(("pad", "unk", "cls", "sep", "mask"))}
    for k in range(n_words):
        vocab[f"t{k}"] = k + 5
    backend = HFTokenizer(WordLevel(vocab, unk_token=special["unk"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()
    backend.post_processor = bert_post_processor(backend, special)
    return Tokenizer(backend, special, max_length)


def write_counting_corpus(path: Path, doc_sentences: list[list[int]]) -> int:
    """``doc_sentences[d]`` lists the sentence lengths of document d; words are numbered in
    order. Returns the number of words written."""
    k = 0
    docs = []
    for lengths in doc_sentences:
        lines = []
        for n in lengths:
            lines.append(" ".join(f"t{k + j}" for j in range(n)))
            k += n
        docs.append("\n".join(lines))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return k


def word_tokenizer(model_type: str = "bert", max_length: int = 512) -> Tokenizer:
    """Deterministic word-level tokenizer for :func:`write_corpus` text (the library's
    trainers break ties in hash order, so trained vocabularies vary between processes)."""
    special = SPECIAL_DEFAULTS[model_type]
    words = ["the", ".", *ADJECTIVES, *NOUNS, *VERBS, *ADVERBS]
    vocab = {special[r]: i for i, r in enumerate(("pad", "unk", "cls", "sep", "mask"))}
    vocab.update({w: i + 5 for i, w in enumerate(words)})
    backend = HFTokenizer(WordLevel(vocab, unk_token=special["unk"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()
    backend.post_processor = bert_post_processor(backend, special)
    return Tokenizer(backend, special, max_length)
