"""A memory model for inference and training, every figure with the formula behind it.

Training at batch B, sequence T, precision fp32 or bf16/fp16 *mixed* (``torch.autocast``: fp32
master weights, gradients and optimizer states; matmuls in half precision):

- weights ``4·N``; gradients ``4·N``; optimizer states: AdamW and LAMB both keep two fp32
  moments per parameter, ``8·N`` (so weights + gradients + AdamW = 16 bytes per parameter,
  the ZeRO paper's count for fp32 training);
- autocast's half-precision copies of the matmul weights, ``2·N_mm`` (mixed only), alive from
  the forward pass until backward has used them;
- activations: the tensors autograd saves for backward, listed op by op for this engine's
  layers (``core.bert`` / ``core.albert``), plus what the forward pass returns and the training
  loop holds (every layer's hidden state, the MLM logits). Attention maps are stored only when
  the attention kernel materialises them: PyTorch's fused kernels (flash / memory-efficient on
  CUDA, flash on CPU without dropout) keep only a log-sum-exp per query, while the CPU math
  path used with attention dropout keeps the softmax, its dropout mask and the dropped
  probabilities (3 maps of B·A·T·T fp32 per layer);
- the step's peak: ``weights + optimizer states + max(backward start, tied-decoder backward,
  optimizer step)`` (see :func:`training_memory` for each phase).

Inference (eval, no grad) keeps every hidden state, the attention maps when asked (the probe
does) and the MLM logits at every position, plus one layer's scratch tensors.

Byte sizes per tensor follow the autocast op lists of the device: on CUDA, LayerNorm and softmax
run in fp32; on CPU they keep their input's dtype, the CPU math attention upcasts to fp32 and
dropout masks have the input's dtype (CUDA: 1-byte bool). The CPU figures were checked against
:mod:`core.cost.measure` (tests and ``benchmarks/bench_analysis.py``); the CUDA variant
follows the same inventory with CUDA's kernels and was not measured here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.config import Heads, ModelConfig
from core.cost.settings import check_settings, masked_count

if TYPE_CHECKING:  # torch builds the meta-device model, in _counts
    from torch import nn

DEVICE_KINDS: tuple[str, ...] = ("cuda", "cpu")


@dataclass(frozen=True)
class MemoryItem:
    name: str
    bytes: int
    formula: str  # symbols: see MemoryEstimate.symbols; numbers are bytes per element
    group: str = ""  # "state", "activations", "transient", "peak"


@dataclass(frozen=True)
class MemoryEstimate:
    model: str
    mode: str  # "training" or "inference"
    batch: int
    seq: int
    precision: str  # fp32, bf16, fp16
    optimizer: str | None
    device: str  # which kernels the model assumes: "cuda" or "cpu"
    attention_kernel: str  # "fused" (no T x T maps kept) or "materialized"
    items: list[MemoryItem]
    total: int  # modelled peak bytes
    peak_phase: str  # the phase that sets the peak
    phases: dict[str, int] = field(default_factory=dict)  # phase -> bytes on top of the base
    symbols: dict[str, int] = field(default_factory=dict)

    def item(self, name: str) -> MemoryItem:
        return next(i for i in self.items if i.name == name)

    def get(self, name: str, default: int = 0) -> int:
        return next((i.bytes for i in self.items if i.name == name), default)

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per memory item, with the settings."""
        return [
            {
                "table": "memory",
                "model": self.model,
                "mode": self.mode,
                "item": i.name,
                "group": i.group,
                "bytes": i.bytes,
                "formula": i.formula,
                "batch": self.batch,
                "seq": self.seq,
                "precision": self.precision,
                "optimizer": self.optimizer,
                "device": self.device,
                "attention_kernel": self.attention_kernel,
            }
            for i in self.items
        ]


@dataclass(frozen=True)
class _Term:
    label: str
    elems: int
    bytes_each: int
    expr: str  # element count in symbols, e.g. "3·B·T·H"

    @property
    def bytes(self) -> int:
        return self.elems * self.bytes_each

    @property
    def formula(self) -> str:
        return f"{self.expr}·{self.bytes_each} ({self.label})"


def _sum(terms: list[_Term]) -> int:
    return sum(t.bytes for t in terms)


def _formula(terms: list[_Term], times: str = "") -> str:
    inner = " + ".join(t.formula for t in terms if t.elems) or "0"
    return f"{times} × ({inner})" if times else inner


@dataclass(frozen=True)
class _Counts:
    n_params: int  # unique
    n_cast: int  # unique parameters autocast copies (Linear weights/biases, tied decoder)
    n_cast_encoder: int  # of which in the embeddings and encoder (cast before the heads run)
    largest: int  # numel of the largest parameter tensor
    heads: Heads


def _counts(model: nn.Module | ModelConfig, heads: Heads | None) -> tuple[ModelConfig, _Counts]:
    from torch import nn

    from core.loaded_model import meta_model

    if isinstance(model, ModelConfig):
        model = meta_model(model, heads)
    params = {id(p): p for p in model.parameters()}
    cast: dict[int, int] = {}
    encoder: set[int] = set()
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            for p in m.parameters(recurse=False):
                cast[id(p)] = p.numel()
                if name.startswith(("embeddings", "encoder")):
                    encoder.add(id(p))
    if model.heads.mlm:  # the decoder is F.linear with the word embeddings and the bias
        word = model.embeddings.word_embeddings.weight
        cast[id(word)] = word.numel()
        bias = (
            model.cls.predictions.bias
            if model.config.model_type == "bert"
            else model.predictions.bias
        )
        cast[id(bias)] = bias.numel()
    return model.config, _Counts(
        n_params=sum(p.numel() for p in params.values()),
        n_cast=sum(cast.values()),
        n_cast_encoder=sum(n for key, n in cast.items() if key in encoder),
        largest=max(p.numel() for p in params.values()),
        heads=model.heads,
    )


def _symbols(config: ModelConfig, batch: int, seq: int, counts: _Counts, n_masked: int) -> dict:
    return {
        "B": batch, "T": seq, "H": config.hidden_size, "E": config.embedding_dim,
        "I": config.intermediate_size, "A": config.num_attention_heads,
        "L": config.effective_layers, "V": config.vocab_size, "N": n_masked,
        "Np": counts.n_params, "Nmm": counts.n_cast, "Nmax": counts.largest,
    }  # fmt: skip


def _dtypes(config: ModelConfig, precision: str, device: str) -> dict[str, int]:
    """Bytes per element of each tensor role under this precision and device's kernels."""
    mixed = precision != "fp32"
    c = 2 if mixed else 4  # matmul outputs
    # Residual stream / LayerNorm outputs: fp32, as CUDA autocast runs LayerNorm in fp32; on
    # CPU LayerNorm keeps its input dtype and ALBERT's stream starts at a (half) matmul.
    stream = c if mixed and device == "cpu" and config.model_type == "albert" else 4
    return {
        "c": c,
        "stream": stream,
        "cast": 2 if mixed and stream == 4 else 0,  # half copy of an fp32 matmul input
        "mask_hidden": 1 if device == "cuda" else c,  # dropout after a matmul
        "mask_embed": 1 if device == "cuda" else 4,  # dropout after the embedding LayerNorm
        "maps": 4 if (not mixed or device == "cuda") else c,  # inference softmax output
    }


def _layer_terms(
    config: ModelConfig, b: int, t: int, d: dict[str, int], materialized: bool, training: bool
) -> list[_Term]:
    """What one encoder layer leaves alive for backward (its input excluded: the previous
    layer's output), in the order the layer creates it."""
    H, I, A = config.hidden_size, config.intermediate_size, config.num_attention_heads
    P = b * t
    ph = training and config.hidden_dropout_prob > 0
    pa = training and config.attention_probs_dropout_prob > 0
    c, s = d["c"], d["stream"]
    terms = []
    if d["cast"]:
        terms.append(_Term("half copy of the layer input", P * H, 2, "B·T·H"))
    if materialized:  # CPU math attention: fp32 q, k, v and the T x T maps
        terms += [
            _Term("scaled q and k", 2 * P * H, 4, "2·B·T·H"),
            _Term("v", P * H, 4, "B·T·H"),
            _Term("attention probabilities", b * A * t * t, 4, "B·A·T·T"),
        ]
        if pa:
            terms += [
                _Term("attention dropout mask", b * A * t * t, 4, "B·A·T·T"),
                _Term("dropped probabilities", b * A * t * t, 4, "B·A·T·T"),
            ]
        terms.append(_Term("attention context", P * H, c, "B·T·H"))
    else:  # fused kernel: q, k, v (views of the qkv output), the output and its log-sum-exp
        terms += [
            _Term("qkv projection", 3 * P * H, c, "3·B·T·H"),
            _Term("attention output", P * H, c, "B·T·H"),
            _Term("log-sum-exp", b * A * t, 4, "B·A·T"),
        ]
    if ph:
        terms.append(_Term("dropout mask", P * H, d["mask_hidden"], "B·T·H"))
    terms += [
        _Term("residual sum", P * H, s, "B·T·H"),
        _Term("LayerNorm mean and rstd", 2 * P, 4, "2·B·T"),
        _Term("feed-forward input", P * H, d["cast"] or s, "B·T·H"),
        _Term("feed-forward pre-activation", P * I, c, "B·T·I"),
        _Term("feed-forward activation", P * I, c, "B·T·I"),
    ]
    if ph:
        terms.append(_Term("dropout mask", P * H, d["mask_hidden"], "B·T·H"))
    terms += [
        _Term("residual sum", P * H, s, "B·T·H"),
        _Term("LayerNorm mean and rstd", 2 * P, 4, "2·B·T"),
        _Term("layer output", P * H, s, "B·T·H"),
    ]
    return terms


def _attention_maps(terms: list[_Term]) -> int:
    return sum(t.bytes for t in terms if "B·A·T·T" in t.expr)


def _embedding_terms(config: ModelConfig, b: int, t: int, d: dict[str, int]) -> list[_Term]:
    E, H = config.embedding_dim, config.hidden_size
    P = b * t
    terms = [
        _Term("input and segment ids, positions", 2 * P + t, 8, "(2·B·T + T)"),
        _Term("embedding sum", P * E, 4, "B·T·E"),
        _Term("LayerNorm mean and rstd", 2 * P, 4, "2·B·T"),
    ]
    if config.hidden_dropout_prob > 0:
        terms.append(_Term("dropout mask", P * E, d["mask_embed"], "B·T·E"))
    terms.append(_Term("embedding output", P * E, 4, "B·T·E"))
    if config.model_type == "albert":
        if d["c"] == 2:
            terms.append(_Term("half copy for the E->H projection", P * E, 2, "B·T·E"))
        terms.append(_Term("projected embeddings (layer 0)", P * H, d["c"], "B·T·H"))
    return terms


def _head_terms(
    config: ModelConfig, counts: _Counts, b: int, t: int, n: int, d: dict[str, int]
) -> tuple[list[_Term], list[_Term]]:
    """Saved tensors of the pooler/NSP/SOP and MLM heads, and the loss tensors (logits kept
    by the output, fp32 log-softmax saved by cross-entropy)."""
    H, V = config.hidden_size, config.vocab_size
    Eh = config.embedding_dim if config.model_type == "albert" else H  # MLM transform width
    c = d["c"]
    heads: list[_Term] = []
    loss: list[_Term] = []
    if counts.heads.pooler:
        heads.append(_Term("pooler input and tanh output", b * H, c + (d["cast"] or 0), "B·H"))
    if counts.heads.mlm:
        heads += [
            _Term("masked-position selection", b * t, 1, "B·T"),
            _Term("selected hidden states", n * H, d["cast"] or d["stream"], "N·H"),
            _Term("MLM transform and activation", 2 * n * Eh, c, "2·N·E'"),
            _Term("MLM LayerNorm output", n * Eh, c, "N·E'"),
        ]
        loss += [
            _Term("MLM logits", n * V, c, "N·V"),
            _Term("log-softmax", n * V, 4, "N·V"),
        ]
    return heads, loss


def training_memory(
    model: nn.Module | ModelConfig,
    batch: int = 8,
    seq: int = 128,
    precision: str = "fp32",
    optimizer: str = "adamw",
    device: str = "cuda",
    name: str | None = None,
    heads: Heads | None = None,
) -> MemoryEstimate:
    """Modelled peak memory of one training step (forward, loss, backward, optimizer step)
    with the MLM head on 15% of the positions, as :func:`core.cost.measure.
    measure_training_memory` runs it.

    Phases, on top of weights + optimizer states:
      backward start: activations + 2·N·V·4 (the loss's gradient buffers over the vocabulary);
      tied-decoder backward: activations − N·V·4 + N·V·c + V·E·c (+ V·E·4 mixed), the word
        embeddings' gradient is born while nearly every activation is still alive;
      optimizer step: gradients + the outputs the loop still holds + the optimizer's scratch
        (AdamW for-loop on CPU: 2 x the largest tensor; foreach on CUDA: one N-sized list;
        LAMB: 3 x the largest tensor on CPU, its foreach update list on CUDA).
    """
    if device not in DEVICE_KINDS:
        raise ValueError(f"device must be one of {DEVICE_KINDS}, got {device!r}")
    config, counts = _counts(model, heads)
    check_settings(batch, seq, precision, optimizer, config)
    mixed = precision != "fp32"
    d = _dtypes(config, precision, device)
    n = masked_count(batch, seq) if counts.heads.mlm else 0
    syms = _symbols(config, batch, seq, counts, n)
    L, V, E = config.effective_layers, config.vocab_size, config.embedding_dim
    materialized = device == "cpu" and config.attention_probs_dropout_prob > 0
    Np = counts.n_params

    emb = _embedding_terms(config, batch, seq, d)
    layer = _layer_terms(config, batch, seq, d, materialized, training=True)
    head, loss = _head_terms(config, counts, batch, seq, n, d)
    maps = L * _attention_maps(layer)
    layers_bytes = L * _sum(layer) - maps
    casts = 2 * counts.n_cast if mixed else 0
    activations = _sum(emb) + layers_bytes + maps + _sum(head) + _sum(loss) + casts

    weights = 4 * Np
    grads = 4 * Np
    states = 8 * Np  # AdamW: exp_avg, exp_avg_sq; LAMB: m, v (fp32 each)
    if optimizer == "lamb" and device == "cuda":
        opt_tmp, opt_form = Np * 4, "Np·4 (foreach LAMB: the update of every tensor)"
    elif optimizer == "lamb":
        opt_tmp, opt_form = 3 * counts.largest * 4, "3·Nmax·4 (LAMB scratch, largest tensor)"
    elif device == "cuda":
        opt_tmp, opt_form = Np * 4, "Np·4 (foreach AdamW: sqrt of exp_avg_sq for all tensors)"
    else:
        opt_tmp, opt_form = 2 * counts.largest * 4, "2·Nmax·4 (for-loop AdamW, largest tensor)"
    kept = (L + 1) * batch * seq * config.hidden_size * d["stream"] + n * V * d["c"]

    has_mlm = counts.heads.mlm
    phases = {
        "backward start": activations + (2 * n * V * 4 if has_mlm else 0),
        "tied-decoder backward": activations
        + ((n * V * (d["c"] - 4) + V * E * d["c"] + (V * E * 4 if mixed else 0)) if has_mlm else 0),
        "optimizer step": grads + kept + opt_tmp,
    }
    peak_phase = max(phases, key=phases.get)
    total = weights + states + phases[peak_phase]
    c = d["c"]
    items = [
        MemoryItem("weights", weights, "Np·4 (fp32 master weights)", "state"),
        MemoryItem("gradients", grads, "Np·4 (fp32, accumulated into .grad)", "state"),
        MemoryItem(
            "optimizer states",
            states,
            f"Np·2·4 ({'AdamW' if optimizer == 'adamw' else 'LAMB'}: 2 fp32 moments)",
            "state",
        ),
        MemoryItem(
            "autocast weight copies",
            casts,
            "Nmm·2 (half copies of matmul weights)" if mixed else "0 (fp32: no copies)",
            "activations",
        ),
        MemoryItem("activations: embeddings", _sum(emb), _formula(emb), "activations"),
        MemoryItem(
            "activations: encoder layers",
            layers_bytes,
            _formula([t for t in layer if "B·A·T·T" not in t.expr], "L"),
            "activations",
        ),
        MemoryItem(
            "activations: attention maps",
            maps,
            _formula([t for t in layer if "B·A·T·T" in t.expr], "L")
            if maps
            else "0 (fused attention kernel keeps only a log-sum-exp per query)",
            "activations",
        ),
        MemoryItem("activations: heads", _sum(head), _formula(head), "activations"),
        MemoryItem("activations: loss", _sum(loss), _formula(loss), "activations"),
        MemoryItem("activations total", activations, "sum of the activation items", "activations"),
        MemoryItem(
            "backward-start transient",
            phases["backward start"] - activations,
            "2·N·V·4 (loss gradients over the vocabulary)",
            "transient",
        ),
        MemoryItem("optimizer-step scratch", opt_tmp, opt_form, "transient"),
        MemoryItem(
            "outputs held during the step",
            kept,
            f"(L+1)·B·T·H·{d['stream']} + N·V·{c} (hidden states, MLM logits)",
            "transient",
        ),
        MemoryItem(
            "peak",
            total,
            "weights + optimizer states + max(backward start = "
            "activations + 2·N·V·4, decoder backward = activations − N·V·4 + N·V·c + "
            "V·E·c [+ V·E·4 mixed], optimizer step = gradients + outputs held + "
            "optimizer scratch)",
            "peak",
        ),
    ]
    return MemoryEstimate(
        model=name or config.model_type,
        mode="training",
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=optimizer,
        device=device,
        attention_kernel="materialized" if materialized else "fused",
        items=items,
        total=total,
        peak_phase=peak_phase,
        phases=phases,
        symbols=syms,
    )


def inference_memory(
    model: nn.Module | ModelConfig,
    batch: int = 1,
    seq: int = 128,
    precision: str = "fp32",
    output_attentions: bool = True,
    device: str = "cuda",
    name: str | None = None,
    heads: Heads | None = None,
) -> MemoryEstimate:
    """Modelled peak of one eval forward pass that keeps every hidden state, the attention maps
    (``output_attentions``) and the MLM logits at every position, as the probe runs it."""
    if device not in DEVICE_KINDS:
        raise ValueError(f"device must be one of {DEVICE_KINDS}, got {device!r}")
    config, counts = _counts(model, heads)
    check_settings(batch, seq, precision, config=config)
    mixed = precision != "fp32"
    d = _dtypes(config, precision, device)
    syms = _symbols(config, batch, seq, counts, 0)
    B, T, H, I, A = (
        batch,
        seq,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
    )
    L, V, P = config.effective_layers, config.vocab_size, batch * seq
    Eh = config.embedding_dim if config.model_type == "albert" else H
    c, s = d["c"], d["stream"]
    weights = 4 * counts.n_params
    casts = 2 * counts.n_cast if mixed else 0
    hidden = (L + 1) * P * H * s
    maps = L * B * A * T * T * d["maps"] if output_attentions else 0
    # Scratch of the last layer, at its busiest moment. Attention, at its LayerNorm: the qkv
    # output (q, k, v views keep it), the scaled scores (the kept probabilities are in
    # `maps`; SDPA without maps returns its output instead), the context, the residual sum,
    # the LayerNorm output and statistics. Feed-forward: its input, then either the
    # pre-activation and activation, or the activation, the residual sum and the LayerNorm
    # output.
    scores = B * A * T * T * c if output_attentions else P * H * c
    scores_expr = "B·A·T·T" if output_attentions else "B·T·H"
    attn_scratch = 3 * P * H * c + scores + P * H * c + 2 * P * H * s + 2 * P * 4
    ffn_scratch = P * H * s + max(2 * P * I * c, P * I * c + 2 * P * H * s + 2 * P * 4)
    scratch = max(attn_scratch, ffn_scratch)
    logits = P * V * c if counts.heads.mlm else 0
    head_scratch = P * Eh * c if counts.heads.mlm else 0
    # autocast caches each weight's half copy (parameters require grad, even under no_grad)
    # until the autocast region ends: the encoder's are alive in the last layer, all at the end
    encoder_casts = 2 * counts.n_cast_encoder if mixed else 0
    phases = {
        "last layer": encoder_casts + hidden - P * H * s + maps + scratch,
        "MLM logits": casts + hidden + maps + head_scratch + logits,
    }
    peak_phase = max(phases, key=phases.get)
    total = weights + phases[peak_phase]
    items = [
        MemoryItem("weights", weights, "Np·4", "state"),
        MemoryItem(
            "autocast weight copies", casts, "Nmm·2" if mixed else "0 (fp32: no copies)", "state"
        ),
        MemoryItem("hidden states", hidden, f"(L+1)·B·T·H·{s}", "activations"),
        MemoryItem(
            "activations: attention maps",
            maps,
            f"L·B·A·T·T·{d['maps']}" if output_attentions else "0 (not requested)",
            "activations",
        ),
        MemoryItem(
            "MLM logits", logits, f"B·T·V·{c}" if logits else "0 (no MLM head)", "activations"
        ),
        MemoryItem(
            "layer scratch",
            scratch,
            f"max(attention: 3·B·T·H·{c} + {scores_expr}·{c}"
            f" + B·T·H·{c} + 2·B·T·H·{s} + 2·B·T·4, feed-forward: B·T·H·{s} + "
            f"max(2·B·T·I·{c}, B·T·I·{c} + 2·B·T·H·{s} + 2·B·T·4))",
            "transient",
        ),
        MemoryItem(
            "peak",
            total,
            "weights + max(last layer: encoder autocast copies + hidden states of L layers + "
            "maps + layer scratch, MLM logits: all autocast copies + all hidden states + maps + "
            "B·T·E'·c + logits)",
            "peak",
        ),
    ]
    return MemoryEstimate(
        model=name or config.model_type,
        mode="inference",
        batch=batch,
        seq=seq,
        precision=precision,
        optimizer=None,
        device=device,
        attention_kernel="materialized" if output_attentions else "fused",
        items=items,
        total=total,
        peak_phase=peak_phase,
        phases=phases,
        symbols=syms,
    )
