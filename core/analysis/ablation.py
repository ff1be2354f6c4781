"""Head ablation: switch attention heads off and see what changes.

A head is removed as in Michel et al. (2019), "Are sixteen heads really better than one?": its
gate ξ_h is set to 0, which zeroes the head's context vector before the attention output
projection (``core.blocks.SelfAttention``), so only the projection's bias and the other heads
remain. Heads are named by effective depth (0-based here; the CLI and the head grid count from
1) and head index.

ALBERT shares layers across depths: one head exists once but runs at every depth its layer is
used. ``shared=False`` removes it at the named depth only; ``shared=True`` removes it from the
shared layer, i.e. at every depth that runs the same attention module (for BERT, where no layer
repeats, the two are the same). :attr:`HeadMask.removed` says how many effective heads a choice
removes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    import torch

    from core.analysis.probe import ProbeResult
    from core.loaded_model import LoadedModel


@dataclass(frozen=True)
class HeadMask:
    """Which heads are off, at every effective depth: ``gates`` (L_eff, heads), 1 on, 0 off."""

    gates: np.ndarray  # (L_eff, heads) float32
    requested: tuple[tuple[int, int], ...]  # the (depth, head) pairs asked for, 0-based
    shared: bool  # masked in the shared layer (every depth that runs it)

    @property
    def removed(self) -> int:
        """Effective heads switched off (a shared ALBERT head counts once per depth)."""
        return int((self.gates == 0).sum())

    @property
    def empty(self) -> bool:
        return self.removed == 0

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """The gates as the forward pass's ``head_mask``; None for an empty mask, so the
        unmasked model runs its own code path bit for bit."""
        import torch

        return None if self.empty else torch.from_numpy(self.gates).to(device)


def depth_groups(loaded: LoadedModel) -> list[list[int]]:
    """For every effective depth, the depths that run the same attention module (itself
    included): BERT's ``[[0], [1], ...]``; for ALBERT's one shared layer every depth lists all."""
    modules = [layer.attention for layer in loaded.model.encoder.schedule]
    return [[j for j, other in enumerate(modules) if other is m] for m in modules]


def head_mask(
    loaded: LoadedModel, heads: Iterable[tuple[int, int]], shared: bool = False
) -> HeadMask:
    """The gates that switch ``heads`` ((depth, head) pairs, 0-based) off; with ``shared``, in
    the shared layer at every depth that runs it. Raises :class:`InputError` for a depth or head
    outside the model."""
    depths = loaded.config.effective_layers
    n_heads = loaded.config.num_attention_heads
    gates = np.ones((depths, n_heads), dtype=np.float32)
    groups = depth_groups(loaded)
    requested = []
    for depth, head in heads:
        if not 0 <= depth < depths:
            raise InputError(f"mask-heads: layer {depth + 1} is outside the model (1..{depths})")
        if not 0 <= head < n_heads:
            raise InputError(
                f"mask-heads: head {head + 1} is outside layer {depth + 1} (1..{n_heads})"
            )
        gates[groups[depth] if shared else [depth], head] = 0.0
        requested.append((int(depth), int(head)))
    return HeadMask(gates=gates, requested=tuple(requested), shared=bool(shared))


def parse_heads(spec: str) -> list[tuple[int, int]]:
    """``"2.3,4.1"`` (1-based layer.head, as the head grid labels them) -> 0-based pairs."""
    pairs = []
    for item in spec.split(","):
        layer, dot, head = item.strip().partition(".")
        if not dot or not layer.isdigit() or not head.isdigit():
            raise InputError(f"mask-heads: {item.strip()!r} is not LAYER.HEAD (1-based, e.g. 2.3)")
        if int(layer) < 1 or int(head) < 1:
            raise InputError(f"mask-heads: {item.strip()!r}: layers and heads count from 1")
        pairs.append((int(layer) - 1, int(head) - 1))
    return pairs


@dataclass(frozen=True)
class GuessChange:
    """How one masked position's guesses moved when heads were switched off."""

    position: int
    intact_top: str  # the intact model's top guess
    intact_prob: float
    ablated_prob: float  # that same token's probability with the heads off
    ablated_rank: int  # its 1-based rank with the heads off
    ablated_top: str  # the ablated model's top guess

    @property
    def delta(self) -> float:
        return self.ablated_prob - self.intact_prob


@dataclass(frozen=True)
class Ablation:
    """The intact and the ablated model on one input, and what changed."""

    mask: HeadMask
    intact: ProbeResult
    ablated: ProbeResult
    changes: list[GuessChange]  # one per [MASK], in order
    sentence_delta: float | None  # Δ P(class 0) of the sentence head, for a pair

    def table_rows(self) -> list[dict]:
        rows = [
            {
                "table": "guess_change",
                "token_index": c.position,
                "intact_top": c.intact_top,
                "intact_prob": c.intact_prob,
                "ablated_prob": c.ablated_prob,
                "delta": c.delta,
                "ablated_rank": c.ablated_rank,
                "ablated_top": c.ablated_top,
            }
            for c in self.changes
        ]
        rows += [
            {"table": "masked_heads", "layer": d + 1, "head": h + 1, "shared": self.mask.shared}
            for d, h in self.mask.requested
        ]
        if self.sentence_delta is not None:
            rows.append({"table": "sentence", "delta_prob": self.sentence_delta})
        return rows


def _probs(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    e = np.exp(z)
    return e / e.sum()


def ablate(
    loaded: LoadedModel, text: str, pair: str | None, mask: HeadMask, top_k: int = 5
) -> Ablation:
    """Probe ``text`` with and without the heads of ``mask`` and compare the guesses at every
    [MASK]: the intact top guess's probability and rank with the heads off."""
    from core.analysis.probe import probe

    intact = probe(loaded, text, pair, top_k)
    ablated = probe(loaded, text, pair, top_k, head_mask=mask)
    changes = []
    if intact.mlm_logits is not None and ablated.mlm_logits is not None:
        for before, after in zip(intact.masked, ablated.masked, strict=True):
            p_after = _probs(ablated.mlm_logits[before.position])
            top = before.ids[0]
            changes.append(
                GuessChange(
                    position=before.position,
                    intact_top=before.tokens[0],
                    intact_prob=float(before.probs[0]),
                    ablated_prob=float(p_after[top]),
                    ablated_rank=int((p_after > p_after[top]).sum()) + 1,
                    ablated_top=after.tokens[0],
                )
            )
    delta = None
    if intact.sentence is not None and ablated.sentence is not None:
        delta = ablated.sentence.prob - intact.sentence.prob
    return Ablation(
        mask=mask, intact=intact, ablated=ablated, changes=changes, sentence_delta=delta
    )
