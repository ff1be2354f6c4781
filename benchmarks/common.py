"""Shared helpers for the benchmark scripts: timing, machine description, transformers twins."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import pre_tokenizers
from tokenizers.models import WordLevel

from core.config import preset
from core.loaded_model import LoadedModel, build_model
from core.tokenizer import SPECIAL_DEFAULTS, Tokenizer, bert_post_processor


def median_ms(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def transformers_twin(loaded, attn_implementation: str):
    """The transformers model with the engine model's weights (via a saved checkpoint)."""
    import tempfile

    import transformers

    from core.hf_checkpoint import hf_architecture
    from core.loaded_model import save_model

    with tempfile.TemporaryDirectory() as tmp:
        save_model(loaded, tmp)
        cls = getattr(transformers, hf_architecture(loaded.config, loaded.heads))
        return cls.from_pretrained(tmp, attn_implementation=attn_implementation).eval()


def random_preset(name: str, text: str = "") -> LoadedModel:
    """A seeded, random-initialised preset with a word-level tokenizer that knows the words
    of ``text`` (enough to encode a benchmark sentence)."""
    config = preset(name)
    torch.manual_seed(0)
    model = build_model(config)
    model.init_weights()
    special = SPECIAL_DEFAULTS[config.model_type]
    words = dict.fromkeys(w for w in text.split() if w not in special.values())
    vocab = {tok: i for i, tok in enumerate([*special.values(), *words])}
    backend = HFTokenizer(WordLevel(vocab, unk_token=special["unk"]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(list(special.values()))
    backend.post_processor = bert_post_processor(backend, special)
    return LoadedModel(config, model.eval(), Tokenizer(backend, special, 512), name)
