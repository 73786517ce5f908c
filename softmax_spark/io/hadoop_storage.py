"""The Hadoop storage backend: any URI a Hadoop FileSystem of the running SparkSession's JVM
serves (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``viewfs://``, …), with Java failures mapped
to one-line Python errors."""

from __future__ import annotations

import contextlib
import os

from softmax_spark.core.errors import InputError
from softmax_spark.io.publish import publish
from softmax_spark.io.uris import hidden_sibling, scheme

__all__ = ["HadoopStorage"]

# Java exceptions that mean "this path cannot be used as given" (exit 2), not a failure of the job
_INPUT_ERRORS = {
    "UnsupportedFileSystemException", "NotInMountpointException", "AccessControlException",
    "UnknownHostException", "IllegalArgumentException", "ParentNotDirectoryException",
    "FileAlreadyExistsException", "InvalidPathException",
}


class HadoopStorage:
    """Any URI a Hadoop FileSystem of the session's JVM serves (``Path.getFileSystem(conf)``;
    FileSystem instances are cached by Hadoop per scheme and authority).

    Java failures become one-line Python errors: ``FileNotFoundError``, ``InputError`` (the
    path cannot be used: unknown scheme, outside a viewfs mount, permission, unknown host) or
    ``OSError`` (anything else), each naming the operation and the URI."""

    name = "hadoop"

    def __init__(self, context):
        self._jvm = context._jvm
        self._conf = context._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _call(self, operation: str, uri: str, fn):
        from py4j.protocol import Py4JJavaError

        try:
            return fn()
        except Py4JJavaError as exc:
            java = exc.java_exception
            name = java.getClass().getSimpleName()
            message = (str(java.getMessage() or "").strip().splitlines() or [""])[0]
            line = f"{operation} {uri}: {name}: {message}".rstrip(": ")
            if name == "FileNotFoundException":
                raise FileNotFoundError(line) from None
            if name in _INPUT_ERRORS:
                if name == "UnsupportedFileSystemException":
                    line = (f"{uri}: no Hadoop FileSystem for scheme '{scheme(uri)}' in this Spark session "
                            f"(set spark.hadoop.fs.{scheme(uri)}.impl, add its connector jar, or give another path)")
                raise InputError(line) from None
            raise OSError(line) from None

    def _fs(self, uri: str):
        return self._call("open filesystem of", uri, lambda: self._path(uri).getFileSystem(self._conf))

    def check(self, uri: str) -> None:
        """Raise ``InputError`` unless a FileSystem serves ``uri``'s scheme (no I/O)."""
        self._fs(uri)

    def exists(self, uri: str) -> bool:
        fs = self._fs(uri)
        return bool(self._call("exists", uri, lambda: fs.exists(self._path(uri))))

    def is_dir(self, uri: str) -> bool:
        fs = self._fs(uri)
        try:
            return bool(self._call("stat", uri, lambda: fs.getFileStatus(self._path(uri)).isDirectory()))
        except FileNotFoundError:
            return False

    def read_bytes(self, uri: str) -> bytes:
        fs = self._fs(uri)
        stream = self._call("open", uri, lambda: fs.open(self._path(uri)))
        try:
            return bytes(self._call("read", uri, lambda: self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)))
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        staged = hidden_sibling(uri, "tmp")
        fs = self._fs(uri)
        try:
            stream = self._call("create", staged, lambda: fs.create(self._path(staged), True))
            try:
                self._call("write", staged, lambda: stream.write(bytearray(data)))
            finally:
                stream.close()
            publish(staged, uri, backend=self)
        except BaseException:
            with contextlib.suppress(Exception):
                self.delete(staged)
            raise

    def list_names(self, uri: str) -> list[str]:
        fs = self._fs(uri)
        statuses = self._call("list", uri, lambda: fs.listStatus(self._path(uri)))
        return [status.getPath().getName() for status in statuses]

    def delete(self, uri: str) -> bool:
        fs = self._fs(uri)
        return bool(self._call("delete", uri, lambda: fs.delete(self._path(uri), True)))

    def makedirs(self, uri: str) -> None:
        fs = self._fs(uri)
        if not self._call("mkdirs", uri, lambda: fs.mkdirs(self._path(uri))):
            raise OSError(f"mkdirs {uri}: the filesystem refused")

    def rename(self, source: str, target: str) -> None:
        fs = self._fs(source)
        if not self._call("rename", source, lambda: fs.rename(self._path(source), self._path(target))):
            raise OSError(f"rename {source} to {target}: the filesystem refused")

    def qualify(self, uri: str) -> str:
        fs = self._fs(uri)
        return str(self._call("qualify", uri, lambda: fs.makeQualified(self._path(uri)).toString()))

    def upload(self, local_dir: str, uri: str) -> None:
        """Copy the local directory (or file) to ``uri``, which must not exist."""
        fs = self._fs(uri)
        source = self._path("file:" + os.path.abspath(local_dir))
        self._call("copy to", uri, lambda: fs.copyFromLocalFile(False, False, source, self._path(uri)))

    def download(self, uri: str, local: str) -> None:
        """Copy ``uri`` (file or directory) to the local path ``local``, which must not exist."""
        fs = self._fs(uri)
        target = self._path("file:" + os.path.abspath(local))
        # the raw local filesystem: no .crc files beside the copies
        self._call("copy from", uri, lambda: fs.copyToLocalFile(False, self._path(uri), target, True))
