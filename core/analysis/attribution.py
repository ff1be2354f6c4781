"""Attribution of one output to the input tokens: which tokens drive a prediction.

Targets: the logit of one vocabulary entry at a ``[MASK]`` (default the model's top guess), or
the logit of one class of the sentence head (BERT's NSP, ALBERT's SOP) for a pair. Methods:

- ``saliency`` (Simonyan et al. 2014): the L2 norm over the embedding dimension of the gradient
  of the target logit with respect to each token's embedding;
- ``gxi``: gradient × input, summed over the embedding dimension;
- ``ig``, Integrated Gradients (Sundararajan et al. 2017): (x − x′) · ∫₀¹ ∂F(x′ + α(x − x′))/∂x
  dα, summed over the embedding dimension, with the integral taken by Gauss-Legendre quadrature
  (Captum's default rule, ``method="gausslegendre"``) over ``steps`` nodes. The steps run as
  batches of interpolated inputs through one forward and one backward each, in chunks of at most
  ``chunk_tokens`` tokens so that memory stays bounded for long inputs. Completeness says
  Σ attributions = F(x) − F(x′); :attr:`Attribution.completeness_error` is the relative miss,
  the sign that more steps are needed.

The attributed layer is the word-embedding output (width H for BERT, ALBERT's factorized E), or
for ALBERT, ``layer="hidden"``, the output of ``embedding_hidden_mapping_in`` (width H; word,
position and segment embeddings together after the E → H projection).

IG baselines x′ (special tokens — [CLS], [SEP] and any [MASK] — are kept in every baseline, so
only the words are integrated over):

- ``pad`` (the default): every word replaced by ``[PAD]``. In pre-training the [PAD] row never
  receives a gradient (padding is neither attended to nor predicted), so it stays near its small
  initialisation: a "no word here" input that keeps the real position and segment embeddings, as
  in Captum's BERT tutorial, so figures compare with the literature;
- ``mask``: every word replaced by ``[MASK]``, in-distribution for a masked LM but read by the
  model as "predict something here";
- ``zero``: the attributed layer's rows of the words set to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    import torch

    from core.analysis.ablation import HeadMask
    from core.loaded_model import LoadedModel
    from core.tokenizer import Encoded

METHODS = ("saliency", "gxi", "ig")
BASELINES = ("pad", "mask", "zero")
DEFAULT_BASELINE = "pad"
LAYERS = ("word", "hidden")
CHUNK_TOKENS = 2048  # interpolated tokens per forward/backward: 512 tokens x 4 steps at a time


@dataclass(frozen=True)
class Target:
    """What is attributed: ``kind`` "mask" (the logit of ``token`` at ``position``, None = the
    top guess) or "sentence" (the logit of class ``label`` of the NSP/SOP head, None = the
    predicted class)."""

    kind: str
    position: int | None = None
    token: str | None = None
    label: int | None = None


def parse_target(spec: str) -> tuple[Target, bool]:
    """``mask:3`` / ``mask:3:word`` / ``sentence`` / ``sentence:1`` -> (target, word mode)."""
    parts = spec.split(":")
    if parts[0] == "mask" and len(parts) in (2, 3) and parts[1].isdigit():
        if len(parts) == 3 and parts[2] != "word":
            raise InputError(f"--target {spec!r}: the third part can only be 'word'")
        return Target("mask", position=int(parts[1])), len(parts) == 3
    if parts[0] == "sentence" and (len(parts) == 1 or (len(parts) == 2 and parts[1] in "01")):
        label = int(parts[1]) if len(parts) == 2 and parts[1] else None
        return Target("sentence", label=label), False
    raise InputError(
        f"--target {spec!r}: expected mask:POSITION, mask:POSITION:word, sentence or sentence:0|1"
    )


@dataclass(frozen=True)
class Attribution:
    """Per-token (and, in word mode, per-word) attributions of one target."""

    model_name: str
    method: str  # "saliency", "gxi" or "ig"
    target: str  # what was attributed, in words
    target_kind: str  # "mask" or "sentence"
    position: int | None  # the [MASK]'s token index (mask targets)
    target_id: int  # vocabulary id (mask) or class (sentence)
    target_token: str  # the vocabulary entry, or the class's label
    layer: str  # where the attribution is taken, in words, with its width
    tokens: list[str]
    scores: np.ndarray  # (T,) float64
    words: list[str] | None  # word labels in word mode
    word_scores: np.ndarray | None  # (W,) float64: pieces summed
    baseline: str | None  # IG only
    steps: int | None  # IG only
    f_input: float  # the target logit at the input
    f_baseline: float | None  # IG: at the baseline
    completeness_error: float | None  # IG: |Σ attr − (F(x) − F(x′))| / |F(x) − F(x′)|

    @property
    def labels(self) -> list[str]:
        """What the scores belong to: words in word mode, else tokens."""
        return self.words if self.words is not None else self.tokens

    @property
    def values(self) -> np.ndarray:
        return self.word_scores if self.word_scores is not None else self.scores

    def table_rows(self) -> list[dict]:
        rows = [
            {"table": "attribution", "index": i, "label": label, "score": float(v)}
            for i, (label, v) in enumerate(zip(self.labels, self.values, strict=True))
        ]
        rows.append(
            {
                "table": "target",
                "target": self.target,
                "method": self.method,
                "layer": self.layer,
                "baseline": self.baseline,
                "steps": self.steps,
                "f_input": self.f_input,
                "f_baseline": self.f_baseline,
                "completeness_error": self.completeness_error,
            }
        )
        return rows


def _check(loaded: LoadedModel, method: str, steps: int, baseline: str, layer: str) -> None:
    if method not in METHODS:
        raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise InputError(f"--baseline {baseline!r}: expected one of {', '.join(BASELINES)}")
    if layer not in LAYERS:
        raise InputError(f"layer {layer!r}: expected one of {', '.join(LAYERS)}")
    if layer == "hidden" and loaded.config.model_type != "albert":
        raise InputError("layer 'hidden' (after embedding_hidden_mapping_in) is ALBERT's only")
    if method == "ig" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise InputError(f"--steps must be a positive integer, got {steps!r}")
    if method == "ig" and baseline != "zero":
        role = "pad" if baseline == "pad" else "mask"
        if role not in loaded.tokenizer.special or loaded.tokenizer.token_id(role) is None:
            raise InputError(
                f"--baseline {baseline}: the vocabulary has no {role} token; use another baseline"
            )


def _layer_module(loaded: LoadedModel, layer: str) -> torch.nn.Module:
    if layer == "hidden":
        return loaded.model.encoder.embedding_hidden_mapping_in
    return loaded.model.embeddings.word_embeddings


def _layer_name(loaded: LoadedModel, layer: str) -> str:
    c = loaded.config
    if layer == "hidden":
        return f"output of embedding_hidden_mapping_in (H={c.hidden_size})"
    if c.model_type == "albert":
        return f"word embeddings (E={c.embedding_size})"
    return f"word embeddings (H={c.hidden_size})"


class _Scorer:
    """The target logit as a function of the attributed layer's output: a forward hook puts
    the given (n, T, D) tensor in place of the layer's output for a batch of n copies."""

    def __init__(self, loaded: LoadedModel, encoded: Encoded, target: Target, position, head_mask):

        self.loaded = loaded
        self.target = target
        self.position = position
        tensors = encoded.tensors(loaded.device)
        self.ids = tensors["input_ids"]
        self.types = tensors["token_type_ids"]
        self.head_mask = head_mask
        self.replacement: torch.Tensor | None = None
        self.captured: torch.Tensor | None = None

    def hook(self, module, inputs, output):
        self.captured = output
        if self.replacement is not None:
            return self.replacement
        return output

    def logits(self, ids: torch.Tensor, n: int) -> torch.Tensor:
        """The head's logits (n, V) at the target position, or the sentence head's (n, 2)."""
        import torch

        ids = ids.expand(n, -1)
        kwargs = {}
        if self.target.kind == "mask":
            selected = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
            selected[:, self.position] = True
            kwargs["mlm_positions"] = selected
        out = self.loaded.model(
            ids, token_type_ids=self.types.expand(n, -1), head_mask=self.head_mask, **kwargs
        )
        if self.target.kind == "mask":
            return out.mlm_logits
        return out.nsp_logits if out.nsp_logits is not None else out.sop_logits


def attribute(
    loaded: LoadedModel,
    text: str,
    target: Target,
    pair: str | None = None,
    method: str = "ig",
    steps: int = 32,
    baseline: str = DEFAULT_BASELINE,
    layer: str = "word",
    words: bool = False,
    head_mask: HeadMask | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
) -> Attribution:
    """Attribute ``target`` to the input tokens of ``text`` (and ``pair``) by ``method``.

    Raises :class:`InputError` for a mask target that is not a [MASK], a token the vocabulary
    lacks, a sentence target without a pair or a sentence head, 0 steps, or a baseline token
    the vocabulary lacks."""
    import torch

    _check(loaded, method, steps, baseline, layer)
    encoded = loaded.encode(text, pair)
    tok = loaded.tokenizer
    mask_id = tok.token_id("mask")
    if target.kind == "mask":
        if not loaded.heads.mlm:
            raise InputError(f"--target mask: {loaded.name} has no MLM head")
        pos = target.position
        if pos is None or not 0 <= pos < len(encoded):
            raise InputError(
                f"--target mask:{pos}: position outside the sequence (0..{len(encoded) - 1})"
            )
        if encoded.input_ids[pos] != mask_id:
            raise InputError(
                f"--target mask:{pos}: token {pos} is {encoded.tokens[pos]!r}, not "
                f"{tok.mask_token}; mask the word first"
            )
    elif target.kind == "sentence":
        if loaded.heads.sentence is None:
            raise InputError(f"--target sentence: {loaded.name} has no NSP/SOP head")
        if pair is None or not encoded.sequence_ids.count(1):
            raise InputError("--target sentence needs a pair (--pair): the head judges two texts")
        pos = None
    else:
        raise InputError(f"target kind {target.kind!r}: expected 'mask' or 'sentence'")
    gate = None if head_mask is None else head_mask.tensor(loaded.device)
    scorer = _Scorer(loaded, encoded, target, pos, gate)
    model = loaded.model
    model.eval()
    handle = _layer_module(loaded, layer).register_forward_hook(scorer.hook)
    try:
        with torch.no_grad():
            logits = scorer.logits(scorer.ids, 1)[0]
            x = scorer.captured[0].detach()  # (T, D): the layer's output at the input
        target_id, target_token = _resolve(loaded, target, logits)
        if method == "ig":
            base, f_b = _baseline(loaded, encoded, scorer, baseline, x, target_id)
            attr = _integrated_gradients(scorer, x, base, target_id, steps, chunk_tokens)
            f_x = float(logits[target_id])
            err = abs(attr.sum() - (f_x - f_b)) / max(abs(f_x - f_b), 1e-30)
            scores = attr
        else:
            grad, f_x = _gradient(scorer, x, target_id)
            scores = (
                np.linalg.norm(grad, axis=-1)
                if method == "saliency"
                else (grad * x.double().cpu().numpy()).sum(-1)
            )
            f_b = err = None
    finally:
        handle.remove()
    if target.kind == "mask":
        described = f"logit of {target_token!r} at token {pos}"
    else:
        described = f"{loaded.heads.sentence.upper()} logit of class {target_id} ({target_token})"
    word_labels = word_scores = None
    if words:
        from core.analysis.probe import token_infos
        from core.analysis.words import group_words

        level = group_words(token_infos(encoded), text, pair)
        word_labels = level.labels
        word_scores = level.membership.astype(np.float64) @ scores
    return Attribution(
        model_name=loaded.name,
        method=method,
        target=described,
        target_kind=target.kind,
        position=pos,
        target_id=int(target_id),
        target_token=target_token,
        layer=_layer_name(loaded, layer),
        tokens=list(encoded.tokens),
        scores=np.asarray(scores, dtype=np.float64),
        words=word_labels,
        word_scores=word_scores,
        baseline=baseline if method == "ig" else None,
        steps=steps if method == "ig" else None,
        f_input=float(f_x),
        f_baseline=None if f_b is None else float(f_b),
        completeness_error=None if err is None else float(err),
    )


def _resolve(loaded: LoadedModel, target: Target, logits: torch.Tensor) -> tuple[int, str]:
    """The vocabulary id (or class) the target names, and its spelling."""
    from core.analysis.probe import SENTENCE_LABELS

    if target.kind == "sentence":
        label = int(logits.argmax()) if target.label is None else target.label
        head = loaded.heads.sentence.upper()
        name = SENTENCE_LABELS[head] if label == 0 else f"not {SENTENCE_LABELS[head]}"
        return label, name
    if target.token is None:
        tid = int(logits.argmax())
        return tid, loaded.tokenizer.id_to_token(tid) or f"<{tid}>"
    tid = loaded.tokenizer.backend.token_to_id(target.token)
    if tid is None or tid >= logits.shape[-1]:
        raise InputError(f"--token {target.token!r} is not in {loaded.name}'s vocabulary")
    return int(tid), target.token


def _baseline(
    loaded: LoadedModel,
    encoded: Encoded,
    scorer: _Scorer,
    baseline: str,
    x: torch.Tensor,
    target_id: int,
) -> tuple[torch.Tensor, float]:
    """x′ at the attributed layer (T, D), words replaced, special tokens and [MASK]s kept;
    and F(x′)."""
    import torch

    mask_id = loaded.tokenizer.token_id("mask")
    words = torch.tensor(
        [
            not s and t != mask_id
            for s, t in zip(encoded.special_tokens_mask, encoded.input_ids, strict=True)
        ],
        device=x.device,
    )
    with torch.no_grad():
        if baseline == "zero":
            base = x.masked_fill(words[:, None], 0.0)
            scorer.replacement = base[None]
            try:
                logits = scorer.logits(scorer.ids, 1)
            finally:
                scorer.replacement = None
            return base, float(logits[0, target_id])
        fill = loaded.tokenizer.token_id(baseline)
        logits = scorer.logits(scorer.ids.masked_fill(words[None, :], fill), 1)
        return scorer.captured[0].detach(), float(logits[0, target_id])


def _integrated_gradients(
    scorer: _Scorer,
    x: torch.Tensor,
    base: torch.Tensor,
    target_id: int,
    steps: int,
    chunk_tokens: int,
) -> np.ndarray:
    """IG per token (T,): Gauss-Legendre nodes, in chunks of steps."""
    import torch

    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = 0.5 * (nodes + 1.0)
    weights = 0.5 * weights
    T = x.shape[0]
    per_chunk = max(1, chunk_tokens // T)
    delta = x - base  # (T, D)
    total = torch.zeros_like(x, dtype=torch.float64)
    for start in range(0, steps, per_chunk):
        a = torch.tensor(alphas[start : start + per_chunk], dtype=x.dtype, device=x.device)
        w = torch.tensor(weights[start : start + per_chunk], dtype=torch.float64, device=x.device)
        points = (base[None] + a[:, None, None] * delta[None]).requires_grad_(True)
        scorer.replacement = points
        try:
            out = scorer.logits(scorer.ids, len(a))[:, target_id]
        finally:
            scorer.replacement = None
        (grad,) = torch.autograd.grad(out.sum(), points)
        total += (grad.double() * w[:, None, None]).sum(0)
    return (delta.double() * total).sum(-1).cpu().numpy()


def _gradient(scorer: _Scorer, x: torch.Tensor, target_id: int) -> tuple[np.ndarray, float]:
    """∂F/∂x at the input (T, D) and F(x)."""
    import torch

    point = x[None].clone().requires_grad_(True)
    scorer.replacement = point
    try:
        out = scorer.logits(scorer.ids, 1)[0, target_id]
    finally:
        scorer.replacement = None
    (grad,) = torch.autograd.grad(out, point)
    return grad[0].double().cpu().numpy(), float(out.item())
