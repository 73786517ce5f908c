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
the rename runs; the name never appears before every file has been uploaded.) Replacing an
existing target, and a crash at any instant of it: ``softmax_spark.io.publish``.

Hidden names (a leading ``.``) keep temporaries out of Spark's and Hadoop's listings: Spark skips
files and directories whose names start with ``.`` or ``_`` when it reads a directory.

The parts: ``uris`` (schemes, joining, hidden names), ``local_storage``, ``hadoop_storage``,
``publish`` (the renames); this module picks the backend and is the front door for the rest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from softmax_spark.core.errors import InputError
from softmax_spark.io import publish
from softmax_spark.io.hadoop_storage import HadoopStorage
from softmax_spark.io.local_storage import LOCAL, LocalStorage, full_disk, fsync_tree
from softmax_spark.io.uris import basename, hidden_sibling, is_local, join, local_path, parent, scheme

# the URI helpers and both backends are re-exported: callers reach storage through this module
__all__ = [
    "is_local", "local_path", "filesystem", "check_reachable", "check_writable",
    "exists", "is_dir", "read_bytes", "write_bytes", "list_names", "delete", "makedirs", "rename",
    "qualify", "join", "basename", "hidden_sibling", "atomic_directory", "local_copy",
    "scheme", "full_disk", "LocalStorage", "HadoopStorage",
]


# ---------------------------------------------------------------------------------------------
# choosing the backend
# ---------------------------------------------------------------------------------------------
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
        return LOCAL
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
# atomic directories and local copies
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_directory(uri: str, overwrite: bool = False, what: str = "output", spark=None):
    """Yield a local temporary directory to fill; on success it replaces ``uri`` atomically
    (module docstring). On an exception every temporary is removed and ``uri`` is left as it was.

    Raises ``InputError`` when ``uri`` exists and not ``overwrite``, or cannot be reached."""
    backend = filesystem(uri, spark, what)
    with contextlib.suppress(OSError):  # a previous replacement killed half-way (``recover``)
        publish.recover(uri, backend=backend)
    if backend.exists(uri) and not overwrite:
        raise InputError(f"{what} {uri} already exists; pass --overwrite to replace it")
    folder = parent(uri)
    backend.makedirs(folder)
    if backend is LOCAL:
        # a sibling on the same filesystem: the rename is the only step left after writing
        staged = local_path(hidden_sibling(local_path(uri), "tmp"))
        os.mkdir(staged, 0o700)
        os.chmod(staged, 0o700)  # private whatever the umask (tempfile.mkdtemp's mode, as for remote targets)
        try:
            yield staged
            fsync_tree(staged)
            publish.publish(staged, local_path(uri), backend=backend, overwrite=overwrite, what=what)
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
        publish.publish(staged, uri, backend=backend, overwrite=overwrite, what=what)
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
    if backend is LOCAL:
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
