"""Files that matter are written to a temporary name beside them and renamed over them.

A reader, or a crash, then sees the old file or the new one, never half of either; and a failed
write leaves no temporary file behind. ``fsync=True`` where the file must survive a power cut
(checkpoints' companions, run history), not for every export.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` that keeps its suffix (``np.savez`` and Qt's writers read it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(
    path: str | os.PathLike, text: str, *, fsync: bool = False, newline: str | None = None
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with (
        atomic_path(path, fsync=fsync) as tmp,
        open(tmp, "w", encoding="utf-8", newline=newline) as f,
    ):
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)
