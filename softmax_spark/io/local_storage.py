"""The local storage backend: plain paths and ``file:`` URIs on the driver's disk (``os``,
``shutil``), with fsyncs so that a rename publishes complete files (``publish``)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil

from softmax_spark.io.uris import hidden_sibling, local_path

__all__ = ["LocalStorage", "LOCAL", "full_disk", "fsync_tree", "fsync_dir"]


class LocalStorage:
    """Plain paths and ``file:`` URIs on the driver's disk (os, shutil). Writes are fsynced."""

    name = "local"

    def exists(self, uri: str) -> bool:
        return os.path.exists(local_path(uri))

    def is_dir(self, uri: str) -> bool:
        return os.path.isdir(local_path(uri))

    def read_bytes(self, uri: str) -> bytes:
        with open(local_path(uri), "rb") as f:
            return f.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = local_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        staged = local_path(hidden_sibling(path, "tmp"))
        try:
            with open(staged, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(staged, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.remove(staged)
            named = full_disk(exc, path)
            if named is not exc:
                raise named from None
            raise
        fsync_dir(os.path.dirname(os.path.abspath(path)))

    def list_names(self, uri: str) -> list[str]:
        # Hadoop's local filesystem hides its own checksum files; so do we
        return [n for n in os.listdir(local_path(uri)) if not (n.startswith(".") and n.endswith(".crc"))]

    def delete(self, uri: str) -> bool:
        path = local_path(uri)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            return True
        try:
            os.remove(path)
            return True
        except FileNotFoundError:
            return False

    def makedirs(self, uri: str) -> None:
        os.makedirs(local_path(uri), exist_ok=True)

    def rename(self, source: str, target: str) -> None:
        os.rename(local_path(source), local_path(target))

    def qualify(self, uri: str) -> str:
        """``file:/absolute/path`` (Hadoop's spelling of a qualified local path)."""
        return "file:" + os.path.abspath(local_path(uri))

    def upload(self, local_dir: str, uri: str) -> None:
        shutil.copytree(local_dir, local_path(uri))

    def download(self, uri: str, local: str) -> None:
        source = local_path(uri)
        if os.path.isdir(source):
            shutil.copytree(source, local)
        else:
            shutil.copyfile(source, local)


def full_disk(exc: BaseException, path: str) -> BaseException:
    """``exc`` itself, or — when it is ENOSPC, whose message names no file when a write (not an
    open) failed — ``OSError(ENOSPC, "No space left on device", path)``, naming where we wrote."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    return exc


def fsync_tree(root: str) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


def fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)



LOCAL = LocalStorage()  # the one instance: ``backend is LOCAL`` picks the local code paths
