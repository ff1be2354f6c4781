"""FLOPs per token for the forward pass and for a training step.

Counted as 2 FLOPs per multiply-add of every matmul (elementwise ops, softmax, GELU and
LayerNorm are left out: under 1% at these sizes). Per token and effective layer (Kaplan et al.
2020, Table 1, written out for BERT's feed-forward width I):

    layer     = 2·(3H² + H²)  [q, k, v, output projections]  + 2·2·H·I  [feed-forward]
              + 2·2·T·H       [scores QKᵀ and the weighted sum AV over T keys]
    forward   = L·layer + 2·E·H [ALBERT's E->H projection] + f·2·(H·E' + E'·V) [MLM head on a
                share f of the tokens, E' = E for ALBERT, H for BERT] + (2H² + 2·2H)/T [pooler
                and NSP/SOP, once per sequence]
    training  = 3·forward  (backward costs two forward passes: gradients of inputs and weights)

ALBERT's sharing saves parameters, not FLOPs: a shared layer costs the same each time it runs.
The familiar approximation ``6·N + 12·L·T·H`` (N = effective non-embedding parameters) is
reported next to the exact count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import Heads, ModelConfig
from core.cost.params import ParamReport, param_report
from core.cost.settings import MLM_FRACTION
from core.errors import InputError


@dataclass(frozen=True)
class FlopsEstimate:
    model: str
    seq: int
    mlm_fraction: float
    terms: dict[str, float]  # per-token forward FLOPs by part
    forward_per_token: float
    training_per_token: float
    approx_6n_per_token: float  # 6·N_eff(non-embedding) + 12·L·T·H
    formulas: dict[str, str] = field(default_factory=dict)

    def achieved(self, tokens_per_s: float) -> float:
        """Forward FLOP/s at a measured throughput."""
        return self.forward_per_token * tokens_per_s

    def table_rows(self) -> list[dict]:
        """Tidy rows (:func:`core.export.tidy_rows`): one per term, then the totals."""
        terms = [
            *self.terms.items(),
            ("forward", self.forward_per_token),
            ("training", self.training_per_token),
            ("6N approximation", self.approx_6n_per_token),
        ]
        return [
            {
                "table": "flops",
                "model": self.model,
                "term": term,
                "flops_per_token": value,
                "formula": self.formulas.get(term),
                "seq": self.seq,
            }
            for term, value in terms
        ]


def flops_per_token(
    config: ModelConfig,
    seq: int = 128,
    mlm_fraction: float = MLM_FRACTION,
    heads: Heads | None = None,
    name: str | None = None,
    report: ParamReport | None = None,
) -> FlopsEstimate:
    """Forward and training FLOPs per token; ``report`` (the config's param report, when the
    caller has one) saves counting the parameters again."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise InputError(f"seq must be a positive integer, got {seq!r}")
    if not 0.0 <= mlm_fraction <= 1.0:
        raise InputError(f"mlm_fraction must be in [0, 1], got {mlm_fraction!r}")
    report = param_report(config, name, heads) if report is None else report
    heads = Heads.from_names(report.heads)
    H, I, L, T = config.hidden_size, config.intermediate_size, config.effective_layers, seq
    V, E = config.vocab_size, config.embedding_dim
    albert = config.model_type == "albert"
    Eh = E if albert else H
    terms = {
        "attention projections": L * 2 * 4 * H * H,
        "feed-forward": L * 2 * 2 * H * I,
        "attention scores and sums": L * 2 * 2 * T * H,
        "embedding projection": 2 * E * H if albert else 0,
        "MLM head": mlm_fraction * 2 * (H * Eh + Eh * V) if heads.mlm else 0.0,
        "pooler and NSP/SOP": (
            ((2 * H * H if heads.pooler else 0) + (2 * 2 * H if heads.sentence else 0)) / T
        ),
    }
    forward = float(sum(terms.values()))
    non_embedding = report.total_effective - report.component("embeddings").effective
    formulas = {
        "attention projections": "L·2·4H²",
        "feed-forward": "L·2·2·H·I",
        "attention scores and sums": "L·2·2·T·H",
        "embedding projection": "2·E·H" if albert else "0",
        "MLM head": "f·2·(H·E' + E'·V)",
        "pooler and NSP/SOP": "(2H² + 4H)/T",
        "forward": "sum of the terms",
        "training": "3 × forward",
        "6N approximation": "6·N_eff,non-embedding + 12·L·T·H",
    }
    return FlopsEstimate(
        model=name or config.model_type,
        seq=seq,
        mlm_fraction=mlm_fraction,
        terms={k: float(v) for k, v in terms.items()},
        forward_per_token=forward,
        training_per_token=3 * forward,
        approx_6n_per_token=float(6 * non_embedding + 12 * L * T * H),
        formulas=formulas,
    )
