"""The engine's own CLI commands: ``info``, ``probe`` and ``params``."""

from __future__ import annotations

import argparse
import json
import sys

from core.analysis.ablation import Ablation, HeadMask
from core.analysis.probe import ProbeResult
from core.analysis.summary import ProbeAnalysis
from core.config import PRESETS, preset
from core.cost.params import COMPONENTS, ParamBreakdown, count_parameters
from core.device import resolve_device, startup_summary
from core.errors import InputError
from core.loaded_model import LoadedModel, load_model, meta_model
from core.output_paths import check_output_file


def add_tokenizer_mismatch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-tokenizer-mismatch",
        action="store_true",
        help="load a model whose tokenizer does not fit its embeddings (more tokens than rows, "
        "special-token ids outside them or a pad id other than config.json's), with a warning",
    )


def load_for_cli(path: str, args: argparse.Namespace, device=None) -> LoadedModel:
    """``load_model`` with the command's ``--allow-tokenizer-mismatch``; the warnings of a model
    loaded despite a mismatch go to stderr as ``warning: ...``."""
    loaded = load_model(
        path,
        device=device,
        allow_tokenizer_mismatch=getattr(args, "allow_tokenizer_mismatch", False),
    )
    print_warnings(loaded.warnings)
    return loaded


def print_warnings(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser(
        "info", help="config, heads and parameter breakdown of a model folder"
    )
    info.add_argument("model", help="Hugging Face-format BERT/ALBERT folder")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_tokenizer_mismatch_option(info)
    info.set_defaults(func=run_info)

    probe = subparsers.add_parser("probe", help="run one sentence and write every layer's outputs")
    probe.add_argument("model", help="Hugging Face-format BERT/ALBERT folder")
    probe.add_argument(
        "text", help="the sentence (use the model's mask token, e.g. [MASK], to predict)"
    )
    probe.add_argument("--pair", help="optional second sentence (segment B)")
    probe.add_argument(
        "--out",
        help="also write every array to this file (.npz or .json); without it, only the "
        "summary (tokens, guesses for each [MASK], per-layer figures) is printed",
    )
    probe.add_argument("--top-k", type=int, default=5, help="predictions per [MASK] (default 5)")
    probe.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    probe.add_argument(
        "--mask-heads",
        help="switch heads off (Michel et al.'s head mask): LAYER.HEAD,... 1-based, e.g. 2.3,4.1; "
        "prints the guesses with the heads off and the change against the intact model",
    )
    probe.add_argument(
        "--shared-depth",
        default="this",
        choices=("this", "all"),
        help="ALBERT: mask a head at the named depth only (this, default) or in its shared "
        "layer at every depth (all)",
    )
    probe.add_argument(
        "--layers-lens",
        action="store_true",
        help="decode each [MASK] from every layer's hidden state through the MLM head",
    )
    add_tokenizer_mismatch_option(probe)
    probe.set_defaults(func=run_probe)

    params = subparsers.add_parser(
        "params", help="count a preset's parameters without allocating weights (meta device)"
    )
    params.add_argument(
        "--preset",
        required=True,
        choices=sorted(PRESETS),
        metavar="NAME",
        help=f"one of {', '.join(PRESETS)}",
    )
    params.add_argument("--embedding-size", type=int, help="ALBERT: factorized embedding width E")
    params.add_argument(
        "--sharing",
        choices=("all", "attention", "ffn", "none"),
        help="ALBERT: what is shared across layers (paper Table 4)",
    )
    params.add_argument("--json", action="store_true", help="print JSON instead of a table")
    params.set_defaults(func=run_params)


# -- formatting ------------------------------------------------------------------------------
def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M"


def breakdown_dict(b: ParamBreakdown) -> dict:
    return {
        "components": {
            c: {"unique": b.unique[c], "effective": b.effective[c], "share": round(b.share(c), 6)}
            for c in COMPONENTS
        },
        "total_unique": b.total_unique,
        "total_effective": b.total_effective,
        "backbone_unique": b.backbone_unique,
        "backbone_effective": b.backbone_effective,
    }


def breakdown_table(b: ParamBreakdown) -> str:
    rows = [f"{'component':<22}{'unique':>14}{'effective':>14}{'share':>9}"]
    for c in COMPONENTS:
        rows.append(f"{c:<22}{b.unique[c]:>14,}{b.effective[c]:>14,}{b.share(c):>9.1%}")
    rows.append(f"{'total':<22}{b.total_unique:>14,}{b.total_effective:>14,}{1:>9.0%}")
    rows.append(
        f"{'backbone (no heads)':<22}{b.backbone_unique:>14,}{b.backbone_effective:>14,}"
        f"   ({_millions(b.backbone_unique)} unique)"
    )
    return "\n".join(rows)


# -- commands --------------------------------------------------------------------------------
def run_info(args: argparse.Namespace) -> int:
    loaded = load_for_cli(args.model, args, device="cpu")
    breakdown = count_parameters(loaded.model)
    config = loaded.config.to_dict()
    if args.json:
        print(
            json.dumps(
                {
                    "name": loaded.name,
                    "path": str(loaded.path),
                    "config": config,
                    "heads": loaded.heads.names(),
                    "effective_layers": loaded.config.effective_layers,
                    "tokenizer_vocab_size": loaded.tokenizer.vocab_size,
                    "warnings": list(loaded.warnings),
                    "parameters": breakdown_dict(breakdown),
                },
                indent=2,
            )
        )
        return 0
    c = loaded.config
    print(f"{loaded.name}  ({c.model_type}, {loaded.path})")
    print(
        f"  layers {c.num_hidden_layers} (effective {c.effective_layers}), hidden {c.hidden_size}, "
        f"heads {c.num_attention_heads}, intermediate {c.intermediate_size}, vocab {c.vocab_size}, "
        f"positions {c.max_position_embeddings}"
    )
    if c.model_type == "albert":
        print(
            f"  embedding_size {c.embedding_size}, num_hidden_groups {c.num_hidden_groups}, "
            f"inner_group_num {c.inner_group_num}, sharing {c.sharing}"
        )
    print(f"  heads present: {', '.join(loaded.heads.names()) or 'none'}")
    print(breakdown_table(breakdown))
    print(startup_summary(resolve_device(None)))
    return 0


def run_probe(args: argparse.Namespace) -> int:
    from core.analysis.ablation import ablate, head_mask, parse_heads
    from core.analysis.summary import analyze, analyze_result
    from core.export import ARRAY_FORMATS, check_suffix, write

    if args.top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {args.top_k}")
    out = None
    if args.out is not None:
        out = check_suffix(args.out, ARRAY_FORMATS, "--out")
        check_output_file(out, "--out")
    heads = parse_heads(args.mask_heads) if args.mask_heads else None
    loaded = load_for_cli(args.model, args, device=args.device)
    mask = None if heads is None else head_mask(loaded, heads, args.shared_depth == "all")
    if mask is None:
        analysis = analyze(loaded, args.text, args.pair, args.top_k)
        print(probe_report(analysis))
    else:
        ablation = ablate(loaded, args.text, args.pair, mask, args.top_k)
        analysis = analyze_result(ablation.ablated)
        print(probe_report(analysis))
        print(
            ablation_report(
                ablation, loaded.config.effective_layers * loaded.config.num_attention_heads
            )
        )
    if args.layers_lens:
        print(lens_report(loaded, args.text, args.pair, analysis.result, args.top_k, mask))
    r = analysis.result
    if out is None:
        return 0
    write(analysis.arrays(), out)  # the arrays the window's .npz export holds
    note = " (text truncated to the model's maximum length)" if r.truncated else ""
    print(f"wrote {out}: {len(r.tokens)} tokens, {r.num_layers} layers{note}")
    return 0


def probe_report(x: ProbeAnalysis) -> str:
    """What ``python -m core probe`` prints: masked-word predictions, the sentence head's
    verdict on a pair, layer transitions and a per-layer attention summary."""
    r = x.result
    lines = [f"tokens ({len(r.tokens)}): {' '.join(r.token_strings)}"]
    if r.truncated:
        lines.append("note: the text was truncated to the model's maximum length")
    if not r.has_mlm:
        lines.append(f"note: {r.note}")
    elif not r.masked:
        lines.append(f"no {r.special_tokens.get('mask', '[MASK]')} in the text: nothing to predict")
    for m in r.masked:
        guesses = ", ".join(f"{t} {p:.3f}" for t, p in zip(m.tokens, m.probs, strict=True))
        lines.append(f"[MASK] at {m.position}: {guesses}")
    lines.append(f"sentence: {r.sentence_summary}")
    s, a = x.layers, x.attention
    lines.append("")
    lines.append(
        f"{'layer':>6}{'L2 mean':>10}{'cos mean':>10}{'angle':>8}{'entropy':>9}{'->[CLS]':>9}"
        f"{'->[SEP]':>9}{'->punct':>9}{'->self':>8}{'->prev':>8}{'->next':>8}"
    )
    for layer in range(s.num_layers):
        lines.append(
            f"{f'{layer}->{layer + 1}':>6}{s.l2_mean[layer]:>10.4f}{s.cosine_mean[layer]:>10.4f}"
            f"{s.angle_mean_deg[layer]:>8.2f}"
            + "".join(
                f"{getattr(a, name)[layer].mean():>{9 if i < 5 else 8}.3f}"
                for i, name in enumerate(a.PER_HEAD)
            )
        )
    lines.append(
        f"(angle: mean over tokens of the degrees between a token's input and output; "
        f"attention columns: mean over heads, Clark et al. definitions; "
        f"entropy in nats, uniform = {a.max_entropy:.3f})"
    )
    return "\n".join(lines)


def ablation_report(x: Ablation, total_heads: int) -> str:
    """What ``probe --mask-heads`` adds: the heads off and how each [MASK]'s guess moved."""
    named = ", ".join(f"{d + 1}.{h + 1}" for d, h in x.mask.requested)
    where = "in the shared layer, every depth" if x.mask.shared else "at the named depth only"
    lines = [
        "",
        f"heads off: {named} ({where}): {x.mask.removed} of {total_heads} effective heads",
    ]
    for c in x.changes:
        lines.append(
            f"[MASK] at {c.position}: intact top {c.intact_top} {c.intact_prob:.3f} -> "
            f"{c.ablated_prob:.3f} ({c.delta:+.3f}), now rank {c.ablated_rank}; "
            f"new top {c.ablated_top}"
        )
    if x.sentence_delta is not None:
        lines.append(f"sentence: P(class 0) changed by {x.sentence_delta:+.3f}")
    return "\n".join(lines)


def lens_report(
    loaded: LoadedModel,
    text: str,
    pair: str | None,
    result: ProbeResult,
    top_k: int,
    mask: HeadMask | None,
) -> str:
    """What ``probe --layers-lens`` adds: every [MASK] decoded from every hidden state."""
    from core.analysis.logit_lens import NOTE, logit_lens

    if not result.has_mlm:
        return f"layers lens: {result.note}"
    if not result.masked:
        return "layers lens: no [MASK] in the text"
    lines = ["", f"layers lens ({NOTE}):"]
    for m in result.masked:
        lens = logit_lens(loaded, text, pair, m.position, None, top_k, mask)
        lines.append(f"[MASK] at {lens.position}, following {lens.token}:")
        for depth, row in enumerate(lens.layers):
            name = "embeddings" if depth == 0 else f"layer {depth}"
            guesses = ", ".join(f"{t} {p:.3f}" for t, p in zip(row.tokens, row.probs, strict=True))
            lines.append(
                f"  {name:>10}: {guesses}  | {lens.token} rank {lens.ranks[depth]} "
                f"p {lens.probs[depth]:.3f}"
            )
    return "\n".join(lines)


def run_params(args: argparse.Namespace) -> int:
    overrides = {}
    if args.embedding_size is not None:
        overrides["embedding_size"] = args.embedding_size
    if args.sharing is not None:
        overrides["sharing"] = args.sharing
    config = preset(args.preset, **overrides)
    breakdown = count_parameters(meta_model(config))
    if args.json:
        print(
            json.dumps(
                {
                    "preset": args.preset,
                    "config": config.to_dict(),
                    "parameters": breakdown_dict(breakdown),
                },
                indent=2,
            )
        )
        return 0
    extra = ""
    if config.model_type == "albert":
        extra = f", E={config.embedding_size}, sharing={config.sharing}"
    print(
        f"{args.preset} (L={config.num_hidden_layers}, H={config.hidden_size}, "
        f"A={config.num_attention_heads}{extra})"
    )
    print(breakdown_table(breakdown))
    return 0
