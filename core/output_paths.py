"""Checks of where results will be written, made before any work starts.

A run that can only fail when it saves (an ``--out`` that names a file, a folder the user
cannot write to) should fail in the first second with one line, not after the tokenizer was
trained. Nothing is created by these checks: writability is tested with a probe file in the
folder (or, for a folder still to be made, in its nearest existing ancestor), removed at once.
Permission bits alone would not do: root writes through them, and read-only mounts, ACLs or
full quotas are only found by trying.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import InputError


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe_write(folder: Path, what: str, target: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".bertscope-write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise InputError(
            f"{what} {target}: cannot write in {folder} ({err.strerror or err})"
        ) from None


def _check_folder(folder: Path, what: str, target: Path) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise InputError(f"{what} {target}: {folder} is a file, not a folder")
        _probe_write(folder, what, target)
        return
    base = _nearest_existing(folder.absolute())
    if not base.is_dir():
        raise InputError(f"{what} {target}: cannot create {folder}, {base} is a file")
    _probe_write(base, what, target)


def check_output_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """``folder`` exists as a writable folder, or can be created (every existing part of its
    path is a folder and the nearest one is writable). Raises :class:`InputError` naming the
    part at fault; creates nothing."""
    folder = Path(folder)
    _check_folder(folder, what, folder)
    return folder


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` can be written: not a folder, and its folder exists (or can be created) and is
    writable. Raises :class:`InputError` naming the part at fault; creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, not a file")
    _check_folder(path.parent, what, path)
    return path
