"""The functions the engine thread runs for the window (submitted through :mod:`app.engine`).

Each calls ``core`` and returns plain data (dataclasses of numpy arrays and numbers); none does
maths of its own. ``core`` (and with it torch) is imported inside the functions, so importing
this module on the GUI thread costs nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from core.analysis import MaskPrediction
    from core.analysis.probe import ProbeResult
    from core.analysis.summary import ProbeAnalysis
    from core.analysis.words import WordLevel
    from core.cost.params import ParamBreakdown
    from core.loaded_model import LoadedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROOT = REPO_ROOT / "resources" / "models"
DEMO_NAMES = ("bert-mini", "albert-mini")  # always listed; random-initialised until trained
RANDOM_SUFFIX = " (random init)"


@dataclass(frozen=True)
class EngineInfo:
    torch_version: str  # "2.13.0+cu126 (CUDA 12.6)", "2.13.0+cpu (CPU build)"
    default_device: str  # e.g. "cpu", "cuda"
    device_name: str  # describe_device: "CPU", "CUDA: NVIDIA ..."
    accelerator: str | None  # "cuda"/"mps" when one exists, else None
    gpu_note: str | None = None  # why a GPU this machine has is not used (e.g. CPU build)


@dataclass
class ModelRow:
    """What the model list and model card show about a loaded model."""

    name: str
    family: str  # "bert" / "albert"
    device: str  # "cpu", "cuda:0", ...
    device_name: str
    config: dict[str, Any]  # config.json fields
    heads: tuple[str, ...]  # pre-training heads present
    params: ParamBreakdown
    random_init: bool
    sentence_objective: str = ""  # "nsp", "sop" or "none", as config.json records it

    @property
    def objective_note(self) -> str:
        """What the card adds when the sentence objective is not the family's own (the
        ALBERT paper's Table 5: a BERT trained with SOP, an ALBERT with NSP or MLM alone)."""
        from core.config import family_objective

        own = family_objective(self.family)
        if self.sentence_objective in ("", own):
            return ""
        if self.sentence_objective == "none":
            return f" \u2014 trained on MLM alone (no {own.upper()})"
        return (
            f" \u2014 trained with {self.sentence_objective.upper()} instead of "
            f"{self.family.upper()}'s {own.upper()}"
        )


@dataclass(frozen=True)
class Guess:
    """One guess as the Masked words list shows it."""

    token: str  # as the vocabulary spells it
    label: str  # without its piece markers (core.analysis.words.bare_token)
    prob: float
    piece: bool  # a sub-word piece (core.analysis.words.is_piece)


@dataclass(frozen=True)
class MaskGuesses:
    """One masked position's guesses both ways the Masked words list shows them, so toggling
    "whole words only" re-indexes instead of re-filtering on the GUI thread."""

    prediction: MaskPrediction
    top: list[Guess]  # the model's top-k, best first
    words: list[Guess]  # the best k whole words (core.analysis.words.word_guesses)
    original: str | None  # the masked token without its piece markers (predict_masked)


@dataclass
class MaskAnswer:
    """A "mask and predict" answer: which token was masked and the model's guesses."""

    prediction: MaskPrediction
    token: str  # the token that was replaced by [MASK]
    guesses: MaskGuesses


@dataclass
class ProbeOutcome:
    """A probe and the guesses at each of its masks, as the Masked words list shows them."""

    analysis: ProbeAnalysis
    guesses: list[MaskGuesses]  # one per [MASK] of the sentence
    sentencepiece: bool  # the tokenizer marks word starts with "\u2581" (ALBERT)


@dataclass
class WordViews:
    """Word-level attention of one probe (Clark et al. 2019) for every view that shows it: to a
    word summed over its pieces, from a word averaged over them."""

    words: WordLevel  # which pieces make up each word, and the words' labels
    attentions: np.ndarray  # (L, heads, W, W): the head grid and the heatmap's heads
    mean_maps: np.ndarray  # (L, W, W): the mean over heads (heatmap, token focus)
    rollout: np.ndarray  # (L, W, W): attention rollout


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

    import core.analysis
    import core.loaded_model  # noqa: F401  (warm the imports for the first model and probe)
    from core.device import cuda_unavailable_reason, describe_device, resolve_device, torch_build

    torch.set_num_threads(engine_threads(torch.get_num_threads()))

    device = resolve_device(None)
    return EngineInfo(
        torch_version=torch_build().removeprefix("torch "),
        default_device=str(device),
        device_name=describe_device(device),
        accelerator=device.type if device.type in ("cuda", "mps") else None,
        gpu_note=cuda_unavailable_reason(),
    )


def describe_loaded(loaded: LoadedModel, random_init: bool = False) -> ModelRow:
    """The model list's row and card of a model in memory."""
    from core.config import sentence_objective
    from core.cost.params import count_parameters
    from core.device import describe_device

    device = loaded.device
    return ModelRow(
        name=loaded.name,
        family=loaded.config.model_type,
        device=str(device),
        device_name=describe_device(device),
        config=loaded.config.to_dict(),
        heads=tuple(loaded.heads.names()),
        params=count_parameters(loaded.model),
        random_init=random_init,
        sentence_objective=sentence_objective(loaded.config),
    )


# Folder names that say nothing about the model: sentence-transformers packages keep their BERT
# in ".../all_minilm_l6_v2/model", training runs in ".../my-bert/final", the Hub cache in
# ".../snapshots/<commit hash>".
GENERIC_FOLDERS = frozenset({
    "model", "models", "final", "best", "last", "latest", "hf", "huggingface", "pytorch",
    "transformers", "weights", "checkpoint", "checkpoints", "snapshots", "output", "outputs",
    "out", "export", "exported", "saved_model", "main", "0_transformer", "0_bert",
})  # fmt: skip


def _generic(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in GENERIC_FOLDERS
        or re.fullmatch(r"(checkpoint|step|epoch)[-_]?\d+", lowered) is not None
        or re.fullmatch(r"[0-9a-f]{16,}", lowered) is not None  # a commit hash
    )


def model_display_name(folder: str | os.PathLike) -> str:
    """What the window calls a model folder: its name, unless that is generic ("model",
    "final", "checkpoint-500", a hash); then the nearest meaningful folder above, with the
    generic name after a slash when it tells runs apart ("my-bert/final",
    "my-bert/checkpoint-500"). The folders are the user's names, so they win over the config's
    ``_name_or_path`` (where the weights came from: "all-MiniLM-L6-v2/0_Transformer" is not
    "nreimers/MiniLM-L6-H384-uncased"); only in the Hub cache, whose folders the cache made
    (``models--org--name/snapshots/<hash>``), does ``_name_or_path`` come first."""
    path = Path(folder).resolve()
    if not _generic(path.name):
        return path.name
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
        named = str(data.get("_name_or_path") or "") if isinstance(data, dict) else ""
    except (OSError, ValueError):
        named = ""
    parents = [p.name for p in path.parents]
    hub = next((i for i, name in enumerate(parents) if name.startswith("models--")), len(parents))
    candidates = [*parents[:hub], *([Path(named).name] if named else []), *parents[hub:]]
    lowered = path.name.lower()
    keep = lowered in ("final", "best", "last", "latest") or lowered.startswith(
        ("checkpoint", "step", "epoch")
    )
    for name in candidates:
        if name.startswith("models--"):  # the Hub cache: models--org--name
            name = name.split("--")[-1]
        if name and not _generic(name):
            return f"{name}/{path.name}" if keep else name
    return path.name


def load_folder(
    path: str | os.PathLike, device: str | None = "cpu"
) -> tuple[LoadedModel, ModelRow]:
    """Load a Hugging Face-format folder; errors are the engine's ``BertScopeError`` s."""
    from core.loaded_model import load_model

    loaded = load_model(path, device=device)
    loaded.name = model_display_name(path)
    return loaded, describe_loaded(loaded)


def build_stand_in(name: str, seed: int = 0) -> tuple[LoadedModel, ModelRow]:
    """The random-initialised stand-in for demo ``name`` while the trained one is not there."""
    from core.random_models import build_random_model

    loaded = build_random_model(name, seed, name=name + RANDOM_SUFFIX)
    return loaded, describe_loaded(loaded, random_init=True)


def probe_and_analyze(
    loaded: LoadedModel, text: str, pair: str | None = None, top_k: int = 5
) -> ProbeAnalysis:
    """Probe one sentence (pair) and compute every statistic the Probe views show."""
    from core.analysis.summary import analyze

    # The views show predictions at [MASK] positions only, so the MLM head decodes just those
    # rows (full_logits=False): the vocabulary projection of every token is most of a small
    # model's forward pass.
    return analyze(loaded, text, pair or None, top_k=top_k, full_logits=False)


def is_sentencepiece(result: ProbeResult) -> bool:
    """Whether a probe's tokens mark word starts with "\u2581" (SentencePiece, as ALBERT's)."""
    return any(t.text.startswith("\u2581") for t in result.tokens)


def mask_guesses(prediction: MaskPrediction, sentencepiece: bool) -> MaskGuesses:
    """A prediction's top-k guesses and its best k whole words, labelled for the list."""
    from core.analysis.words import bare_token, is_piece, word_guesses

    def guess(token: str, prob: float) -> Guess:
        return Guess(token, bare_token(token), float(prob), is_piece(token, sentencepiece))

    k = len(prediction.tokens)
    original = prediction.original
    return MaskGuesses(
        prediction=prediction,
        top=[guess(t, p) for t, p in zip(prediction.tokens, prediction.probs, strict=True)],
        words=[guess(t, p) for t, p in word_guesses(prediction, k, sentencepiece)],
        original=bare_token(original) if original is not None else None,
    )


def probe_for_views(
    loaded: LoadedModel, text: str, pair: str | None = None, top_k: int = 5
) -> ProbeOutcome:
    """:func:`probe_and_analyze`, with the labelled guesses at each [MASK]."""
    analysis = probe_and_analyze(loaded, text, pair, top_k)
    sentencepiece = is_sentencepiece(analysis.result)
    return ProbeOutcome(
        analysis=analysis,
        guesses=[mask_guesses(m, sentencepiece) for m in analysis.result.masked],
        sentencepiece=sentencepiece,
    )


def word_views(analysis: ProbeAnalysis) -> WordViews:
    """Every word-level matrix the Probe views show, for the heatmap's "words" switch."""
    from core.analysis.words import word_attention

    words = analysis.words
    return WordViews(
        words=words,
        attentions=analysis.word_attentions,
        mean_maps=word_attention(analysis.attention.mean_maps, words),
        rollout=word_attention(analysis.attention.rollout, words),
    )


def mask_and_predict(
    loaded: LoadedModel,
    text: str,
    pair: str | None,
    position: int,
    token: str,
    top_k: int = 5,
    sentencepiece: bool = False,
) -> MaskAnswer:
    """Mask token ``position`` and predict it; ``sentencepiece`` as the probe's tokens say."""
    from core.analysis import predict_masked

    prediction = predict_masked(loaded, text, position, pair or None, top_k=top_k)
    return MaskAnswer(prediction, token, mask_guesses(prediction, sentencepiece))


def move_model(loaded: LoadedModel, device: str, random_init: bool) -> ModelRow:
    loaded.to(device)
    return describe_loaded(loaded, random_init=random_init)
