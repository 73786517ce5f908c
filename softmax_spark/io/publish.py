"""Atomic publication by rename, and the recovery of a replacement a crash interrupted.

``publish`` renames a complete staged directory (on the target's filesystem) to its name:

- local targets on Linux: one ``renameat2(RENAME_EXCHANGE)`` swaps the staged and the old
  directory (the old one then sits under the staged name and is deleted), so the name always holds
  the complete old or the complete new model. Without ``overwrite`` the publishing rename is
  ``renameat2(RENAME_NOREPLACE)``: a target that another job published after our start is never
  replaced (``InputError``, one line).
- Hadoop targets, and local ones whose kernel or filesystem has no ``renameat2`` flags: the old
  directory is renamed aside to ``.<name>.old-<id>``, the staged one renamed in, the old one
  deleted. An error in the second rename renames the old one back. A crash between the two renames
  leaves the name missing and the old model in ``.<name>.old-<id>``: the next publish to that name,
  and ``model_io.load_model`` when the name is missing, call ``recover``, which renames it back
  (or, when the name exists, deletes such leftovers). Without ``overwrite`` the target's absence
  is checked again just before the rename (a window of one round trip remains there).

Both functions take the backend (``storage.filesystem(uri, spark)``); ``storage.atomic_directory``
stages a directory and calls ``publish``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil

from softmax_spark.core.errors import InputError
from softmax_spark.io.local_storage import LOCAL, fsync_dir
from softmax_spark.io.uris import basename, hidden_sibling, join, local_path, parent

__all__ = ["publish", "recover"]

log = logging.getLogger("softmax_spark")

# renameat2(2) flags (linux/fs.h); AT_FDCWD: paths relative to the working directory
_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100
_renameat2_fn = None  # resolved once: the libc function, or False where there is none

# test-only seams (no flag, no environment variable): ``_crash_hook(step)`` is called after each
# step of ``publish`` (tests make it ``os._exit`` to simulate a kill there); ``_use_renameat2 =
# False`` forces the rename-aside path that Hadoop targets take
_crash_hook = None
_use_renameat2 = True


def _step(name: str) -> None:
    if _crash_hook is not None:
        _crash_hook(name)


def _renameat2(source: str, target: str, flags: int) -> bool:
    """``renameat2(source, target, flags)`` through libc (ctypes). True when done; False when this
    libc, kernel or filesystem has no such call or flag (the caller falls back). Raises ``OSError``
    for any other failure (``FileExistsError`` for RENAME_NOREPLACE onto an existing name)."""
    global _renameat2_fn
    if not _use_renameat2:
        return False
    if _renameat2_fn is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2  # glibc >= 2.28
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2_fn = fn
        except (OSError, AttributeError):
            _renameat2_fn = False
    if _renameat2_fn is False:
        return False
    if _renameat2_fn(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # no renameat2 in this kernel, or no such flag on this filesystem
    raise OSError(code, os.strerror(code), source, None, target)


def _exists_error(what: str, uri: str) -> InputError:
    return InputError(f"{what} {uri} already exists (published by another job after this one started); "
                      "pass --overwrite to replace it")


def _old_siblings(uri: str, backend) -> list[str]:
    """The hidden ``.<name>.old-<id>`` siblings of ``uri`` that a killed publish left."""
    pattern = re.compile(r"\." + re.escape(basename(uri)) + r"\.old-[0-9a-f]{12}")
    try:
        names = backend.list_names(parent(uri))
    except FileNotFoundError:
        return []
    return sorted(join(parent(uri), n) for n in names if pattern.fullmatch(n))


def recover(uri: str, backend) -> bool:
    """Mend what a publish killed between its two renames left (module docstring): when ``uri`` is
    missing and a ``.<name>.old-<id>`` sibling exists, rename it back to ``uri`` (True; a warning is
    logged); the other such siblings, left when ``uri`` exists, are deleted. False when nothing was
    restored. Never raises for a failed clean-up of a leftover."""
    olds = _old_siblings(uri, backend)
    restored = False
    if olds and not backend.exists(uri):
        source = olds.pop()
        try:
            if backend is LOCAL:
                if not _renameat2(local_path(source), local_path(uri), _RENAME_NOREPLACE):
                    backend.rename(source, uri)
            else:
                backend.rename(source, uri)
            restored = True
            log.warning("%s: restored the previous directory from %s (a replacement was interrupted)",
                        uri, basename(source))
        except FileExistsError:  # published meanwhile: the old one is only a leftover now
            olds.append(source)
    if backend.exists(uri):
        for leftover in olds:
            with contextlib.suppress(Exception):
                backend.delete(leftover)
    return restored


def publish(staged: str, uri: str, backend, overwrite: bool = True, what: str = "output") -> None:
    """Rename the complete ``staged`` (same filesystem) to ``uri`` (module docstring: at every
    instant ``uri`` holds the old or the new directory, or — Hadoop, between two renames — the old
    one under a hidden name that ``recover`` restores). An existing ``uri`` is replaced (never
    merged into) when ``overwrite``; else ``InputError`` (one line starting with ``what``). An
    error in the rename-in puts the old directory back, then raises."""
    _step("staged")
    if backend is LOCAL:
        source, target = local_path(staged), local_path(uri)
        try:
            done = _renameat2(source, target, _RENAME_NOREPLACE)
        except FileExistsError:
            if not overwrite:
                raise _exists_error(what, uri) from None
            done = _renameat2(source, target, _RENAME_EXCHANGE)
            if done:  # the old directory now sits under the staged name
                fsync_dir(os.path.dirname(os.path.abspath(target)))
                _step("exchanged")
                shutil.rmtree(source, ignore_errors=True)
        if done:
            fsync_dir(os.path.dirname(os.path.abspath(target)))
            _step("published")
            return
    if backend.exists(uri):
        if not overwrite:
            raise _exists_error(what, uri)
        old = hidden_sibling(uri, "old")
        backend.rename(uri, old)
        _step("aside")
        try:
            backend.rename(staged, uri)
        except BaseException:
            with contextlib.suppress(Exception):
                if not backend.exists(uri):
                    backend.rename(old, uri)
            raise
        _step("renamed-in")
        with contextlib.suppress(Exception):  # a leftover is deleted by the next ``recover``
            backend.delete(old)
    else:
        backend.rename(staged, uri)
    if backend is LOCAL:
        fsync_dir(os.path.dirname(os.path.abspath(local_path(uri))))
    _step("published")
