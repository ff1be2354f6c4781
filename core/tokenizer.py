"""Tokenizers for checkpoints: ``tokenizer.json`` (any family) or a BERT ``vocab.txt``.

Built on the Hugging Face ``tokenizers`` library so that word pieces, lower-casing and special
tokens match what the checkpoint was trained with. A single sentence is never padded (even when
``tokenizer.json`` asks for fixed-length padding); text longer than the model's positions is
truncated and the result says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordPiece

from core.errors import InputError, TokenizerError

SPECIAL_DEFAULTS = {
    "bert": {"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "pad": "[PAD]", "unk": "[UNK]"},
    "albert": {"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "pad": "<pad>", "unk": "<unk>"},
}
# Spellings of each role that either family (or a converted checkpoint) uses, tried in this
# order when neither tokenizer_config.json nor tokenizer.json names the role's token.
SPECIAL_SPELLINGS = {
    "cls": ("[CLS]", "<cls>", "<s>"),
    "sep": ("[SEP]", "<sep>", "</s>"),
    "mask": ("[MASK]", "<mask>"),
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
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
        missing = [
            f"{role} {tok!r}" for role, tok in special.items() if backend.token_to_id(tok) is None
        ]
        if missing:
            raise TokenizerError(f"special tokens not in the vocabulary: {', '.join(missing)}")
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
        # A typed special token that absorbs the space before it (ALBERT's [MASK], lstrip)
        # comes back as " [MASK]"; show the vocabulary's spelling, as transformers does.
        added = self.backend.get_added_tokens_decoder()
        return Encoded(
            input_ids=list(enc.ids),
            token_type_ids=list(enc.type_ids),
            tokens=[
                added[i].content if i in added else t
                for i, t in zip(enc.ids, enc.tokens, strict=True)
            ],
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


def _configured_specials(config: dict) -> dict[str, str]:
    """The special tokens ``tokenizer_config.json`` names explicitly, by role."""
    named = {}
    for role in SPECIAL_SPELLINGS:
        value = config.get(f"{role}_token")
        if isinstance(value, dict):  # AddedToken serialised as a dict
            value = value.get("content")
        if isinstance(value, str) and value:
            named[role] = value
    return named


def specials_of_backend(backend: HFTokenizer) -> dict[str, str]:
    """The special tokens a ``tokenizer.json`` itself names: the model's unknown token, the
    post-processor's first and last special tokens ([CLS] ... [SEP]), the padding token, and
    the added special tokens that are spelled like a role's token (a mask has no other source).
    """
    data = json.loads(backend.to_str())
    found: dict[str, str] = {}
    model = data.get("model") or {}
    if isinstance(model.get("unk_token"), str):
        found["unk"] = model["unk_token"]
    elif isinstance(model.get("unk_id"), int) and 0 <= model["unk_id"] < len(
        model.get("vocab", [])
    ):
        found["unk"] = model["vocab"][model["unk_id"]][0]  # Unigram: [piece, score] pairs
    post = data.get("post_processor") or {}
    processors_ = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for proc in processors_:
        if proc.get("type") == "TemplateProcessing":
            marks = [p["SpecialToken"]["id"] for p in proc.get("single", []) if "SpecialToken" in p]
            ids = proc.get("special_tokens", {})
            tokens = [ids[m]["tokens"][0] if ids.get(m, {}).get("tokens") else m for m in marks]
            if tokens and proc["single"][0].get("SpecialToken"):
                found.setdefault("cls", tokens[0])
            if tokens and proc["single"][-1].get("SpecialToken"):
                found.setdefault("sep", tokens[-1])
        elif proc.get("type") in ("BertProcessing", "RobertaProcessing"):
            found.setdefault("cls", proc["cls"][0])
            found.setdefault("sep", proc["sep"][0])
    padding = data.get("padding") or {}
    if isinstance(padding.get("pad_token"), str):
        found["pad"] = padding["pad_token"]
    added = [t["content"] for t in data.get("added_tokens", []) if t.get("special")]
    for role, spellings in SPECIAL_SPELLINGS.items():
        if role not in found:
            match = [tok for tok in added if tok in spellings]
            if match:
                found[role] = min(match, key=spellings.index)
    return found


def resolve_special_tokens(
    model_type: str,
    config: dict,
    from_files: dict[str, str],
    in_vocab: Callable[[str], bool],
    source: str,
) -> dict[str, str]:
    """The token of each role: named in ``tokenizer_config.json``, else named by
    ``tokenizer.json`` (``from_files``), else the family's spelling if the vocabulary has it,
    else another known spelling that it has. Refuses a role no source can fill."""
    if model_type not in SPECIAL_DEFAULTS:
        raise TokenizerError(f"unknown model type {model_type!r}; expected 'bert' or 'albert'")
    named = _configured_specials(config)
    special = {}
    for role, default in SPECIAL_DEFAULTS[model_type].items():
        if role in named:
            special[role] = named[role]  # checked against the vocabulary by Tokenizer
            continue
        candidates = [from_files.get(role), default, *SPECIAL_SPELLINGS[role]]
        found = next((tok for tok in candidates if tok is not None and in_vocab(tok)), None)
        if found is None:
            raise TokenizerError(
                f"{source}: no {role} token: tokenizer_config.json names none ({role}_token) "
                f"and the vocabulary has none of {list(dict.fromkeys(candidates[1:]))}"
            )
        special[role] = found
    return special


def read_vocab_txt(vocab_path: Path) -> dict[str, int]:
    """A BERT ``vocab.txt``: one token a line, its id the line number (first occurrence wins)."""
    vocab: dict[str, int] = {}
    for index, line in enumerate(vocab_path.read_text(encoding="utf-8").splitlines()):
        vocab.setdefault(line.rstrip("\n"), index)
    if not vocab:
        raise TokenizerError(f"{vocab_path}: empty vocabulary")
    return vocab


def wordpiece_from_vocab(vocab_path: Path, lowercase: bool, special: dict[str, str]) -> HFTokenizer:
    """The BERT tokenizer pipeline (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP] B
    [SEP]) built from a ``vocab.txt``, as transformers' ``BertTokenizerFast`` builds it."""
    vocab = read_vocab_txt(vocab_path)
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


def strip_left_of_mask(backend: HFTokenizer, mask: str) -> None:
    """Make a SentencePiece-style (Metaspace) tokenizer's mask token absorb the space before it,
    as ALBERT's does (``AddedToken("[MASK]", lstrip=True)`` in transformers): otherwise
    "he [MASK] to" becomes "▁he ▁ [MASK] ▁to", with a stray "▁" piece the model never saw
    before a mask in training. WordPiece tokenizers drop spaces anyway and are left alone."""
    data = json.loads(backend.to_str())
    pre = data.get("pre_tokenizer") or {}
    kinds = {p.get("type") for p in pre.get("pretokenizers", [pre])}
    if "Metaspace" not in kinds:
        return
    for token in data.get("added_tokens", []):
        if token["content"] == mask and not token["lstrip"]:
            backend.add_special_tokens(
                [AddedToken(mask, lstrip=True, rstrip=token["rstrip"], normalized=False,
                            single_word=token["single_word"], special=True)]
            )  # fmt: skip


def read_tokenizer_json(path: Path) -> HFTokenizer:
    """A ``tokenizer.json``; one line naming ``path`` when it is not valid JSON or valid JSON
    that is not a tokenizers file (the Rust library would say "expected `,` or `}` at line 1
    column 9" about ``{"version": "1.0"}``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TokenizerError(f"{path}: not UTF-8 text (a tokenizer.json is JSON)") from None
    except OSError as err:
        raise TokenizerError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TokenizerError(f"{path}: malformed JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise TokenizerError(f"{path}: not a tokenizers file (no `model` section)")
    try:
        return HFTokenizer.from_str(text)
    except Exception as err:  # the Rust library raises a bare Exception
        raise TokenizerError(f"{path}: cannot be read ({err})") from None


def load_tokenizer(folder: str | Path, model_type: str, max_length: int) -> Tokenizer:
    """Load the tokenizer of a checkpoint folder: ``tokenizer.json``, else ``vocab.txt`` (BERT).

    Special tokens come from ``tokenizer_config.json`` where it names them, else from
    ``tokenizer.json`` (see :func:`specials_of_backend`), else from the spellings the vocabulary
    holds; so an ALBERT folder with BERT's [PAD]/[UNK] (or the reverse) loads."""
    folder = Path(folder)
    config = _read_tokenizer_config(folder)
    max_length = min(max_length, int(config.get("model_max_length", max_length) or max_length))
    lowercase = config.get("do_lower_case")
    tokenizer_json = folder / "tokenizer.json"
    vocab_txt = folder / "vocab.txt"
    if tokenizer_json.is_file():
        backend = read_tokenizer_json(tokenizer_json)
        special = resolve_special_tokens(
            model_type,
            config,
            specials_of_backend(backend),
            lambda tok: backend.token_to_id(tok) is not None,
            str(tokenizer_json),
        )
        if model_type == "albert":
            strip_left_of_mask(backend, special["mask"])
    elif vocab_txt.is_file() and model_type == "bert":
        vocab = read_vocab_txt(vocab_txt)
        special = resolve_special_tokens(model_type, config, {}, vocab.__contains__, str(vocab_txt))
        backend = wordpiece_from_vocab(
            vocab_txt, lowercase if lowercase is not None else True, special
        )
    else:
        hint = "tokenizer.json or vocab.txt" if model_type == "bert" else "tokenizer.json"
        raise TokenizerError(f"{folder}: no tokenizer found (expected {hint})")
    return Tokenizer(backend, special, max_length, lowercase)
