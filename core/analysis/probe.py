"""Probe a model with one sentence (or sentence pair): tokens, attentions, hidden states and
masked-word predictions, as numpy arrays ready to plot and export.

One forward pass in eval mode with ``output_attentions=True`` gives everything the views show:
attentions ``(L_eff, heads, T, T)``, hidden states ``(L_eff + 1, T, H)`` (embedding output first)
and, when the model has its masked-LM head, the logits at every position. Every ``[MASK]`` the
user typed gets its top-k predictions; :func:`predict_masked` masks any one token on the fly
(the probing idiom of Devlin et al. 2019 and of the "BERT as a cloze model" literature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:  # torch is imported by the functions that run the model
    import torch

    from core.analysis.ablation import HeadMask
    from core.blocks import ModelOutput
    from core.loaded_model import LoadedModel
    from core.tokenizer import Encoded

NO_MLM_NOTE = "model has no MLM head: masked-word predictions are not available"
# What class 0 of each sentence head means (the training data's label 0, as in transformers).
SENTENCE_LABELS = {"NSP": "is next", "SOP": "in order"}


@dataclass(frozen=True)
class TokenInfo:
    """One token of the encoded input."""

    text: str  # the token as the tokenizer spells it ("##ing", "▁the", "[CLS]")
    id: int  # vocabulary id
    special: bool  # [CLS], [SEP], [PAD], ...
    continuation: bool  # a word piece that continues the previous token's word
    span: tuple[int, int] | None  # character span in the text it came from (None for specials)
    segment: int  # token type: 0 (text A, [CLS], first [SEP]) or 1 (text B, last [SEP])
    sequence: int | None = None  # which text the characters come from: 0, 1, or None (special)


@dataclass(frozen=True)
class MaskPrediction:
    """The model's top-k guesses for one masked position."""

    position: int  # token index in the input
    tokens: list[str]  # best first
    ids: list[int]
    probs: np.ndarray  # (k,) softmax probabilities over the whole vocabulary, best first
    original: str | None = None  # the token that was masked (predict_masked), else None
    original_rank: int | None = None  # its 1-based rank among the whole vocabulary
    original_prob: float | None = None  # its probability
    pool_tokens: list[str] = field(default_factory=list)  # top POOL guesses, for filtering
    pool_probs: np.ndarray | None = None  # (POOL,) their probabilities


@dataclass(frozen=True)
class SentencePrediction:
    """The sentence head's verdict on a pair: BERT's NSP (class 0 = B follows A) or ALBERT's
    SOP (class 0 = A and B in their original order), as the training data labels them."""

    head: str  # "NSP" or "SOP"
    prob: float  # softmax probability of class 0: is next (NSP) / in order (SOP)
    logits: np.ndarray  # (2,) float32, the head's raw output

    @property
    def label(self) -> str:
        return SENTENCE_LABELS[self.head]

    def describe(self) -> str:
        """The one line the window and the CLI show, e.g. 'P(is next) = 0.87 (NSP head)'."""
        return f"P({self.label}) = {self.prob:.2f} ({self.head} head)"


@dataclass
class ProbeResult:
    """Everything one forward pass shows about a sentence. Arrays are float32 numpy."""

    model_name: str
    model_type: str  # "bert" or "albert"
    text: str
    pair: str | None
    tokens: list[TokenInfo]
    input_ids: np.ndarray  # (T,) int64
    segment_ids: np.ndarray  # (T,) int64
    attentions: np.ndarray  # (L_eff, heads, T, T), rows sum to 1
    hidden_states: np.ndarray  # (L_eff + 1, T, H), embedding output first
    mlm_logits: np.ndarray | None  # (T, V) or None without an MLM head
    masked: list[MaskPrediction]  # one per [MASK] in the input, in order
    truncated: bool  # the input was longer than the model allows and was cut
    special_tokens: dict[str, str] = field(default_factory=dict)  # role -> token string
    note: str | None = None  # a one-line remark for the user (e.g. no MLM head)
    mlm_head: bool | None = None  # the model has an MLM head (None: infer from mlm_logits)
    special_ids: dict[str, int] = field(default_factory=dict)  # role -> vocabulary id
    dropped: tuple[str, str] = ("", "")  # text A / text B characters cut by truncation
    sentence_head: str | None = None  # "NSP", "SOP" or None: the model's sentence head
    sentence: SentencePrediction | None = None  # its prediction, for a pair only

    @property
    def sentence_summary(self) -> str:
        """The sentence head's line: its prediction, 'pair only' for one sentence (the head
        judges how two segments relate), or 'no sentence head'."""
        if self.sentence is not None:
            return self.sentence.describe()
        if self.sentence_head is None:
            return "no sentence head"
        return f"P({SENTENCE_LABELS[self.sentence_head]}): pair only ({self.sentence_head} head)"

    @property
    def token_strings(self) -> list[str]:
        return [t.text for t in self.tokens]

    @property
    def has_mlm(self) -> bool:
        return self.mlm_logits is not None if self.mlm_head is None else self.mlm_head

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    def __len__(self) -> int:
        return len(self.tokens)

    def positions_of(self, role: str) -> np.ndarray:
        """Bool mask (T,) of the tokens that are the special token ``role`` ('cls', 'sep', ...)."""
        target = self.special_tokens.get(role)
        return np.array([t.special and t.text == target for t in self.tokens], dtype=bool)

    @property
    def special_mask(self) -> np.ndarray:
        return np.array([t.special for t in self.tokens], dtype=bool)

    def ids_of(self, role: str) -> np.ndarray:
        """Bool mask (T,) of the tokens whose *id* is the special token ``role`` ('mask',
        'unk', ...). A [MASK] typed in the text is not in the tokenizer's special-tokens mask,
        so views that colour it must recognise it by id."""
        wanted = self.special_ids.get(role)
        if wanted is None:
            return np.zeros(len(self.tokens), dtype=bool)
        return np.asarray(self.input_ids) == wanted

    def source_text(self, index: int) -> str:
        """The characters token ``index`` stands for in the text it came from ("" for special
        tokens): what an unknown token replaced, e.g. '北京' for one ``[UNK]``."""
        tok = self.tokens[index]
        if tok.span is None or tok.sequence is None:
            return ""
        text = self.text if tok.sequence == 0 else (self.pair or "")
        return text[tok.span[0] : tok.span[1]]

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per token, one per masked-word guess."""
        rows = [
            {
                "table": "tokens",
                "token_index": i,
                "token": t.text,
                "id": t.id,
                "special": t.special,
                "continuation": t.continuation,
                "start": t.span[0] if t.span else None,
                "end": t.span[1] if t.span else None,
                "segment": t.segment,
            }
            for i, t in enumerate(self.tokens)
        ]
        if self.sentence is not None:
            rows.append(
                {
                    "table": "sentence",
                    "sentence_head": self.sentence.head,
                    "label": self.sentence.label,
                    "prob": self.sentence.prob,
                    "logit_0": float(self.sentence.logits[0]),
                    "logit_1": float(self.sentence.logits[1]),
                }
            )
        for m in self.masked:
            for rank, (tok, tid, p) in enumerate(zip(m.tokens, m.ids, m.probs, strict=True), 1):
                rows.append(
                    {
                        "table": "masked",
                        "token_index": m.position,
                        "rank": rank,
                        "prediction": tok,
                        "id": tid,
                        "prob": p,
                    }
                )
        return rows


def carry_selection(old: ProbeResult, index: int, new: ProbeResult) -> int:
    """The token of ``new`` at the place of ``old.tokens[index]``: the token of the same text
    that covers the same first character (so a selection survives a model switch, whose
    tokenizer cuts words differently), the same special token by order ([CLS] -> [CLS], the
    second [SEP] -> the second [SEP]), or the next token after that character; 0 if none."""
    if not new.tokens or not 0 <= index < len(old.tokens):
        return 0
    tok = old.tokens[index]
    if tok.span is None or tok.sequence is None:
        order = sum(1 for t in old.tokens[:index] if t.span is None)
        specials = [i for i, t in enumerate(new.tokens) if t.span is None]
        return specials[order] if order < len(specials) else 0
    char = tok.span[0]
    after = None
    for i, cand in enumerate(new.tokens):
        if cand.sequence != tok.sequence or cand.span is None:
            continue
        start, end = cand.span
        if start <= char < max(end, start + 1):
            return i
        if after is None and start > char:
            after = i
    return after if after is not None else 0


def dropped_text(encoded: Encoded, text: str, pair: str | None) -> tuple[str, str]:
    """What truncation cut from each text: the characters after the last token kept from it."""
    if not encoded.truncated:
        return ("", "")
    out = []
    for seq, source in ((0, text), (1, pair or "")):
        ends = [
            int(encoded.offsets[i][1])
            for i, s in enumerate(encoded.sequence_ids)
            if s == seq and not encoded.special_tokens_mask[i]
        ]
        kept = max(ends) if ends else 0
        out.append(source[kept:].strip() if source else "")
    return (out[0], out[1])


def token_infos(encoded: Encoded) -> list[TokenInfo]:
    """Per-token metadata; a continuation is a non-special token whose word (``word_ids``) is
    the previous token's, which works for WordPiece ("##") and SentencePiece alike."""
    infos = []
    for i, text in enumerate(encoded.tokens):
        special = bool(encoded.special_tokens_mask[i])
        seq = encoded.sequence_ids[i]
        word = encoded.word_ids[i]
        continuation = (
            not special
            and i > 0
            and word is not None
            and encoded.word_ids[i - 1] == word
            and encoded.sequence_ids[i - 1] == seq
        )
        span = None if special else (int(encoded.offsets[i][0]), int(encoded.offsets[i][1]))
        infos.append(
            TokenInfo(
                text=text,
                id=int(encoded.input_ids[i]),
                special=special,
                continuation=continuation,
                span=span,
                segment=int(encoded.token_type_ids[i]),
                sequence=None if special else seq,
            )
        )
    return infos


POOL = 50  # guesses kept beyond the top-k, so a view can filter (no punctuation, no pieces)


def _top_k(
    logits: torch.Tensor,
    k: int,
    loaded: LoadedModel,
    position: int,
    original_id: int | None = None,
) -> MaskPrediction:
    """Top-k of one row of logits (V,), in float32 probabilities; with ``original_id``, the
    rank and probability of the token that was masked."""
    import torch

    probs = torch.softmax(logits.float(), dim=-1)
    k = max(1, min(int(k), probs.shape[-1]))
    pool = max(k, min(POOL, probs.shape[-1]))
    values, ids = torch.topk(probs, pool)
    id_list = [int(i) for i in ids.tolist()]
    names = [loaded.tokenizer.id_to_token(i) or f"<{i}>" for i in id_list]
    values_np = values.cpu().numpy().astype(np.float32)
    original = rank = prob = None
    if original_id is not None:
        p = probs[int(original_id)]
        original = loaded.tokenizer.id_to_token(int(original_id)) or f"<{original_id}>"
        rank = int((probs > p).sum().item()) + 1
        prob = float(p.item())
    return MaskPrediction(
        position=int(position),
        tokens=names[:k],
        ids=id_list[:k],
        probs=values_np[:k],
        original=original,
        original_rank=rank,
        original_prob=prob,
        pool_tokens=names,
        pool_probs=values_np,
    )


def sentence_prediction(out: ModelOutput, head: str | None) -> SentencePrediction | None:
    """The NSP/SOP head's probability of class 0 for the first sequence of a forward pass
    ``out``, in float64 so it equals a softmax of the
    logits; None without a sentence head."""
    import torch

    logits = getattr(out, f"{head}_logits") if head else None
    if head is None or logits is None:
        return None
    row = logits[0].double()
    return SentencePrediction(
        head=head.upper(),
        prob=float(torch.softmax(row, dim=-1)[0].item()),
        logits=logits[0].float().cpu().numpy(),
    )


def _check_top_k(top_k: int) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InputError(f"top_k must be a positive integer, got {top_k!r}")
    return top_k


def probe_encoded(
    loaded: LoadedModel,
    encoded: Encoded,
    text: str,
    pair: str | None = None,
    top_k: int = 5,
    full_logits: bool = True,
    head_mask: HeadMask | None = None,
) -> ProbeResult:
    """:func:`probe` for an already encoded input."""
    import torch

    _check_top_k(top_k)
    mask_id = loaded.tokenizer.token_id("mask")
    mask_positions = [i for i, t in enumerate(encoded.input_ids) if t == mask_id]
    has_mlm = loaded.heads.mlm
    head = loaded.heads.sentence
    selected = None
    if has_mlm and not full_logits:  # decode only the [MASK] rows: V x H per row saved
        selected = torch.zeros(1, len(encoded), dtype=torch.bool, device=loaded.device)
        selected[0, mask_positions] = True
    loaded.model.eval()
    with torch.no_grad():
        out = loaded.model(
            **encoded.tensors(loaded.device),
            output_attentions=True,
            mlm_positions=selected,
            head_mask=None if head_mask is None else head_mask.tensor(loaded.device),
        )
    attentions = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, nh, T, T)
    hidden = torch.stack([h[0] for h in out.hidden_states]).float().cpu().numpy()  # (L+1, T, H)
    masked: list[MaskPrediction] = []
    logits_np = None
    if has_mlm:
        rows = out.mlm_logits[0] if selected is None else out.mlm_logits  # (T, V) or (N, V)
        for row, pos in enumerate(mask_positions):
            masked.append(_top_k(rows[pos if selected is None else row], top_k, loaded, pos))
        if selected is None:
            logits_np = rows.float().cpu().numpy()
    return ProbeResult(
        model_name=loaded.name,
        model_type=loaded.config.model_type,
        text=text,
        pair=pair,
        tokens=token_infos(encoded),
        input_ids=np.asarray(encoded.input_ids, dtype=np.int64),
        segment_ids=np.asarray(encoded.token_type_ids, dtype=np.int64),
        attentions=attentions,
        hidden_states=hidden,
        mlm_logits=logits_np,
        masked=masked,
        truncated=bool(encoded.truncated),
        special_tokens=dict(loaded.tokenizer.special),
        note=None if has_mlm else NO_MLM_NOTE,
        mlm_head=has_mlm,
        special_ids={role: loaded.tokenizer.token_id(role) for role in loaded.tokenizer.special},
        dropped=dropped_text(encoded, text, pair),
        sentence_head=head.upper() if head else None,
        sentence=sentence_prediction(out, head) if pair is not None else None,
    )


def probe(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    top_k: int = 5,
    full_logits: bool = True,
    head_mask: HeadMask | None = None,
) -> ProbeResult:
    """One forward pass with attentions and hidden states; predictions for every [MASK].

    ``full_logits=False`` decodes the MLM head at the [MASK] positions only (``mlm_logits`` is
    then None): for BERT-mini the vocabulary projection of every token costs as much as the
    encoder. ``head_mask`` switches heads off (:mod:`core.analysis.ablation`).
    """
    encoded = loaded.encode(text, pair)
    pair = pair if encoded.sequence_ids.count(1) else None
    return probe_encoded(loaded, encoded, text, pair, top_k, full_logits, head_mask)


def predict_masked(
    loaded: LoadedModel, text: str, position: int, pair: str | None = None, top_k: int = 5
) -> MaskPrediction:
    """Replace token ``position`` of the encoded text by [MASK], rerun, and return the top-k.

    Raises :class:`InputError` for a model without an MLM head, a position outside the
    sequence, or a special token.
    """
    import torch

    _check_top_k(top_k)
    if not loaded.heads.mlm:
        raise InputError(f"{loaded.name}: model has no MLM head, so it cannot predict masked words")
    encoded = loaded.encode(text, pair)
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
        raise InputError(f"position must be an integer token index, got {position!r}")
    position = int(position)
    if not 0 <= position < len(encoded):
        raise InputError(f"position {position} is outside the sequence (0..{len(encoded) - 1})")
    if encoded.special_tokens_mask[position]:
        raise InputError(
            f"position {position} is the special token {encoded.tokens[position]}; "
            "choose a word piece to mask"
        )
    ids = list(encoded.input_ids)
    ids[position] = loaded.tokenizer.token_id("mask")
    tensors = encoded.tensors(loaded.device)
    tensors["input_ids"] = torch.tensor([ids], device=loaded.device)
    loaded.model.eval()
    with torch.no_grad():
        selected = torch.zeros(1, len(ids), dtype=torch.bool, device=loaded.device)
        selected[0, position] = True
        out = loaded.model(**tensors, mlm_positions=selected)  # decode only that position
    return _top_k(out.mlm_logits[0], top_k, loaded, position, encoded.input_ids[position])
