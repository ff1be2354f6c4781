"""Loading tokenizers: typed [MASK] as transformers tokenizes it, special tokens from the files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import TokenizerError
from core.tokenizer import load_tokenizer
from core.tokenizer_train import train_tokenizer
from tests.core.training_text import write_corpus

transformers = pytest.importorskip("transformers")

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
# A mask in the middle, at the start, after punctuation (with and without a space), twice in a
# row, at the end, and in the second text of a pair.
MASKED = [
    ("he [MASK] to the house and opened the door .", None),
    ("[MASK] went home.", None),
    ("she laughed.[MASK] was there", None),
    ("and jesus said unto [MASK] , follow me .", None),
    ("two [MASK] [MASK] here", None),
    ("the sailor watched the [MASK]", None),
    ("the [MASK] of the lord came upon him .", "[MASK] answered , and went ."),
]


def reference(folder: Path, model_type: str):
    """transformers' tokenizers for a folder: the family's class, as AutoTokenizer picks it,
    and the plain one that reads nothing but tokenizer.json."""
    cls = (
        transformers.AlbertTokenizerFast
        if model_type == "albert"
        else transformers.BertTokenizerFast
    )
    return [
        cls.from_pretrained(str(folder)),
        transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json")),
    ]


def assert_same_as_transformers(folder: Path, model_type: str) -> None:
    ours = load_tokenizer(folder, model_type, 128)
    mask_id = ours.token_id("mask")
    for ref in reference(folder, model_type):
        for text, pair in MASKED:
            enc = ours.encode(text, pair)
            theirs = ref(text, pair, return_token_type_ids=True)
            assert enc.input_ids == theirs["input_ids"], (type(ref).__name__, text, enc.tokens)
            assert enc.token_type_ids == theirs["token_type_ids"]
            assert enc.tokens == ref.convert_ids_to_tokens(theirs["input_ids"])
            # the mask stands alone: no stray "▁" piece before it
            for i, tok in enumerate(enc.input_ids):
                if tok == mask_id and i > 0:
                    assert enc.tokens[i - 1] not in ("▁", "")


@pytest.mark.parametrize("model_type", ["albert", "bert"])
def test_shipped_tokenizers_split_a_typed_mask_as_transformers_does(model_type):
    assert_same_as_transformers(MODELS / f"{model_type}-mini", model_type)
    enc = load_tokenizer(MODELS / f"{model_type}-mini", model_type, 128).encode(MASKED[0][0])
    expected = {"albert": ["▁he", "[MASK]", "▁to"], "bert": ["he", "[MASK]", "to"]}
    assert enc.tokens[1:4] == expected[model_type]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("tok") / "text.txt", n_docs=30)


@pytest.mark.parametrize("model_type", ["albert", "bert"])
def test_trained_tokenizers_split_a_typed_mask_as_transformers_does(model_type, corpus, tmp_path):
    train_tokenizer([corpus], model_type, vocab_size=100).save(tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    mask = next(t for t in saved["added_tokens"] if t["content"] == "[MASK]")
    assert mask["lstrip"] is (model_type == "albert")  # as transformers' AlbertTokenizer
    assert_same_as_transformers(tmp_path, model_type)


def test_an_older_albert_folder_gets_the_mask_fixed_when_loaded(tmp_path):
    shutil.copy(MODELS / "albert-mini" / "tokenizer.json", tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    for token in data["added_tokens"]:
        token["lstrip"] = False  # as `train` wrote it before
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    tok = load_tokenizer(tmp_path, "albert", 128)
    assert tok.encode("he [MASK] to").tokens == ["[CLS]", "▁he", "[MASK]", "▁to", "[SEP]"]


# -- special tokens ----------------------------------------------------------------------------
def folder_with(tmp_path: Path, source: str, config: dict | None = None) -> Path:
    """A folder holding ``source``'s tokenizer.json and a tokenizer_config.json that names no
    special tokens."""
    shutil.copy(MODELS / source / "tokenizer.json", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config or {"do_lower_case": True}))
    return tmp_path


@pytest.mark.parametrize(
    ("model_type", "source", "pad", "unk"),
    [
        ("albert", "bert-mini", "[PAD]", "[UNK]"),  # ALBERT with BERT's spellings
        ("bert", "albert-mini", "<pad>", "<unk>"),  # BERT with ALBERT's spellings
        ("albert", "albert-mini", "<pad>", "<unk>"),
        ("bert", "bert-mini", "[PAD]", "[UNK]"),
    ],
)
def test_special_tokens_come_from_tokenizer_json(model_type, source, pad, unk, tmp_path):
    tok = load_tokenizer(folder_with(tmp_path, source), model_type, 128)
    assert tok.special == {"cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "pad": pad, "unk": unk}
    assert [tok.token_id(r) for r in ("pad", "unk", "cls", "sep", "mask")] == [0, 1, 2, 3, 4]


def test_special_tokens_named_only_by_the_tokenizer_json_structure(tmp_path):
    """Unusual spellings: unk from the model, [CLS]/[SEP] roles from the post-processor."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = {t: i for i, t in enumerate(["<blank>", "<oov>", "<go>", "<stop>", "<mask>", "a", "b"])}
    backend = HFTokenizer(WordPiece(vocab, unk_token="<oov>"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="<go> $A <stop>", pair="<go> $A <stop> $B:1 <stop>:1",
        special_tokens=[("<go>", 2), ("<stop>", 3)],
    )  # fmt: skip
    backend.add_special_tokens(["<blank>", "<oov>", "<go>", "<stop>", "<mask>"])
    backend.enable_padding(pad_id=0, pad_token="<blank>")
    backend.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(tmp_path, "bert", 64)
    assert tok.special == {
        "cls": "<go>",
        "sep": "<stop>",
        "mask": "<mask>",
        "pad": "<blank>",
        "unk": "<oov>",
    }
    assert tok.encode("a <mask> b").tokens == ["<go>", "a", "<mask>", "b", "<stop>"]


def test_tokenizer_config_names_win(tmp_path):
    folder = folder_with(tmp_path, "bert-mini", {"unk_token": "[PAD]", "pad_token": "[UNK]"})
    tok = load_tokenizer(folder, "albert", 128)
    assert tok.special["unk"] == "[PAD]" and tok.special["pad"] == "[UNK]"


def test_vocab_txt_with_the_other_familys_spellings(tmp_path):
    words = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "the", "king"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = load_tokenizer(tmp_path, "bert", 32)
    assert tok.special["pad"] == "<pad>" and tok.special["unk"] == "<unk>"
    assert tok.encode("the queen").tokens == ["[CLS]", "the", "<unk>", "[SEP]"]


def test_a_role_with_no_token_is_refused_by_name(tmp_path):
    data = json.loads((MODELS / "bert-mini" / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "[MASK]"]
    vocab = data["model"]["vocab"]
    vocab["[UNUSED]"] = vocab.pop("[MASK]")
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match=r"no mask token: .*\['\[MASK\]', '<mask>'\]"):
        load_tokenizer(tmp_path, "albert", 128)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"mask_token": "<m>"}))
    with pytest.raises(TokenizerError, match="not in the vocabulary: mask '<m>'"):
        load_tokenizer(tmp_path, "bert", 128)


@pytest.mark.parametrize("text", ['{"version": "1.0"}', "[1,2]", '{"model": 3}', '"text"'])
def test_valid_json_that_is_not_a_tokenizers_file_is_named_so(tmp_path, text):
    """Not the Rust library's "expected `,` or `}` at line 1 column 9"."""
    (tmp_path / "tokenizer.json").write_text(text)
    with pytest.raises(TokenizerError) as err:
        load_tokenizer(tmp_path, "bert", 64)
    path = tmp_path / "tokenizer.json"
    assert str(err.value) == f"{path}: not a tokenizers file (no `model` section)"


def test_a_tokenizer_json_that_is_not_json_says_malformed(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(TokenizerError, match=r"tokenizer.json: malformed JSON \(Expecting value"):
        load_tokenizer(tmp_path, "bert", 64)
