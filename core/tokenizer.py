"""Tokenizers for checkpoints: ``tokenizer.json`` (any family) or a BERT ``vocab.txt``.

Built on the Hugging Face ``tokenizers`` library so that word pieces, lower-casing and special
tokens match what the checkpoint was trained with. A single sentence is never padded (even when
``tokenizer.json`` asks for fixed-length padding); text longer than the model's positions is
truncated and the result says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from core.errors import InputError, TokenizerError

SPECIAL_DEFAULTS = {
    "bert": {"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "pad": "[PAD]", "unk": "[UNK]"},
    "albert": {"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "pad": "<pad>", "unk": "<unk>"},
}


@dataclass(frozen=True)
class Encoded:
    """One encoded text (or text pair), unpadded; lists of length T."""

    input_ids: list[int]
    token_type_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character span of each token in its own text
    special_tokens_mask: list[int]  # 1 for [CLS]/[SEP]/...
    sequence_ids: list[int | None]  # 0 = first text, 1 = pair, None = special token
    word_ids: list[int | None]  # which word of its text the token belongs to
    truncated: bool  # the text was longer than the model allows and was cut

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def attention_mask(self) -> list[int]:
        """All ones: a single encoded text is never padded."""
        return [1] * len(self.input_ids)

    def tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Model inputs for a batch of one."""
        return {
            "input_ids": torch.tensor([self.input_ids], device=device),
            "attention_mask": torch.tensor([self.attention_mask], device=device),
            "token_type_ids": torch.tensor([self.token_type_ids], device=device),
        }


class Tokenizer:
    """A checkpoint's tokenizer plus the special tokens the models need."""

    def __init__(
        self,
        backend: HFTokenizer,
        special: dict[str, str],
        max_length: int,
        do_lower_case: bool | None = None,
    ):
        self.backend = backend
        self.special = dict(special)
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        missing = [tok for tok in special.values() if backend.token_to_id(tok) is None]
        if missing:
            raise TokenizerError(f"special tokens {missing} are not in the vocabulary")
        backend.no_padding()
        backend.enable_truncation(max_length=max_length)

    # -- special tokens ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_id(self, name: str) -> int:
        """Id of a special token by role: 'cls', 'sep', 'mask', 'pad' or 'unk'."""
        return self.backend.token_to_id(self.special[name])

    @property
    def mask_token(self) -> str:
        return self.special["mask"]

    @property
    def special_ids(self) -> set[int]:
        return {self.token_id(name) for name in self.special}

    def id_to_token(self, token_id: int) -> str:
        return self.backend.id_to_token(token_id)

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, text: str, pair: str | None = None) -> Encoded:
        if not isinstance(text, str) or not text.strip():
            raise InputError("empty text: type a sentence to encode")
        if pair is not None and not pair.strip():
            pair = None
        enc = self.backend.encode(text, pair, add_special_tokens=True)
        return Encoded(
            input_ids=list(enc.ids),
            token_type_ids=list(enc.type_ids),
            tokens=list(enc.tokens),
            offsets=[tuple(o) for o in enc.offsets],
            special_tokens_mask=list(enc.special_tokens_mask),
            sequence_ids=list(enc.sequence_ids),
            word_ids=list(enc.word_ids),
            truncated=len(enc.overflowing) > 0,
        )

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(ids, skip_special_tokens=True)

    # -- files -------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``tokenizer.json`` and a ``tokenizer_config.json`` transformers understands."""
        backend = HFTokenizer.from_str(self.backend.to_str())
        backend.no_truncation()
        backend.save(str(folder / "tokenizer.json"))
        config = {f"{name}_token": tok for name, tok in self.special.items()}
        config["model_max_length"] = self.max_length
        if self.do_lower_case is not None:
            config["do_lower_case"] = self.do_lower_case
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _read_tokenizer_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"{path}: malformed JSON ({err})") from None
    return data if isinstance(data, dict) else {}


def _special_tokens(model_type: str, config: dict) -> dict[str, str]:
    special = dict(SPECIAL_DEFAULTS[model_type])
    for name in special:
        value = config.get(f"{name}_token")
        if isinstance(value, dict):  # AddedToken serialised as a dict
            value = value.get("content")
        if isinstance(value, str):
            special[name] = value
    return special


def wordpiece_from_vocab(vocab_path: Path, lowercase: bool, special: dict[str, str]) -> HFTokenizer:
    """The BERT tokenizer pipeline (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP] B
    [SEP]) built from a ``vocab.txt``, as transformers' ``BertTokenizerFast`` builds it."""
    vocab: dict[str, int] = {}
    for index, line in enumerate(vocab_path.read_text(encoding="utf-8").splitlines()):
        vocab.setdefault(line.rstrip("\n"), index)
    if not vocab:
        raise TokenizerError(f"{vocab_path}: empty vocabulary")
    backend = HFTokenizer(WordPiece(vocab, unk_token=special["unk"]))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = bert_post_processor(backend, special)
    backend.decoder = decoders.WordPiece(prefix="##")
    # As BertTokenizerFast does: special tokens typed in the text ("[MASK]") stay whole
    # instead of being lower-cased and split into "[", "mask", "]".
    backend.add_special_tokens(list(dict.fromkeys(special.values())))
    return backend


def bert_post_processor(
    backend: HFTokenizer, special: dict[str, str]
) -> processors.TemplateProcessing:
    cls, sep = special["cls"], special["sep"]
    return processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )


def load_tokenizer(folder: str | Path, model_type: str, max_length: int) -> Tokenizer:
    """Load the tokenizer of a checkpoint folder: ``tokenizer.json``, else ``vocab.txt`` (BERT)."""
    folder = Path(folder)
    config = _read_tokenizer_config(folder)
    special = _special_tokens(model_type, config)
    max_length = min(max_length, int(config.get("model_max_length", max_length) or max_length))
    lowercase = config.get("do_lower_case")
    tokenizer_json = folder / "tokenizer.json"
    vocab_txt = folder / "vocab.txt"
    if tokenizer_json.is_file():
        try:
            backend = HFTokenizer.from_file(str(tokenizer_json))
        except Exception as err:  # the Rust library raises a bare Exception
            raise TokenizerError(f"{tokenizer_json}: cannot be read ({err})") from None
    elif vocab_txt.is_file() and model_type == "bert":
        backend = wordpiece_from_vocab(
            vocab_txt, lowercase if lowercase is not None else True, special
        )
    else:
        hint = "tokenizer.json or vocab.txt" if model_type == "bert" else "tokenizer.json"
        raise TokenizerError(f"{folder}: no tokenizer found (expected {hint})")
    return Tokenizer(backend, special, max_length, lowercase)
