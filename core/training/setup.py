"""From settings and text files to a ready :class:`Trainer`, checking everything first.

The order matters for the user: every setting and every corpus file is checked (presets,
sizes, sequence length against the model's positions, files that exist, are UTF-8 and hold
text) before the tokenizer is trained or a single token is read, so a typo costs a second,
not a run. Under torchrun, rank 0 trains the tokenizer and tokenizes the corpus into the
shared cache; the other ranks wait and reuse both.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.config import PRESETS, ModelConfig
from core.data import (
    CheckedCorpus,
    DataConfig,
    PretrainingData,
    TokenizedCorpus,
    check_corpus,
)
from core.device import describe_device
from core.errors import ConfigError, InputError, TrainingError
from core.hf_checkpoint import hf_to_engine, load_state, read_weights
from core.loaded_model import LoadedModel, build_model, load_model
from core.output_paths import check_output_folder
from core.precision import resolve_precision
from core.tokenizer import Tokenizer
from core.tokenizer_train import load_tokenizer_file, train_tokenizer
from core.training import run_checkpoints as ckpt
from core.training.config import SAVE_DTYPES, TrainConfig
from core.training.distributed import DistContext, barrier
from core.training.estimate import unigram_perplexity
from core.training.listeners import LOG_FILE, CheckpointWriter, FinalExport, JsonlLog
from core.training.loss import pretraining_loss
from core.training.trainer import (
    EvalMetrics,
    Listener,
    ProgressEvent,
    Trainer,
    evaluate,
    seed_everything,
)

log = logging.getLogger(__name__)

PathList = Sequence[str | os.PathLike]


class _Phases:
    """Tells ``listener`` (if any) what set-up is doing: a "prepare" event when a phase
    starts, while it runs (``fraction``), and when it ends (fraction 1.0, with its duration)."""

    def __init__(self, listener: Listener | None, total_steps: int):
        self.listener = listener
        self.total_steps = total_steps
        self._started = 0.0
        self._last_fraction = -1.0

    def say(self, message: str, fraction: float | None = None) -> None:
        if self.listener is not None:
            self.listener(ProgressEvent.note("prepare", message, fraction, self.total_steps))

    def start(self, message: str, fraction: float | None = None) -> None:
        self._started = time.perf_counter()
        self._last_fraction = -1.0
        self.say(message, fraction)

    def progress(self, message: str, fraction: float) -> None:
        # At most one event per 5% so a big corpus does not flood the stream.
        if fraction < 1.0 and fraction - self._last_fraction < 0.05:
            return
        self._last_fraction = fraction
        if fraction < 1.0:
            self.say(f"{message} {fraction:.0%}", fraction)

    def end(self, message: str) -> None:
        self.say(f"{message} in {time.perf_counter() - self._started:.1f} s", 1.0)


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: PretrainingData
    eval: PretrainingData | None
    unigram_perplexity: float | None = None  # the held-out text under the corpus' frequencies


def document_tokens(corpus: TokenizedCorpus) -> np.ndarray:
    """Every token of the documents ``corpus`` uses (all, or its held-out subset)."""
    parts = [corpus.span(*corpus.sentences_of(int(d)))[0] for d in corpus.documents]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def find_resume_checkpoint(out_dir: Path | None, resume: str | os.PathLike | bool) -> Path:
    """``resume`` True/"latest": the newest checkpoint in ``out_dir``; else that folder."""
    if resume in (True, "latest"):
        if out_dir is None:
            raise InputError("resuming needs the output folder that holds the checkpoints")
        found = ckpt.latest_checkpoint(out_dir)
        if found is None:
            raise InputError(f"{out_dir}: no checkpoint to resume from")
        return found
    folder = Path(resume)
    if not (folder / ckpt.STATE_FILE).is_file():
        raise InputError(f"{folder}: not a training checkpoint (no {ckpt.STATE_FILE})")
    return folder


def prepare_data(
    config: TrainConfig,
    corpus: PathList,
    eval_corpus: PathList | None = None,
    tokenizer: Tokenizer | str | os.PathLike | None = None,
    out_dir: Path | None = None,
    ctx: DistContext | None = None,
    on_progress: Listener | None = None,
) -> PreparedData:
    """Check the settings and files, then get a tokenizer and tokenized train/eval data.

    ``on_progress`` receives "prepare" events for the slow phases (training the tokenizer,
    tokenizing the corpus), so a window or terminal is not left silent before the first step.
    """
    ctx = ctx or DistContext()
    phases = _Phases(on_progress, config.steps)
    corpus = check_corpus(corpus, "corpus")
    eval_corpus = check_corpus(eval_corpus, "evaluation corpus") if eval_corpus else None
    data_config = DataConfig.for_model(config.arch, config.seq_len, config.sentence_objective)
    heldout_minimum = check_documents(data_config.task, corpus, eval_corpus)
    if out_dir is not None and ctx.is_main:
        # Every check passed: now the folder may be touched, starting with what an
        # interrupted run left behind.
        removed = ckpt.remove_debris(out_dir)
        if removed:
            phases.say(
                f"removed {len(removed)} temporary folder(s) left by an interrupted run: "
                + ", ".join(str(f.relative_to(out_dir)) for f in removed)
            )
    max_length = config.max_positions or PRESETS[config.preset].max_position_embeddings
    if isinstance(tokenizer, Tokenizer):
        tok = tokenizer
    elif tokenizer is not None:
        tok = load_tokenizer_file(tokenizer, config.arch, max_length)
    else:
        tok_dir = out_dir / "tokenizer" if out_dir is not None else None
        if tok_dir is not None and ctx.enabled and not ctx.is_main:
            barrier(ctx)  # rank 0 trains and saves it
            tok = load_tokenizer_file(tok_dir, config.arch, max_length)
        else:
            phases.start(f"training the tokenizer (vocabulary {config.vocab_size})")
            tok = train_tokenizer(corpus, config.arch, config.vocab_size, max_length=max_length)
            phases.end(f"trained the tokenizer ({tok.vocab_size} tokens)")
            if tok_dir is not None:
                tok_dir.mkdir(parents=True, exist_ok=True)
                tok.save(tok_dir)
            if tok_dir is not None and ctx.enabled:
                barrier(ctx)
    config.model_config(tok)  # vocabulary and positions fit the preset
    cache = out_dir / "cache" if out_dir is not None else None

    def build(paths: PathList) -> TokenizedCorpus:
        if cache is not None and ctx.enabled and not ctx.is_main:
            barrier(ctx)
            return TokenizedCorpus.build(paths, tok, cache)
        names = ", ".join(Path(p).name for p in paths)
        phases.start(f"tokenizing {names}", 0.0)
        result = TokenizedCorpus.build(
            paths, tok, cache, progress=lambda f: phases.progress(f"tokenizing {names}", f)
        )
        phases.end(
            f"tokenized {names}: {result.n_tokens:,} tokens, {result.n_documents:,} documents"
        )
        if cache is not None and ctx.enabled:
            barrier(ctx)
        return result

    train_corpus = build(corpus)
    heldout = None
    if eval_corpus:
        heldout = build(eval_corpus)
    elif config.heldout_every and train_corpus.n_documents >= max(3, 2 * heldout_minimum):
        train_corpus, heldout = train_corpus.split_heldout(config.heldout_every, heldout_minimum)
    train = PretrainingData(train_corpus, tok, data_config, seed=config.seed)
    evaluation = PretrainingData(heldout, tok, data_config, seed=config.seed) if heldout else None
    log.info(
        "corpus: %d documents, %d tokens; held out: %s",
        train_corpus.n_documents,
        train_corpus.n_tokens,
        f"{heldout.n_documents} documents" if heldout else "none",
    )
    baseline = (
        unigram_perplexity(document_tokens(train_corpus), document_tokens(heldout), tok.vocab_size)
        if heldout
        else None
    )
    return PreparedData(tok, train, evaluation, baseline)


def check_documents(task: str, corpus: CheckedCorpus, eval_corpus: CheckedCorpus | None) -> int:
    """Refuse, before any work, a corpus with too few documents for the sentence task: NSP
    draws its random B segment from *another* document, so it needs two in the training text
    and two in the held-out text. Returns how many documents a held-out split must take."""
    if task != "nsp":
        return 1
    for files, what in ((corpus, "corpus"), (eval_corpus, "evaluation corpus")):
        if files is not None and files.documents < 2:
            raise InputError(
                f"{what} {', '.join(str(f) for f in files)}: {files.documents} document, but "
                "BERT's next-sentence prediction needs at least 2 (its random B segment comes "
                "from another document); separate documents by blank lines"
            )
    return 2


class RunFinished(TrainingError):
    """``resume`` named a run that already ran all its steps: there is nothing to do (the CLI
    says so and exits 0, changing no file)."""


def check_resume(config: TrainConfig, folder: Path, state: dict) -> None:
    """Resuming continues the checkpoint's run with its own schedule. A changed length,
    warm-up, peak learning rate or optimizer would make the schedule jump (a finished run's
    learning rate is 0), so it is refused, naming ``--init-from``, the way to train further;
    a run already at its last step raises :class:`RunFinished`."""
    saved = TrainConfig.from_dict(ckpt.load_training_args(folder).get("train", {}))
    step = int(state["step"])
    asked = {
        "--steps": (config.steps, saved.steps),
        "--warmup": (config.warmup_steps, saved.warmup_steps),
        "--lr": (config.lr, saved.lr),
        "--optimizer": (config.optimizer, saved.optimizer),
    }
    changed = [f"{k} {new}" for k, (new, old) in asked.items() if new != old]
    hint = (
        f"to train further, start a new run from its weights: --init-from {folder} --out NEW_FOLDER"
    )
    if changed:
        raise InputError(
            f"{folder} is step {step} of a run of {saved.steps} steps (warm-up "
            f"{saved.warmup_steps}, lr {saved.lr:g}, {saved.optimizer}); --resume continues "
            f"that schedule and cannot change it ({', '.join(changed)} asked); {hint}"
        )
    if step >= saved.steps:
        raise RunFinished(
            f"{folder.parent}: the run already finished its {saved.steps} steps "
            f"({folder.name}); nothing to resume, no file changed; {hint} --steps N"
        )


def check_init_folder(config: TrainConfig, tokenizer: object) -> Path:
    """The ``--init-from`` folder, checked before any work: it must be a model folder of the
    same family whose tokenizer the new run then uses (the embeddings are indexed by it)."""
    folder = Path(config.init_from)
    if tokenizer is not None:
        raise InputError("--init-from uses that model's own tokenizer; drop --tokenizer")
    if not (folder / "config.json").is_file():
        raise InputError(f"--init-from {folder}: no config.json there (not a model folder)")
    try:
        model_type = ModelConfig.load(folder).model_type
    except ConfigError as exc:
        raise InputError(f"--init-from {exc}") from None
    if model_type != config.arch:
        raise InputError(f"--init-from {folder} is a {model_type} model, not {config.arch}")
    return folder


def saved_run_settings(folder: str | os.PathLike) -> TrainConfig | None:
    """The settings of the run that wrote a model folder (``final/``'s
    ``training_summary.json``, a checkpoint's ``training_args.json``), or None for a folder no
    run of this engine wrote (or whose settings cannot be read)."""
    folder = Path(folder)
    for name in (ckpt.SUMMARY_FILE, ckpt.ARGS_FILE):
        path = folder / name
        if not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text(encoding="utf-8")).get("train")
            return TrainConfig.from_dict(saved) if isinstance(saved, dict) else None
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, InputError):
            return None
    return None


def evaluate_model(
    model: LoadedModel | str | os.PathLike,
    corpus: PathList,
    seq_len: int = 128,
    batch_size: int = 32,
    max_examples: int | None = None,
    seed: int = 1234,
    precision: str = "auto",
    device: str | torch.device | None = None,
    allow_tokenizer_mismatch: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> EvalMetrics:
    """Held-out MLM accuracy/perplexity and NSP/SOP accuracy of a model (loaded, or a folder
    loaded on ``device`` once the settings and files have passed) on text files: the same
    pairs and masks for the same ``seed`` (``python -m core eval``). The first
    ``max_examples`` sequences under ``seed`` are the ones a run's evaluation scores with
    ``eval_examples`` and ``seed + EVAL_SEED_OFFSET`` (see :func:`saved_run_settings`).
    ``on_warning``
    receives the warnings of a folder loaded despite ``allow_tokenizer_mismatch``."""
    if batch_size < 1:
        raise InputError(f"batch size must be a positive integer, got {batch_size}")
    if max_examples is not None and max_examples < 1:
        raise InputError(f"max examples must be >= 1, got {max_examples}")
    if seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed}")
    files = check_corpus(corpus)
    if isinstance(model, LoadedModel):
        loaded = model
    else:
        loaded = load_model(model, device=device, allow_tokenizer_mismatch=allow_tokenizer_mismatch)
    if on_warning is not None:
        for warning in loaded.warnings:
            on_warning(warning)
    if not loaded.heads.mlm:
        raise InputError(f"{loaded.path}: the model has no MLM head to evaluate")
    if seq_len > loaded.config.max_position_embeddings:
        raise InputError(
            f"sequence length {seq_len} is longer than the model's "
            f"{loaded.config.max_position_embeddings} positions"
        )
    # The sentence task the model's head learnt (the family's own for a model without one).
    data_config = DataConfig.for_model(loaded.config.model_type, seq_len, loaded.heads.sentence)
    tokenized = TokenizedCorpus.build(files, loaded.tokenizer)
    data = PretrainingData(tokenized, loaded.tokenizer, data_config, seed=seed)
    batches = data.eval_batches(batch_size, max_examples, seed=seed)
    return evaluate(
        loaded.model,
        batches,
        loaded.device,
        resolve_precision(precision, loaded.device),
        task=data_config.task,
    )


def build_pretraining_model(
    config: TrainConfig,
    model_config: ModelConfig,
    weights_from: str | os.PathLike | None = None,
) -> nn.Module:
    """A freshly initialised model (seeded by ``config.seed``), with the weights of a
    Hugging Face-format folder (a checkpoint to resume, or ``--init-from``) when given."""
    seed_everything(config.seed)
    model = build_model(model_config)
    model.init_weights()
    if weights_from is not None:
        weights = hf_to_engine(read_weights(weights_from), model_config)
        load_state(model, weights, str(weights_from))
    return model


def attach_run_folder(
    trainer: Trainer,
    out: Path,
    model_config: ModelConfig,
    tokenizer: Tokenizer,
    data_config: DataConfig,
    unigram_baseline: float | None = None,
) -> None:
    """The listeners that write ``out``: checkpoints (every rank takes part), and on rank 0
    the export ``final/`` and ``train_log.jsonl``, in that order."""
    config, ctx = trainer.config, trainer.ctx
    args = {"train": config.to_dict(), "data": asdict(data_config), "world_size": ctx.world_size}
    trainer.add_listener(
        CheckpointWriter(
            out,
            trainer.state_dict,
            trainer.model,
            model_config,
            tokenizer,
            args,
            config.keep_checkpoints,
            ctx,
        )
    )
    if not ctx.is_main:
        return
    summary = {
        "arch": config.arch,
        "preset": config.preset,
        "device": describe_device(trainer.device),
        "precision": trainer.precision,
        "world_size": ctx.world_size,
        "train": config.to_dict(),
        "unigram_perplexity": unigram_baseline,  # the plateau a run must get below
    }
    trainer.add_listener(
        FinalExport(
            out, trainer.model, model_config, tokenizer, summary, SAVE_DTYPES[config.save_dtype]
        )
    )
    trainer.add_listener(JsonlLog(out / LOG_FILE, trainer.step))


def prepare_training(
    config: TrainConfig,
    corpus: PathList,
    eval_corpus: PathList | None = None,
    tokenizer: Tokenizer | str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | bool | None = None,
    ctx: DistContext | None = None,
    device: torch.device | None = None,
    on_progress: Listener | None = None,
) -> Trainer:
    """A :class:`Trainer` for ``config`` on the given files (resuming when asked), with the
    listeners that write ``out_dir`` attached (none without one).

    ``on_progress`` receives the "prepare" events of set-up (listeners added to the trainer
    afterwards see only the run's own events)."""
    out = check_output_folder(out_dir) if out_dir is not None else None
    resume_from = find_resume_checkpoint(out, resume) if resume else None
    state = None
    if resume_from is not None:
        state = ckpt.load_trainer_state(resume_from)
        check_resume(config, resume_from, state)
        tokenizer = resume_from  # the checkpoint's own tokenizer
    else:
        if config.init_from is not None:
            tokenizer = check_init_folder(config, tokenizer)
        if out is not None and ckpt.list_checkpoints(out):
            raise InputError(
                f"{out} already holds checkpoints; pass --resume to continue that run or "
                "choose another --out"
            )
    data = prepare_data(config, corpus, eval_corpus, tokenizer, out, ctx, on_progress)
    phases = _Phases(on_progress, config.steps)
    phases.start(
        f"building the model (resuming {resume_from.name})"
        if resume_from is not None
        else f"building the model ({config.preset})"
    )
    model_config = config.model_config(data.tokenizer)
    # Continued pretraining (--init-from, e.g. BERT's second phase at a longer --seq-len):
    # the weights carry over; optimizer, schedule and data start afresh.
    model = build_pretraining_model(config, model_config, resume_from or config.init_from)
    trainer = Trainer(
        model,
        data.train,
        config,
        pretraining_loss,
        data.eval,
        device=device,
        ctx=ctx,
        state=state,
    )
    trainer.last_checkpoint = resume_from
    if out is not None:
        attach_run_folder(
            trainer, out, model_config, data.tokenizer, data.train.config, data.unigram_perplexity
        )
    phases.end(f"built {config.preset} on {trainer.device}")
    return trainer
