"""What the pre-allocation checks of ``load_model`` cost, next to the load itself (CPU).

Per demo model (``resources/models/*``), best and median of N runs:
  checks   header shapes (safetensors, no tensor data) -> engine keys -> meta-device model ->
           key-by-key shape comparison -> memory estimate against MemAvailable;
  read     reading the tensors (``read_weights``);
  load     the whole ``load_model`` (checks, read, copy, tokenizer).
Then ``check_fits`` on bert-base with hidden_size 10**6 (refused without allocating).

    python -m benchmarks.bench_load [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from core import CheckpointError, load_model, preset
from core.config import ModelConfig
from core.hf_checkpoint import check_shapes, detect_heads, engine_shapes, peek_weights, read_weights
from core.loaded_model import _check_fits, build_model, check_fits

MODELS = Path(__file__).resolve().parent.parent / "resources" / "models"


def _timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times), 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'model':<14}{'step':<8}{'best ms':>9}{'median ms':>11}")
    for folder in sorted(p for p in MODELS.iterdir() if (p / "config.json").is_file()):
        config = ModelConfig.load(folder)

        def checks(folder=folder, config=config) -> None:
            raw, _, file_bytes = peek_weights(folder)
            shapes = engine_shapes(raw, config)
            with torch.device("meta"):
                model = build_model(config, detect_heads(set(shapes), config.model_type))
            check_shapes(model, shapes, str(folder))
            _check_fits(model, torch.device("cpu"), torch.float32, str(folder), file_bytes)

        steps = {
            "checks": checks,
            "read": lambda folder=folder: read_weights(folder),
            "load": lambda folder=folder: load_model(folder, device="cpu"),
        }
        for step, fn in steps.items():
            best, median = _timed(fn, args.repeat)
            print(f"{folder.name:<14}{step:<8}{best:>9.1f}{median:>11.1f}")
    absurd = preset("bert-base", hidden_size=10**6, num_attention_heads=8)
    start = time.perf_counter()
    try:
        check_fits(absurd, "cpu")
        message = "accepted (this machine has that much memory)"
    except CheckpointError as err:
        message = str(err)
    print(f"absurd config: {1000 * (time.perf_counter() - start):.1f} ms: {message}")


if __name__ == "__main__":
    main()
