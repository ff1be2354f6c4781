"""One rank of the collective-cancellation test (run by ``torchrun``, two gloo processes):
rank 1 alone is asked to stop after step ``STOP_AT``; each rank writes what it saw to
``OUT/rank-N.json``. An optional second argument is the log interval (steps between reads of
the device's numbers, where the ranks agree on stopping). Not a test module itself (see ``test_gpu_paths.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.training import TrainConfig, prepare_training
from core.training.distributed import init_distributed, shutdown
from tests.core.training_text import word_tokenizer

STOP_AT = 2


def main(folder: str, log_every: int = 1) -> None:
    root = Path(folder)
    ctx, device = init_distributed("cpu")
    config = TrainConfig(
        arch="bert",
        preset="bert-tiny",
        steps=6,
        batch_size=4,
        seq_len=32,
        lr=2e-3,
        warmup=1,
        device="cpu",
        eval_every=0,
        eval_examples=8,
        save_every=0,
        log_every=log_every,
        config_overrides={"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64},
    )
    try:
        trainer = prepare_training(
            config,
            [root / "train.txt"],
            [root / "heldout.txt"],
            tokenizer=word_tokenizer("bert"),
            out_dir=root / "out",
            ctx=ctx,
            device=device,
        )
        if ctx.rank == 1:  # only this process sees the Ctrl-C

            def stop(ev):
                if ev.kind == "step" and ev.step == STOP_AT:
                    trainer.cancel()

            trainer.add_listener(stop)
        result = trainer.run()
        (root / f"rank-{ctx.rank}.json").write_text(
            json.dumps(
                {
                    "steps": result.steps,
                    "cancelled": result.cancelled,
                    "checkpoint": str(result.checkpoint),
                }
            )
        )
    finally:
        shutdown(ctx)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
