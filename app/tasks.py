"""The engine calls the window makes, as plain functions run by :mod:`app.workers`.

Each function calls ``core`` and returns plain data (dataclasses of numpy arrays and numbers);
none does maths of its own. ``core`` (and with it torch) is imported inside the functions, so
importing this module on the GUI thread costs nothing.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from core.analysis import AttentionStats, LayerStats, MaskPrediction, ProbeResult
    from core.analysis.summary import ProbeAnalysis
    from core.cost.params import ParamBreakdown
    from core.loaded_model import LoadedModel
    from core.tokenizer import Tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_ROOT = REPO_ROOT / "resources" / "models"
CORPUS = REPO_ROOT / "resources" / "corpus" / "train.txt"
DEMO_NAMES = ("bert-mini", "albert-mini")  # always listed; random-initialised until trained
RANDOM_SUFFIX = " (random init)"
RANDOM_VOCAB_WORDS = 3000


@dataclass(frozen=True)
class EngineInfo:
    torch_version: str
    default_device: str  # e.g. "cpu", "cuda"
    device_name: str  # describe_device: "CPU", "CUDA: NVIDIA ..."
    accelerator: str | None  # "cuda"/"mps" when one exists, else None


@dataclass
class ModelSummary:
    """What the model list and model card show about a loaded model."""

    name: str
    family: str  # "bert" / "albert"
    device: str  # "cpu", "cuda:0", ...
    device_name: str
    config: dict[str, Any]  # config.json fields
    heads: tuple[str, ...]  # pre-training heads present
    params: ParamBreakdown
    random_init: bool


@dataclass
class ProbeBundle:
    """One probe and everything the Probe views draw from it, all computed by ``core``
    (``core.analysis.summary.analyze``: probe, layer and attention statistics, PCA, pairs)."""

    analysis: ProbeAnalysis
    key: str = ""  # model key in the state
    generation: int = 0
    seconds: float = 0.0  # engine time for probe + statistics

    @property
    def result(self) -> ProbeResult:
        return self.analysis.result

    @property
    def attention(self) -> AttentionStats:
        return self.analysis.attention

    @property
    def layers(self) -> LayerStats:
        return self.analysis.layers

    @property
    def pca(self) -> np.ndarray:  # (L+1, T, 2) per-layer 2-D PCA of the tokens
        return self.analysis.pca

    @property
    def pca_variance(self) -> np.ndarray:  # (L+1, 2) explained-variance ratios
        return self.analysis.pca_variance

    @property
    def pairs(self) -> dict[str, np.ndarray | None]:  # (L, heads) cross-text attention mass
        return {"a_to_b": self.analysis.a_to_b, "b_to_a": self.analysis.b_to_a}


@dataclass
class MaskedBundle:
    """A "mask and predict" answer: which token was masked and the model's guesses."""

    prediction: MaskPrediction
    token: str  # the token that was replaced by [MASK]
    key: str = ""
    generation: int = 0


def engine_threads(default: int) -> int:
    """CPU threads for torch in the window: ``$BERTSCOPE_TORCH_THREADS``, else one core fewer
    than the machine has, so the GUI thread always has a core to itself. (On a busy 2-core
    machine two OpenMP threads made a bert-mini probe 70x slower than one: 370 ms vs 5 ms.)"""
    wanted = os.environ.get("BERTSCOPE_TORCH_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return max(1, min(default, (os.cpu_count() or 2) - 1))


def engine_info() -> EngineInfo:
    """Import torch and ``core`` (the slow part of start-up) and name the default device."""
    import torch

    import core.analysis  # noqa: F401  (warm the import for the first probe)
    from core.device import describe_device, resolve_device

    torch.set_num_threads(engine_threads(torch.get_num_threads()))

    device = resolve_device(None)
    return EngineInfo(
        torch_version=torch.__version__,
        default_device=str(device),
        device_name=describe_device(device),
        accelerator=device.type if device.type in ("cuda", "mps") else None,
    )


def summarize(loaded: LoadedModel, random_init: bool = False) -> ModelSummary:
    from core.cost.params import count_parameters
    from core.device import describe_device

    device = loaded.device
    return ModelSummary(
        name=loaded.name,
        family=loaded.config.model_type,
        device=str(device),
        device_name=describe_device(device),
        config=loaded.config.to_dict(),
        heads=tuple(loaded.heads.names()),
        params=count_parameters(loaded.model),
        random_init=random_init,
    )


def load_folder(
    path: str | os.PathLike, device: str | None = "cpu"
) -> tuple[LoadedModel, ModelSummary]:
    """Load a Hugging Face-format folder; errors are the engine's ``BertScopeError`` s."""
    from core.loaded_model import load_model

    loaded = load_model(path, device=device)
    return loaded, summarize(loaded)


# -- random-initialised demo models (until the trained ones ship) ----------------------------
def _random_vocab(special: dict[str, str]) -> Path:
    """A WordPiece vocabulary: special tokens, characters and the corpus's commonest words.

    Written once to the temp folder (atomically) and reused; its name hashes its content.
    """
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,;:!?'\"()-[]&*/")
    words: list[str] = []
    if CORPUS.is_file():
        counts: collections.Counter[str] = collections.Counter()
        with CORPUS.open(encoding="utf-8") as f:
            for _, line in zip(range(40000), f, strict=False):
                counts.update(re.findall(r"[a-z]+", line.lower()))
        words = [w for w, _ in counts.most_common(RANDOM_VOCAB_WORDS) if len(w) > 1]
    specials = [special["pad"], special["unk"], special["cls"], special["sep"], special["mask"]]
    vocab = list(dict.fromkeys(specials + chars + punct + ["##" + c for c in chars] + words))
    text = "\n".join(vocab) + "\n"
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"bertscope-random-vocab-{digest}.txt"
    if not path.is_file():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def random_tokenizer(family: str, max_length: int = 512) -> Tokenizer:
    """A lower-casing WordPiece tokenizer over :func:`_random_vocab` for ``family``."""
    from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, wordpiece_from_vocab

    special = SPECIAL_DEFAULTS[family]
    backend = wordpiece_from_vocab(_random_vocab(special), lowercase=True, special=special)
    return Tokenizer(backend, special, max_length, do_lower_case=True)


def build_random_model(
    name: str, seed: int = 0, full_vocab: bool = False
) -> tuple[LoadedModel, ModelSummary]:
    """A random-initialised model of preset ``name`` with a :func:`random_tokenizer`.

    The embedding table matches the small vocabulary unless ``full_vocab`` keeps the preset's
    (e.g. 30522 rows for BERT, so a benchmark pays the real masked-LM head cost).
    """
    import torch

    from core.config import preset
    from core.loaded_model import LoadedModel, build_model

    base = preset(name)
    tokenizer = random_tokenizer(base.model_type, base.max_position_embeddings)
    overrides = {} if full_vocab else {"vocab_size": tokenizer.vocab_size}
    config = preset(name, pad_token_id=tokenizer.token_id("pad"), **overrides)
    torch.manual_seed(seed)
    model = build_model(config)
    model.init_weights()
    model.eval()
    loaded = LoadedModel(config=config, model=model, tokenizer=tokenizer, name=name + RANDOM_SUFFIX)
    return loaded, summarize(loaded, random_init=True)


def build_random_demo(name: str, seed: int = 0) -> tuple[LoadedModel, ModelSummary]:
    """The stand-in for a demo model that has not been trained yet."""
    return build_random_model(name, seed)


# -- probing -------------------------------------------------------------------------------
def run_probe(
    loaded: LoadedModel, text: str, pair: str | None = None, top_k: int = 5
) -> ProbeBundle:
    """Probe one sentence (pair) and compute every statistic the Probe views show."""
    import time

    from core.analysis.summary import analyze

    start = time.perf_counter()
    # The views show predictions at [MASK] positions only, so the MLM head decodes just those
    # rows (full_logits=False): the vocabulary projection of every token is most of a small
    # model's forward pass.
    analysis = analyze(loaded, text, pair or None, top_k=top_k, full_logits=False)
    return ProbeBundle(analysis, seconds=time.perf_counter() - start)


def run_mask(
    loaded: LoadedModel, text: str, pair: str | None, position: int, token: str, top_k: int = 5
) -> MaskedBundle:
    from core.analysis import predict_masked

    return MaskedBundle(predict_masked(loaded, text, position, pair or None, top_k=top_k), token)


def move_model(loaded: LoadedModel, device: str, random_init: bool) -> ModelSummary:
    loaded.to(device)
    return summarize(loaded, random_init=random_init)


def memory_in_use(device: str) -> int | None:
    """Accelerator memory allocated (bytes) via ``core.device``; None on CPU."""
    import torch

    from core.device import memory_in_use as core_memory

    return core_memory(torch.device(device))
