"""``python -m core attribute``: which input tokens drive one prediction (saliency, gradient x
input, Integrated Gradients; :mod:`core.analysis.attribution`); ``python -m core heads``: head
importance and pruning curves (:mod:`core.analysis.importance`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.analysis.attribution import BASELINES, DEFAULT_BASELINE, LAYERS, METHODS
from core.cli.model_commands import add_tokenizer_mismatch_option, load_for_cli

HELDOUT = Path(__file__).resolve().parents[2] / "resources" / "corpus" / "heldout.txt"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute", help="attribute a masked word's guess or the sentence head to the input"
    )
    p.add_argument("model", help="Hugging Face-format BERT/ALBERT folder")
    p.add_argument("text", help="the sentence, with the model's mask token for a mask target")
    p.add_argument("--pair", help="optional second sentence (segment B; needed for sentence)")
    p.add_argument(
        "--target",
        required=True,
        help="mask:POS (the [MASK] at token POS), mask:POS:word (pieces summed into words), "
        "sentence (the NSP/SOP head's predicted class) or sentence:0|1",
    )
    p.add_argument(
        "--token", help="mask targets: the vocabulary entry to explain (default: the top guess)"
    )
    p.add_argument("--method", default="ig", choices=METHODS, help="default ig")
    p.add_argument("--steps", type=int, default=32, help="IG quadrature steps (default 32)")
    p.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        choices=BASELINES,
        help=f"IG baseline (default {DEFAULT_BASELINE}: words -> [PAD], specials kept)",
    )
    p.add_argument(
        "--layer",
        default="word",
        choices=LAYERS,
        help="word: the word embeddings (ALBERT: width E); hidden: ALBERT only, after "
        "embedding_hidden_mapping_in (width H)",
    )
    p.add_argument(
        "--mask-heads", help="switch heads off first: LAYER.HEAD,... (1-based, e.g. 2.3,4.1)"
    )
    p.add_argument(
        "--shared-depth",
        default="this",
        choices=("this", "all"),
        help="ALBERT: mask a head at the named depth only (this, default) or in its shared "
        "layer at every depth (all)",
    )
    p.add_argument("--out", help="also write the result here (.csv: tidy rows, or .json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    add_tokenizer_mismatch_option(p)
    p.set_defaults(func=run_attribute)

    h = subparsers.add_parser(
        "heads", help="head importance (Michel et al. 2019) and the pruning curve on held-out text"
    )
    h.add_argument("model", help="Hugging Face-format BERT/ALBERT folder")
    what = h.add_mutually_exclusive_group(required=True)
    what.add_argument("--importance", action="store_true", help="I_h per layer and head")
    what.add_argument(
        "--prune-curve",
        action="store_true",
        help="MLM accuracy and perplexity as the least important heads go, 10%% at a time",
    )
    h.add_argument(
        "--corpus", default=str(HELDOUT), help="held-out text (default: the bundled heldout.txt)"
    )
    h.add_argument("--sequences", type=int, default=256, help="held-out sequences (default 256)")
    h.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    h.add_argument("--seed", type=int, default=1234, help="the held-out masks' seed")
    h.add_argument(
        "--shared",
        action="store_true",
        help="ALBERT: prune heads in the shared layer (every depth) instead of per depth",
    )
    h.add_argument("--out", help="--prune-curve: write the curve here (.csv or .json)")
    h.add_argument("--json", action="store_true", help="print JSON instead of a table")
    h.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    add_tokenizer_mismatch_option(h)
    h.set_defaults(func=run_heads)


def run_attribute(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.analysis.ablation import head_mask, parse_heads
    from core.analysis.attribution import attribute, parse_target
    from core.export import check_suffix, write

    out = None if args.out is None else check_suffix(args.out, (".csv", ".json"), "--out")
    target, words = parse_target(args.target)
    if args.token is not None:
        target = replace(target, token=args.token)
    heads = parse_heads(args.mask_heads) if args.mask_heads else None
    loaded = load_for_cli(args.model, args, device=args.device)
    mask = None if heads is None else head_mask(loaded, heads, args.shared_depth == "all")
    a = attribute(
        loaded,
        args.text,
        target,
        pair=args.pair,
        method=args.method,
        steps=args.steps,
        baseline=args.baseline,
        layer=args.layer,
        words=words,
        head_mask=mask,
    )
    if out is not None:
        write(a, out)
        print(f"wrote {out}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "model": a.model_name,
                    "target": a.target,
                    "target_token": a.target_token,
                    "target_id": a.target_id,
                    "method": a.method,
                    "layer": a.layer,
                    "baseline": a.baseline,
                    "steps": a.steps,
                    "masked_heads": None if mask is None else mask.removed,
                    "f_input": a.f_input,
                    "f_baseline": a.f_baseline,
                    "completeness_error": a.completeness_error,
                    "tokens": a.tokens,
                    "scores": a.scores.tolist(),
                    "words": a.words,
                    "word_scores": None if a.word_scores is None else a.word_scores.tolist(),
                },
                indent=2,
            )
        )
        return 0
    print(f"{a.model_name}: {a.method} of the {a.target}, at the {a.layer}")
    if a.completeness_error is not None:
        print(
            f"baseline {a.baseline}, {a.steps} steps: F(x) = {a.f_input:.4f}, F(baseline) = "
            f"{a.f_baseline:.4f}, completeness error {a.completeness_error:.1e} (relative; "
            "above 1e-2, add steps)"
        )
    if mask is not None:
        print(f"heads off: {mask.removed} effective heads")
    scale = max(float(abs(a.values).max()), 1e-30)
    for label, value in zip(a.labels, a.values, strict=True):
        bar = "#" * round(20 * abs(float(value)) / scale)
        print(f"{label:>16} {value:>+10.4f} {'-' if value < 0 else ' '}{bar}")
    return 0


def run_heads(args: argparse.Namespace) -> int:
    from core.analysis.importance import head_importance, held_out_batches, pruning_curve
    from core.errors import InputError
    from core.export import check_suffix, write

    out = None
    if args.out is not None:
        if not args.prune_curve:
            raise InputError("--out is for --prune-curve")
        out = check_suffix(args.out, (".csv", ".json"), "--out")
    loaded = load_for_cli(args.model, args, device=args.device)
    batches = held_out_batches(loaded, [args.corpus], args.sequences, args.seq_len, seed=args.seed)
    imp = head_importance(loaded, batches)
    if args.importance:
        if args.json:
            print(
                json.dumps(
                    {
                        "model": loaded.name,
                        "n_sequences": imp.n_sequences,
                        "importance": imp.normalized.tolist(),
                        "raw": imp.raw.tolist(),
                        "shared_importance": imp.shared_normalized.tolist(),
                    },
                    indent=2,
                )
            )
            return 0
        print(f"{loaded.name}: head importance over {imp.n_sequences} held-out sequences")
        print("(E|dL/dxi_h|, each layer's row divided by its l2 norm; Michel et al. 2019)")
        print(f"{'layer':>6}" + "".join(f"{f'h{h + 1}':>8}" for h in range(imp.raw.shape[1])))
        for d, row in enumerate(imp.normalized):
            print(f"{d + 1:>6}" + "".join(f"{v:>8.3f}" for v in row))
        return 0
    curve = pruning_curve(loaded, batches, imp, shared=args.shared)
    if out is not None:
        write(curve, out)
    if args.json:
        print(json.dumps({"model": loaded.name, "rows": curve.table_rows()}, indent=2))
    else:
        print(f"{loaded.name}: pruning curve ({curve.mode}), {imp.n_sequences} sequences")
        print(f"{'removed':>8}{'fraction':>10}{'MLM acc':>10}{'perplexity':>12}")
        for r in curve.table_rows():
            print(
                f"{r['removed']:>8}{r['fraction']:>10.1%}{r['mlm_accuracy']:>10.2%}"
                f"{r['perplexity']:>12.2f}"
            )
    if out is not None:
        print(f"wrote {out}")
    return 0
