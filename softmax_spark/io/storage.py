"""Storage: where model directories, checkpoints, predictions, metrics and plots are read and written.

Every path argument is a URI; the part before ``:`` picks the backend:

- a plain path (``out/m1``, ``/data/m1``) or a ``file:`` URI → the **local** backend: Python's
  ``os`` / ``shutil`` on the driver's disk. No Spark needed.
- any other scheme (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``viewfs://``, …) → the
  **Hadoop** backend: ``org.apache.hadoop.fs.FileSystem`` in the JVM of the running SparkSession
  (``SparkSession.getActiveSession()``, or the ``spark`` argument), configured by its Hadoop
  configuration (``spark.hadoop.*`` settings, core-site.xml). Without a session, on a Spark
  Connect session (whose client has no JVM), or for a scheme no
  Hadoop FileSystem serves, the URI is refused with one ``InputError`` line: it is never taken
  as a relative local path (``viewfs://x/m`` would otherwise become a folder ``viewfs:``).

Atomic publication (``atomic_directory``): the caller fills a *local* temporary directory (numpy,
pyarrow and matplotlib keep writing local files); on success it becomes the target in one rename.
Local targets: the temporary directory is a hidden sibling ``.<name>.tmp-<id>`` on the same
filesystem, fsynced, then renamed. Hadoop targets: the local directory is copied to a hidden
sibling on the target filesystem (``copyFromLocalFile``), then renamed. So a reader sees no
directory, the complete old one, or the complete new one; never a half-written one. (Renames are
atomic on local disks, HDFS, viewfs, ABFS with hierarchical namespace; on object stores whose
"rename" copies file by file — S3 through s3a, GCS — the new name can be seen partly filled while
the rename runs; the name never appears before every file has been uploaded.)

Replacing an existing target (``overwrite``), and a crash at any instant of it:

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

Hidden names (a leading ``.``) keep temporaries out of Spark's and Hadoop's listings: Spark skips
files and directories whose names start with ``.`` or ``_`` when it reads a directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import tempfile
import uuid

from softmax_spark.core.errors import InputError

__all__ = [
    "is_local", "local_path", "filesystem", "check_reachable", "check_writable",
    "exists", "is_dir", "read_bytes", "write_bytes", "list_names", "delete", "makedirs", "rename",
    "qualify", "join", "basename", "hidden_sibling", "publish", "recover", "atomic_directory", "local_copy",
]

log = logging.getLogger("softmax_spark")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def scheme(uri: str) -> str:
    """The URI's scheme in lower case; '' for a plain path."""
    match = _SCHEME.match(str(uri))
    return match.group(1).lower() if match else ""


def is_local(uri: str) -> bool:
    """True for a plain path or a ``file:`` URI (the local backend; no Spark needed)."""
    return scheme(uri) in ("", "file")


def local_path(uri: str) -> str:
    """The OS path of a local URI: ``file:///a/b``, ``file:/a/b`` and ``/a/b`` → ``/a/b``;
    relative plain paths stay relative. Raises ``InputError`` for any other scheme or a
    ``file://host/…`` URI naming another host."""
    uri = str(uri)
    kind = scheme(uri)
    if kind == "":
        return uri
    if kind != "file":
        raise InputError(f"{uri} is not a local path")
    rest = uri[len("file:"):]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise InputError(f"{uri} names host {host!r}; a file: URI must be local (file:///path)")
        return "/" + path
    return rest


def join(uri: str, *names: str) -> str:
    """``uri`` / name / … joined with '/' (the separator of both backends); ``uri`` may be an
    ``os.PathLike``."""
    uri = os.fspath(uri)
    for name in names:
        uri = name if uri == "" else (uri if uri.endswith("/") else uri + "/") + name
    return uri


def basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _parent(uri: str) -> str:
    """The directory holding ``uri`` ('.' for a bare relative name)."""
    stripped = uri.rstrip("/")
    if "/" not in stripped:
        return "."
    head = stripped.rsplit("/", 1)[0]
    if head == "" or head.endswith(":") or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/]*", head):
        return head + "/"  # the root: "/", "file:/", "hdfs://namenode/"
    return head


def hidden_sibling(uri: str, tag: str) -> str:
    """``<parent>/.<name>.<tag>-<12 hex>``: a fresh hidden name next to ``uri``."""
    return join(_parent(uri), f".{basename(uri)}.{tag}-{uuid.uuid4().hex[:12]}")


# ---------------------------------------------------------------------------------------------
# the local backend
# ---------------------------------------------------------------------------------------------
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
        _fsync_dir(os.path.dirname(os.path.abspath(path)))

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


# ---------------------------------------------------------------------------------------------
# the Hadoop backend
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# choosing the backend
# ---------------------------------------------------------------------------------------------
_LOCAL = LocalStorage()


def _session(spark):
    """The given session, else the active one, else the running SparkContext; None without one."""
    if spark is not None:
        return spark
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:  # the numpy core without pyspark installed
        return None
    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    return SparkContext._active_spark_context  # another thread of the driver: the JVM is the same


def _jvm_context(session):
    """The SparkContext (with a JVM) behind ``session``; None for none or a Spark Connect session."""
    if session is None:
        return None
    try:
        context = getattr(session, "sparkContext", session)
    except Exception:  # noqa: BLE001 - Spark Connect: no JVM on this side
        return None
    return context if getattr(context, "_jsc", None) is not None else None


def filesystem(uri: str, spark=None, what: str | None = None):
    """The backend for ``uri``: ``LocalStorage`` or ``HadoopStorage`` (see the module docstring).

    ``what`` (e.g. "--model-dir") starts the error line. Raises ``InputError`` when ``uri`` needs
    Spark and no session is running, or when no Hadoop FileSystem serves its scheme."""
    if is_local(uri):
        local_path(uri)  # refuses file://otherhost/
        return _LOCAL
    session = _session(spark)
    prefix = f"{what} " if what else ""
    if type(session).__module__.startswith("pyspark.sql.connect."):  # connect_backend.is_connect
        raise InputError(
            f"{prefix}{uri}: a {scheme(uri)}:// path is written through the driver JVM's Hadoop FileSystem, "
            "which a Spark Connect client does not have; on Spark Connect give a local path (plain or file:)"
        )
    if _jvm_context(session) is None:
        raise InputError(
            f"{prefix}{uri}: a {scheme(uri)}:// path is reached through Spark's Hadoop FileSystem, and no "
            "SparkSession is running (start one first, or pass spark=)"
        )
    backend = HadoopStorage(_jvm_context(session))
    try:
        backend.check(uri)
    except InputError as exc:
        raise InputError(f"{prefix}{exc}") from None
    return backend


def check_reachable(uri: str | None, what: str, spark=None) -> None:
    """Refuse (``InputError``, one line starting with ``what``) a URI no backend can reach.
    None or '' passes."""
    if uri:
        filesystem(uri, spark, what)


def check_writable(uri: str, overwrite: bool, what: str = "output", spark=None) -> None:
    """Refuse an existing ``uri`` unless ``overwrite`` (``InputError``: "<what> <uri> already
    exists; pass --overwrite to replace it"); call before any expensive work."""
    if filesystem(uri, spark, what).exists(uri) and not overwrite:
        raise InputError(f"{what} {uri} already exists; pass --overwrite to replace it")


def exists(uri: str, spark=None) -> bool:
    """Does ``uri`` (file or directory) exist?"""
    return filesystem(uri, spark).exists(uri)


def is_dir(uri: str, spark=None) -> bool:
    """Is ``uri`` an existing directory?"""
    return filesystem(uri, spark).is_dir(uri)


def read_bytes(uri: str, spark=None) -> bytes:
    """The whole file (for small files: metadata, JSON). Raises ``FileNotFoundError``."""
    return filesystem(uri, spark).read_bytes(uri)


def write_bytes(uri: str, data: bytes, spark=None) -> None:
    """Write the file ``uri`` atomically (hidden sibling, then rename over); parents are created."""
    filesystem(uri, spark).write_bytes(uri, data)


def list_names(uri: str, spark=None) -> list[str]:
    """Names (not paths) of the entries of the directory ``uri``, checksum files excluded.
    Raises ``FileNotFoundError`` when it does not exist."""
    return filesystem(uri, spark).list_names(uri)


def delete(uri: str, spark=None) -> bool:
    """Delete the file or directory ``uri`` (recursively); False when it did not exist."""
    return filesystem(uri, spark).delete(uri)


def makedirs(uri: str, spark=None) -> None:
    """Create the directory ``uri`` and its parents (no error when it exists)."""
    filesystem(uri, spark).makedirs(uri)


def rename(source: str, target: str, spark=None) -> None:
    """Rename within one filesystem; ``target`` must not exist (Hadoop would move ``source``
    *into* an existing directory). Raises ``OSError`` when refused."""
    filesystem(source, spark).rename(source, target)


def qualify(uri: str, spark=None) -> str:
    """The absolute, qualified form: ``file:/abs/path`` for local paths, e.g.
    ``hdfs://namenode:8020/a/b`` or ``viewfs://default/store/a`` for Hadoop paths."""
    return filesystem(uri, spark).qualify(uri)


# ---------------------------------------------------------------------------------------------
# atomic publication and local copies
# ---------------------------------------------------------------------------------------------
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
        names = backend.list_names(_parent(uri))
    except FileNotFoundError:
        return []
    return sorted(join(_parent(uri), n) for n in names if pattern.fullmatch(n))


def recover(uri: str, spark=None, backend=None) -> bool:
    """Mend what a publish killed between its two renames left (module docstring): when ``uri`` is
    missing and a ``.<name>.old-<id>`` sibling exists, rename it back to ``uri`` (True; a warning is
    logged); the other such siblings, left when ``uri`` exists, are deleted. False when nothing was
    restored. Never raises for a failed clean-up of a leftover."""
    backend = backend or filesystem(uri, spark)
    olds = _old_siblings(uri, backend)
    restored = False
    if olds and not backend.exists(uri):
        source = olds.pop()
        try:
            if backend is _LOCAL:
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


def publish(staged: str, uri: str, spark=None, backend=None, overwrite: bool = True,
            what: str = "output") -> None:
    """Rename the complete ``staged`` (same filesystem) to ``uri`` (module docstring: at every
    instant ``uri`` holds the old or the new directory, or — Hadoop, between two renames — the old
    one under a hidden name that ``recover`` restores). An existing ``uri`` is replaced (never
    merged into) when ``overwrite``; else ``InputError`` (one line starting with ``what``). An
    error in the rename-in puts the old directory back, then raises."""
    backend = backend or filesystem(uri, spark)
    _step("staged")
    if backend is _LOCAL:
        source, target = local_path(staged), local_path(uri)
        try:
            done = _renameat2(source, target, _RENAME_NOREPLACE)
        except FileExistsError:
            if not overwrite:
                raise _exists_error(what, uri) from None
            done = _renameat2(source, target, _RENAME_EXCHANGE)
            if done:  # the old directory now sits under the staged name
                _fsync_dir(os.path.dirname(os.path.abspath(target)))
                _step("exchanged")
                shutil.rmtree(source, ignore_errors=True)
        if done:
            _fsync_dir(os.path.dirname(os.path.abspath(target)))
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
    if backend is _LOCAL:
        _fsync_dir(os.path.dirname(os.path.abspath(local_path(uri))))
    _step("published")


@contextlib.contextmanager
def atomic_directory(uri: str, overwrite: bool = False, what: str = "output", spark=None):
    """Yield a local temporary directory to fill; on success it replaces ``uri`` atomically
    (module docstring). On an exception every temporary is removed and ``uri`` is left as it was.

    Raises ``InputError`` when ``uri`` exists and not ``overwrite``, or cannot be reached."""
    backend = filesystem(uri, spark, what)
    with contextlib.suppress(OSError):  # a previous replacement killed half-way (``recover``)
        recover(uri, backend=backend)
    if backend.exists(uri) and not overwrite:
        raise InputError(f"{what} {uri} already exists; pass --overwrite to replace it")
    parent = _parent(uri)
    backend.makedirs(parent)
    if backend is _LOCAL:
        # a sibling on the same filesystem: the rename is the only step left after writing
        staged = local_path(hidden_sibling(local_path(uri), "tmp"))
        os.mkdir(staged, 0o700)
        os.chmod(staged, 0o700)  # private whatever the umask (tempfile.mkdtemp's mode, as for remote targets)
        try:
            yield staged
            _fsync_tree(staged)
            publish(staged, local_path(uri), backend=backend, overwrite=overwrite, what=what)
        except BaseException as exc:
            shutil.rmtree(staged, ignore_errors=True)
            named = full_disk(exc, uri)
            if named is not exc:
                raise named from None
            raise
        return
    scratch = tempfile.mkdtemp(prefix="softmax_spark-stage-")
    staged = hidden_sibling(uri, "tmp")
    try:
        yield scratch
        backend.upload(scratch, staged)
        publish(staged, uri, backend=backend, overwrite=overwrite, what=what)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            backend.delete(staged)
        named = full_disk(exc, scratch)  # the local staging copy of ``uri``
        if named is not exc:
            raise named from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def local_copy(uri: str, spark=None, names=None, what: str | None = None):
    """Yield a local path holding ``uri``'s content: the path itself for a local URI (no copy),
    else a temporary copy (removed on exit). ``names``: copy only these entries of the directory
    ``uri`` (absent ones are skipped). Raises ``FileNotFoundError`` when ``uri`` does not exist."""
    backend = filesystem(uri, spark, what)
    if backend is _LOCAL:
        yield local_path(uri)
        return
    scratch = tempfile.mkdtemp(prefix="softmax_spark-copy-")
    try:
        target = os.path.join(scratch, basename(uri) or "root")
        if names is None:
            backend.download(uri, target)
        else:
            if not backend.is_dir(uri):
                raise FileNotFoundError(f"{uri} does not exist or is not a directory")
            os.makedirs(target)
            present = set(backend.list_names(uri))
            for name in names:
                if name in present:
                    backend.download(join(uri, name), os.path.join(target, name))
        yield target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
