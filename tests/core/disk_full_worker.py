"""A child process whose files stop growing past a size limit, as a full disk stops them
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so a write that would pass it fails with ``EFBIG``).

Every checkpoint of a run has the same size, so a fixed limit would fail the first one too: the
limit is lowered only after the first successful save, so a later write fails part-way.

``train OUT_ARGS...``: ``python -m core train`` (the CLI's own ``main``) with the given
arguments; the limit drops to half the first checkpoint's weights file once it is written.
``save SRC DST``: ``save_model`` of SRC's model to DST (fits), then of changed weights to DST
again under a limit of half its weights file; prints the one-line error.
"""

from __future__ import annotations

import resource
import signal
import sys
from pathlib import Path


def limit_files_to(size: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))


def train(argv: list[str]) -> int:
    from core.cli import main
    from core.training import listeners

    write = listeners.CheckpointWriter.__call__

    def write_then_fill_the_disk(self, ev):
        answer = write(self, ev)
        if answer is not None and answer.checkpoint:
            limit_files_to((Path(answer.checkpoint) / "model.safetensors").stat().st_size // 2)
        return answer

    listeners.CheckpointWriter.__call__ = write_then_fill_the_disk
    return main(argv)


def save(src: str, dst: str) -> int:
    import torch

    from core import load_model, save_model
    from core.errors import CheckpointError

    loaded = load_model(src)
    save_model(loaded, dst)
    limit_files_to((Path(dst) / "model.safetensors").stat().st_size // 2)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.add_(1.0)
    try:
        save_model(loaded, dst)
    except CheckpointError as err:
        print(err)
        return 2
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    mode, *rest = sys.argv[1:]
    sys.exit(train(rest) if mode == "train" else save(*rest))
