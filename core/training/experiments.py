"""The ALBERT paper's ablations (Lan et al. 2020, arXiv 1909.11942) as grids of runs: a recipe
varies one setting of a shared base (corpus, tokenizer, token budget, schedule and seeds stay
the same), each run is an ordinary ``python -m core train`` folder, and a folder of finished
runs, made here or on any scheduler, collects into one table of mean ± sd over seeds.

A run's settings are written as ``RUN/train_config.json`` before it starts, so the command a
user submits elsewhere (``--print-commands``) is the run this module would make; a grid that
stopped half-way resumes: finished runs (``final/`` written) are kept, a started one continues
from its newest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.training.config import TrainConfig

# Each scale: the preset size and a schedule short enough for its hardware; the same for every
# run of a recipe. tiny fits a laptop CPU in minutes per run; base is the paper's shape.
SCALES: dict[str, dict] = {
    "tiny": {"size": "tiny", "steps": 2000, "batch_size": 16, "seq_len": 64, "vocab_size": 2000},
    "mini": {"size": "mini", "steps": 1000, "batch_size": 32, "seq_len": 128, "vocab_size": 8000},
    "small": {"size": "small", "steps": 3000, "batch_size": 64, "seq_len": 128},
    "base": {"size": "base", "steps": 10000, "batch_size": 256, "seq_len": 128},
}


@dataclass(frozen=True)
class Variant:
    """One configuration of a recipe: its label and what it changes on the recipe's base."""

    label: str
    arch: str = "albert"
    changes: dict = dataclasses.field(default_factory=dict)  # TrainConfig fields
    overrides: dict = dataclasses.field(default_factory=dict)  # ModelConfig fields
    steps_factor: int = 1  # table8's many-epochs regime: the same runs, longer


@dataclass(frozen=True)
class Recipe:
    name: str
    paper: str  # which table of Lan et al. 2020 it reruns
    varied: str  # the setting that changes between variants
    variants: tuple[Variant, ...]


def _recipes() -> dict[str, Recipe]:
    table3 = tuple(
        Variant(f"E={e} {'shared' if s == 'all' else 'not shared'}", overrides={
            "embedding_size": e, "sharing": s})
        for s in ("none", "all")
        for e in (16, 32, 64, 128)
    )  # fmt: skip
    table4 = tuple(
        Variant(f"E={e} sharing={s}", overrides={"embedding_size": e, "sharing": s})
        for e in (128, 32)
        for s in ("all", "attention", "ffn", "none")
    )
    table5 = tuple(
        Variant(f"objective={o}", changes={"sentence_objective": o}) for o in ("none", "nsp", "sop")
    )
    table11 = tuple(
        Variant(f"layers={n}", overrides={"num_hidden_layers": n, "sharing": "all"})
        for n in (1, 3, 6, 12, 24)
    )
    table8 = tuple(
        Variant(
            f"dropout={p} {'many epochs' if f > 1 else 'one epoch'}",
            overrides={
                "hidden_dropout_prob": p,
                "attention_probs_dropout_prob": p,
                "classifier_dropout_prob": p,
            },
            steps_factor=f,
        )
        for f in (1, 4)
        for p in (0.1, 0.0)
    )
    bert_vs_albert = (Variant("BERT", arch="bert"), Variant("ALBERT", arch="albert"))
    return {
        r.name: r
        for r in (
            Recipe("table3", "Table 3 (embedding size E)", "embedding_size, sharing", table3),
            Recipe("table4", "Table 4 (cross-layer sharing)", "sharing, embedding_size", table4),
            Recipe("table5", "Table 5 (sentence objective)", "sentence_objective", table5),
            Recipe("table11", "Table 11 (depth, shared weights)", "num_hidden_layers", table11),
            Recipe("table8", "Table 8 (dropout)", "dropout, steps", table8),
            Recipe("bert-vs-albert", "Table 2 (BERT vs ALBERT)", "arch", bert_vs_albert),
        )
    }


RECIPES: dict[str, Recipe] = _recipes()


@dataclass(frozen=True)
class PlannedRun:
    """One run of a grid: the variant, the seed, its folder and its full settings."""

    variant: str
    seed: int
    out: Path
    config: TrainConfig

    @property
    def finished(self) -> bool:
        return (self.out / "final" / "training_summary.json").is_file()

    @property
    def config_file(self) -> Path:
        return self.out / "train_config.json"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label.replace("=", "")).strip(
        "-"
    )


def plan(recipe: str, scale: str, seeds: int, out: str | os.PathLike) -> list[PlannedRun]:
    """Every run of ``recipe`` at ``scale`` for seeds 0 .. seeds-1, under ``out``. Bad input
    is a one-line :class:`InputError` before anything is written."""
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if not isinstance(seeds, int) or seeds < 1:
        raise InputError(f"seeds must be a positive integer, got {seeds!r}")
    base = dict(SCALES[scale])
    size = base.pop("size")
    runs = []
    for variant in RECIPES[recipe].variants:
        for seed in range(seeds):
            settings = {**base, **variant.changes}
            settings["steps"] = base["steps"] * variant.steps_factor
            overrides = dict(variant.overrides)
            if variant.arch == "bert":
                overrides.pop("sharing", None)
            config = TrainConfig(
                arch=variant.arch,
                preset=f"{variant.arch}-{size}",
                seed=seed,
                config_overrides=overrides,
                **settings,
            )
            runs.append(
                PlannedRun(
                    variant.label, seed, Path(out) / f"{_slug(variant.label)}-seed{seed}", config
                )
            )
    return runs


def tokenizer_folder(run: PlannedRun) -> Path:
    """The grid's one tokenizer of the run's family, beside the runs (trained once)."""
    return run.out.parent / f"tokenizer-{run.config.arch}"


def share_tokenizers(runs: list[PlannedRun], corpus: list[str]) -> None:
    """Train each family's tokenizer once (the first run's vocabulary size), so every run of
    the grid, here or on a scheduler, reads the same token ids."""
    from core.tokenizer_train import train_tokenizer

    for run in runs:
        folder = tokenizer_folder(run)
        if not (folder / "tokenizer.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            train_tokenizer(corpus, run.config.arch, run.config.vocab_size).save(folder)


def train_command(run: PlannedRun, corpus: list[str], heldout: list[str]) -> list[str]:
    """The ``python -m core train`` arguments of ``run`` (after its config file is written)."""
    args = ["python", "-m", "core", "train", "--config-file", str(run.config_file)]
    args += ["--tokenizer", str(tokenizer_folder(run))]
    args += ["--corpus", *map(str, corpus)]
    if heldout:
        args += ["--eval-corpus", *map(str, heldout)]
    args += ["--out", str(run.out)]
    if _started(run):
        args = [a for a in args if a not in ("--config-file", str(run.config_file))]
        args.append("--resume")  # the checkpoint keeps the settings
    return args


def _started(run: PlannedRun) -> bool:
    return run.out.is_dir() and any(run.out.glob("checkpoint-*"))


def write_configs(runs: list[PlannedRun]) -> None:
    """Each run's ``train_config.json`` (the settings its command reads)."""
    for run in runs:
        run.out.mkdir(parents=True, exist_ok=True)
        run.config.save(run.config_file)


def print_commands(runs: list[PlannedRun], corpus: list[str], heldout: list[str]) -> list[str]:
    """One shell line per unfinished run, plain and under torchrun, and a Slurm array
    script beside the grid (``OUT/slurm_array.sh``) that runs line N as task N."""
    write_configs(runs)
    share_tokenizers(runs, corpus)
    lines = [shlex.join(train_command(r, corpus, heldout)) for r in runs if not r.finished]
    if runs:
        root = runs[0].out.parent
        (root / "commands.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (root / "slurm_array.sh").write_text(
            "#!/bin/bash\n"
            f"#SBATCH --array=1-{max(1, len(lines))}\n#SBATCH --gpus=1\n"
            f'eval "$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(str(root / "commands.txt"))})"\n',
            encoding="utf-8",
        )
    return lines


def torchrun_form(line: str, gpus: int = 1) -> str:
    """A printed command as ``torchrun --nproc_per_node N -m core train ...``."""
    return line.replace("python -m core", f"torchrun --nproc_per_node {gpus} -m core", 1)


def run_grid(
    runs: list[PlannedRun],
    corpus: list[str],
    heldout: list[str],
    on_run=None,
) -> list[PlannedRun]:
    """Train every unfinished run, one at a time, in this process: a finished run is kept,
    a started one resumes from its newest checkpoint. ``on_run(index, run)`` is called before
    each run that trains. Returns the runs trained."""
    from core.training.setup import prepare_training

    write_configs(runs)
    share_tokenizers(runs, corpus)
    trained = []
    for index, run in enumerate(runs):
        if run.finished:
            continue
        if on_run is not None:
            on_run(index, run)
        trainer = prepare_training(
            run.config,
            corpus,
            heldout or None,
            tokenizer=tokenizer_folder(run),
            out_dir=run.out,
            resume=True if _started(run) else None,
        )
        trainer.run()
        if heldout:
            score_run(run.out, heldout, run.config.seq_len)
        trained.append(run)
    return trained


TASKS_FILE = "sentence_tasks.json"


def score_run(folder: Path, heldout: list[str], seq_len: int) -> list[dict]:
    """Score a finished run's model on every sentence task (zero-shot and linear probe, on
    the held-out text) and keep the scores as ``RUN/sentence_tasks.json``."""
    from core.atomic import write_text_atomic
    from core.loaded_model import load_model
    from core.training.sentence_eval import score_sentence_files

    loaded = load_model(Path(folder) / "final", device="cpu")
    scores = [s.to_dict() for s in score_sentence_files(loaded, heldout, seq_len=seq_len)]
    write_text_atomic(Path(folder) / TASKS_FILE, json.dumps(scores, indent=2) + "\n")
    return scores


@dataclass(frozen=True)
class ResultRow:
    """One variant over its seeds: mean and sample sd of each held-out figure."""

    variant: str
    n_seeds: int
    mean: dict
    sd: dict


METRICS = (
    "mlm_accuracy",
    "perplexity",
    "sentence_accuracy",
    *(f"{t}_{how}" for t in ("nsp", "sop", "hard-nsp") for how in ("zero_shot", "probe")),
    "train_seconds",
    "tokens_per_s",
)


def collect(out: str | os.PathLike, heldout: list[str] | None = None) -> list[ResultRow]:
    """The results table of every finished run folder under ``out`` (each with its
    ``train_config.json`` and ``final/training_summary.json``), grouped by variant label
    (the folder name without its ``-seedN``), in folder order. A run without its sentence
    task scores (trained elsewhere) is scored on ``heldout`` when given."""
    root = Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    groups: dict[str, list[dict]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        summary_file = folder / "final" / "training_summary.json"
        if not summary_file.is_file():
            continue
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        figures = dict(summary.get("eval") or {})
        seconds = summary.get("elapsed_s")
        figures["train_seconds"] = seconds
        if seconds:
            figures["tokens_per_s"] = summary.get("tokens_seen", 0) / seconds
        tasks_file = folder / TASKS_FILE
        if tasks_file.is_file():
            tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
        elif heldout:
            tasks = score_run(folder, heldout, int(summary["train"]["seq_len"]))
        else:
            tasks = []
        for t in tasks:
            figures[f"{t['task']}_zero_shot"] = t["zero_shot"]
            figures[f"{t['task']}_probe"] = t["probe"]
        label = folder.name.rsplit("-seed", 1)[0]
        groups.setdefault(label, []).append(figures)
    if not groups:
        raise InputError(f"{root}: no finished runs (no */final/training_summary.json)")
    rows = []
    for label, figures in groups.items():
        mean, sd = {}, {}
        for name in METRICS:
            values = [f[name] for f in figures if f.get(name) is not None]
            if not values:
                continue
            m = math.fsum(values) / len(values)
            mean[name] = m
            sd[name] = (
                math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))
                if len(values) > 1
                else 0.0
            )
        rows.append(ResultRow(label, len(figures), mean, sd))
    return rows


def format_table(rows: list[ResultRow]) -> str:
    """The table as text: one line per variant, mean ± sd over seeds."""
    lines = [f"{'configuration':<28} seeds  " + "  ".join(f"{m:>20}" for m in METRICS)]
    for r in rows:
        cells = [
            f"{r.mean[m]:>10.4g} ± {r.sd[m]:<7.2g}" if m in r.mean else f"{'—':>20}"
            for m in METRICS
        ]
        lines.append(f"{r.variant:<28} {r.n_seeds:>5}  " + "  ".join(cells))
    return "\n".join(line.rstrip() for line in lines)
