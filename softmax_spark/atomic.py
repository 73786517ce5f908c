"""Atomic publication of a local directory: write into a hidden temporary sibling, then rename.

A reader sees either no directory, the complete previous one, or the complete new one — never a
half-written one, whatever moment the writer is killed at (rename is atomic on one filesystem).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

from .errors import InputError


def _sibling(path: str, tag: str) -> str:
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}.{tag}-{uuid.uuid4().hex[:12]}")


def check_writable(path: str, overwrite: bool, what: str = "output") -> None:
    """Refuse an existing ``path`` unless ``overwrite``: call before any expensive work."""
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{what} {path} already exists; pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False, what: str = "output"):
    """Yield a temporary directory; on success it replaces ``path`` in one rename.

    On an exception the temporary directory is removed and ``path`` is left as it was.
    """
    check_writable(path, overwrite, what)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = _sibling(path, "tmp")
    os.makedirs(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)
        publish_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_directory(tmp: str, path: str) -> None:
    """Move the finished directory ``tmp`` to ``path``, replacing an existing one atomically
    enough: the old one is renamed aside first, so ``path`` is never partial."""
    if os.path.exists(path):
        old = _sibling(path, "old")
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fsync_tree(root: str) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(dirpath)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
