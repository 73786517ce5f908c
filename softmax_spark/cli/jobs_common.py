"""What every job's ``main`` shares: parse, check what needs no data, build the session, ship
the package, run, map errors to exit codes (0 success, 2 bad input or configuration, 1 anything
else) with one last line ``error: <cause>``.

Fail fast: ``local_path``, ``check_input_exists``, ``check_not_exists`` and
``check_parquet_columns`` answer before any SparkSession starts (a local path or ``file:`` URI;
a misspelt column from the Parquet footers, read with pyarrow); ``check_input_reachable`` asks
Hadoop's FileSystem, right after the session starts, about a path only Spark can reach.

Say the real cause: ``describe_failure`` walks an exception raised inside Spark (Python
``__cause__`` / ``__context__``, ``Py4JJavaError.java_exception``, a captured exception's Java
origin, and each Java ``getCause()``) and maps Spark's error conditions to one line each.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback
import zipfile
from urllib.parse import urlparse

from softmax_spark.core.errors import DivergenceError, InputError, NoProgressError

__all__ = ["run_job", "ship_package", "local_path", "check_input_exists", "check_not_exists",
           "check_parquet_columns", "check_input_reachable", "describe_failure"]

log = logging.getLogger("softmax_spark")


_SHIPPED: dict = {}  # applicationId → the zip shipped to that SparkContext


def ship_package(spark) -> str:
    """Zip this ``softmax_spark`` package (its ``.py`` files, no ``__pycache__``) and
    ``addPyFile`` it, so executors whose Python lacks the package (a plain cluster whose Python
    has numpy, pyarrow and threadpoolctl; scipy, yaml, pandas and matplotlib are used on the
    driver only) can run our task code. Once per SparkContext; the zip is removed at exit.

    Returns the zip's local path."""
    from softmax_spark.spark.connect_backend import is_connect

    connect = is_connect(spark)  # Spark Connect: no SparkContext; the session's artifacts instead
    key = spark.session_id if connect else spark.sparkContext.applicationId
    if key in _SHIPPED:
        return _SHIPPED[key]
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # softmax_spark/
    build = tempfile.mkdtemp(prefix="softmax_spark-pyfiles-")
    atexit.register(shutil.rmtree, build, True)
    archive = os.path.join(build, "softmax_spark.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for directory, subdirs, files in os.walk(package_dir):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in sorted(files):
                if name.endswith(".py"):
                    full = os.path.join(directory, name)
                    zf.write(full, os.path.join("softmax_spark", os.path.relpath(full, package_dir)))
    if connect:
        spark.addArtifacts(archive, pyfile=True)
    else:
        spark.sparkContext.addPyFile(archive)
    _SHIPPED[key] = archive
    return archive


def _preload(modules) -> "threading.Thread | None":
    """Import ``modules`` in a background thread (numpy, scipy and our solvers take ~1 s of CPU)
    while the main thread waits on the JVM starting the SparkContext; joined before ``run``.
    An import that fails here is ignored: ``run`` imports it again and reports it."""
    if not modules:
        return None
    import importlib
    import threading

    def load():
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - run() imports it again and says why
                pass

    thread = threading.Thread(target=load, name="softmax_spark-preload", daemon=True)
    thread.start()
    return thread


def warm_workers(spark, modules) -> "threading.Thread | None":
    """Import ``modules`` in the executors' Python workers from a background job, one task per
    core (``defaultParallelism``), while the driver goes on with its own set-up (checks, the
    input's footers and labels). The first real job's tasks would otherwise start cold — the
    Python daemon, a fork per core and each worker's imports (numpy, pyarrow, our task code):
    0.98 s for a trivial first job against 0.07 s for the next (local[2]). Reused workers keep
    their imports, and the first job's tasks queue behind these if they come early; with the
    input read from its footers (milliseconds) that is the usual case, so the gain is whatever
    set-up the driver still has: for a local Parquet input none measured (dense 1M × 64 and the
    small 2,000-row set, 2–3 runs each); when Spark itself reads the input it can overlap the
    SparkSession's start-up (≈ 2 s, ``session.LazySession``), not measured. Nothing on
    Spark Connect (no SparkContext); a failure is ignored (the real job meets and reports it)."""
    from softmax_spark.spark.connect_backend import is_connect

    if not modules or is_connect(spark):
        return None
    import threading

    from softmax_spark.spark.distributed import import_task

    sc = spark.sparkContext

    def warm():
        try:
            n = max(1, sc.defaultParallelism)
            sc.setJobDescription("softmax_spark: start the Python workers")
            sc.parallelize(range(n), n).foreachPartition(import_task(modules))
        except Exception:  # noqa: BLE001 - an optimisation only; the real job reports failures
            log.debug("warming the Python workers failed", exc_info=True)

    thread = threading.Thread(target=warm, name="softmax_spark-warm-workers", daemon=True)
    thread.start()
    return thread


def run_job(app_name: str, config_cls, run, argv=None, description: str = "", spark=None,
            precheck=None, postcheck=None, preload=(), worker_modules=()) -> int:
    """Parse ``argv`` into ``config_cls``; ``precheck(cfg)`` when given (checks that need no
    Spark, before any session starts); ``postcheck(spark, cfg)`` when given (checks only Spark
    can answer, right after the SparkContext starts; the SparkSession itself starts on first
    use); then ``run(spark, cfg)``. A given ``spark``
    session (tests, notebooks), or one already running in this process, is used and left
    running; otherwise one is built, and stopped before the error line so that line stays the
    last one. A failure inside Spark that ``describe_failure`` recognises ends with its one line
    and no stack trace (exit 2 for bad input, 1 otherwise). ``preload``: module names that
    ``run`` will import, imported in the background while the session starts.
    ``worker_modules``: what ``run``'s tasks import, imported in the executors' Python workers
    by a background job right after a session built here starts (``warm_workers``)."""
    from softmax_spark.fit.config import parse_config

    from softmax_spark.fit.loop import use_console

    use_console()  # our INFO lines on stdout as ``softmax_spark: …``; no root handler (no duplicates)
    # py4j logs "Closing down clientserver connection" at exit, after the job's last line
    logging.getLogger("py4j").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    session = None  # the session this job built: it stops it
    warmer = None  # the background warm-up job's thread (warm_workers)
    try:
        try:
            cfg = parse_config(config_cls, argv, prog=app_name, description=description)
            if precheck is not None:
                precheck(cfg)
            loader = None
            if spark is None:
                from pyspark import SparkContext
                from pyspark.sql import SparkSession  # noqa: F401 - before the preload thread starts

                from softmax_spark.spark.session import build_session

                loader = _preload(preload)
                owns_context = SparkContext._active_spark_context is None
                spark = build_session(app_name, lazy=True)  # the SparkSession starts on first use
                session = spark if owns_context else None
                ship_package(spark)
                warmer = warm_workers(spark, worker_modules)
            if postcheck is not None:
                postcheck(spark, cfg)
            if loader is not None:
                loader.join()
            code = run(spark, cfg)
            if session is not None and code == 0 and _jvm_stops_context():
                from softmax_spark.spark.connect_backend import is_connect  # numpy and the kernels: not before the run

                if not is_connect(session):  # a Connect client has no JVM of its own to stop it
                    _leave_stop_to_jvm(session)
                    session = None
            return code
        finally:
            if session is not None and warmer is not None:
                warmer.join(30)  # a failure right after the start: no warm-up task killed by the stop
            _stop(session)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except DivergenceError as exc:  # not a bug: the message says what to change, no traceback
        print(f"error: training diverged: {exc}", file=sys.stderr, flush=True)
        return 1
    except NoProgressError as exc:  # likewise: the solver says why it could not start
        print(f"error: training made no progress: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the job's last line must say what failed
        try:
            known = describe_failure(exc)
        except Exception:  # noqa: BLE001 - e.g. the JVM behind the exception is gone
            known = None
        if known is not None:  # Spark's own log above already holds the stack traces
            code, message = known
            print(f"error: {message}", file=sys.stderr, flush=True)
            return code
        traceback.print_exc()
        try:
            last = _last_resort(exc)
        except Exception:  # noqa: BLE001
            last = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        print(f"error: {last}", file=sys.stderr, flush=True)
        return 1


def _jvm_stops_context() -> bool:
    """Whether this process runs under ``spark-submit``, whose JVM stops the SparkContext in its
    shutdown hook once the Python driver exits (as any PySpark script without ``stop()``).

    A finished job then leaves the stop to that hook: PySpark's ``SparkSession.stop()`` waits for
    its accumulator server's polling thread (1 s poll) and took 0.97 s of the job's wall time
    (median of 2, local[2]), the hook 0.1 s; ``_leave_stop_to_jvm`` removes the one file the
    hook leaves. A failed job (an exception or a non-zero code) still stops first, so that its
    error line stays the last one."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _leave_stop_to_jvm(session) -> None:
    """What ``SparkSession.stop()`` would do that the JVM's shutdown hook does not: remove the
    Unix socket file of PySpark's accumulator server (``spark.python.unix.domain.socket.enabled``),
    here at this process's exit. Without it every job would leave a ``.<uuid>.sock`` behind in
    ``spark.python.unix.domain.socket.dir`` (default: java.io.tmpdir)."""
    server = getattr(session.sparkContext, "_accumulatorServer", None)  # pyspark's own attribute
    path = getattr(server, "server_address", None)
    if isinstance(path, str) and path:  # a TCP server's address is a tuple: nothing to remove

        def remove():
            try:
                os.remove(path)
            except OSError:
                pass

        atexit.register(remove)


def _stop(session) -> None:
    if session is not None:
        try:
            session.stop()
        except Exception:  # noqa: BLE001 - the job's outcome is already decided
            logging.getLogger("softmax_spark").warning("stopping the Spark session failed", exc_info=True)


# ---------------------------------------------------------------------------------------------
# before the session: local paths and Parquet footers
# ---------------------------------------------------------------------------------------------
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_GLOB_CHARS = set("*?[{")


def local_path(path: str) -> str | None:
    """The local filesystem path that ``path`` names, or None when only Spark can answer.

    A ``file:`` URI (``file:/p``, ``file:///p``, ``file://localhost/p``) is local. A plain path
    is local unless Hadoop's default filesystem (``fs.defaultFS``) is another one — Spark
    resolves plain paths against it (e.g. HDFS on a YARN cluster). Any other scheme (hdfs://,
    s3a://, viewfs://, …) gives None.
    """
    match = _SCHEME.match(path)
    if match is None:
        return path if _default_fs_is_local() else None
    if match.group(1).lower() != "file":
        return None
    parsed = urlparse(path)
    if parsed.netloc not in ("", "localhost"):
        return None
    return parsed.path or "/"


def _default_fs_is_local() -> bool:
    """Whether plain paths are local files: fs.defaultFS unset or file:. Under spark-submit the
    driver's JVM is already running (its SparkContext is not): ask its Hadoop configuration and
    system properties. As plain ``python``, read the configuration files the JVM would."""
    fs = None
    port = os.environ.get("PYSPARK_GATEWAY_PORT")
    if port and _DEFAULT_FS.get(port) is not None:  # a JVM's configuration does not change: ask once
        return _DEFAULT_FS[port]
    if port:
        try:
            from pyspark import SparkContext

            SparkContext._ensure_initialized()  # connects to spark-submit's JVM; starts no context
            jvm = SparkContext._jvm
            fs = (jvm.java.lang.System.getProperty("spark.hadoop.fs.defaultFS")
                  or jvm.org.apache.hadoop.conf.Configuration().get("fs.defaultFS"))
        except Exception:  # noqa: BLE001 - unknown: let Spark answer
            return False
        _DEFAULT_FS[port] = fs is None or str(fs).lower().startswith("file:")
        return _DEFAULT_FS[port]
    fs = _configured_default_fs()
    return fs is None or str(fs).lower().startswith("file:")


_DEFAULT_FS: dict = {}  # spark-submit's gateway port → whether plain paths are local (each call costs JVM round trips)


def _configured_default_fs() -> str | None:
    """fs.defaultFS from spark-defaults.conf (spark.hadoop.fs.defaultFS) or a core-site.xml."""
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None)
    if conf_dir and os.path.isfile(os.path.join(conf_dir, "spark-defaults.conf")):
        with open(os.path.join(conf_dir, "spark-defaults.conf")) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) == 2 and parts[0] == "spark.hadoop.fs.defaultFS":
                    return parts[1].strip()
    for env in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        site = os.path.join(os.environ.get(env) or "/nonexistent", "core-site.xml")
        if os.path.isfile(site):
            import xml.etree.ElementTree as ET

            try:
                for prop in ET.parse(site).getroot().iter("property"):
                    if (prop.findtext("name") or "").strip() == "fs.defaultFS":
                        return (prop.findtext("value") or "").strip()
            except ET.ParseError:
                return "unknown:"  # let Spark read it
    return None


def check_input_exists(path: str, what: str = "input path") -> str | None:
    """``InputError("<what> <path> does not exist")`` when ``path`` is local and matches nothing
    (a glob: no file matches). Returns the local path (None: only Spark can tell)."""
    local = local_path(path)
    if local is None:
        return None
    exists = bool(glob.glob(local)) if _GLOB_CHARS & set(local) else os.path.exists(local)
    if not exists:
        raise InputError(f"{what} {path} does not exist")
    return local


def check_not_exists(path: str | None, overwrite: bool, what: str) -> None:
    """``InputError`` when the local ``path`` exists and ``overwrite`` is false (the same line
    ``atomic.check_writable`` gives after the session starts)."""
    local = local_path(path) if path else None
    if local is not None and os.path.exists(local) and not overwrite:
        raise InputError(f"{what} {path} already exists; pass --overwrite to replace it")


def check_parquet_columns(path: str, names, what: str = "input") -> None:
    """Each of ``names`` is a column of the local Parquet data at ``path`` (file or directory,
    hive partition columns included), else ``InputError("column 'x' not found; did you mean
    'y'? the input has columns: …")``. Reads the footers only (pyarrow). Silent when ``path`` is
    not local, is a glob, or is not something pyarrow reads as Parquet: Spark will say."""
    local = local_path(path)
    if local is None or _GLOB_CHARS & set(local) or not os.path.exists(local):
        return
    try:
        import pyarrow.dataset as ds

        dataset = ds.dataset(local, format="parquet", partitioning="hive")
        columns = list(dataset.schema.names)  # the first file's columns, as Spark's schema
    except Exception:  # noqa: BLE001 - not readable here: Spark's read reports it
        return
    missing = [name for name in names if name and name not in columns]
    if missing and len(dataset.files) > 1:
        # Spark takes its schema from one file: a column refused here must be in no file at all
        import pyarrow.parquet as pq

        for file in dataset.files:
            try:
                columns += [c for c in pq.read_schema(file).names if c not in columns]
            except Exception:  # noqa: BLE001
                return
        missing = [name for name in missing if name not in columns]
    if missing:
        from softmax_spark.fit.config import suggest

        name = missing[0]
        by_lower = [c for c in columns if c.lower() == name.lower()]
        hint = by_lower[0] if by_lower else suggest(name, columns)
        hint = f" did you mean '{hint}'?" if hint else ""
        raise InputError(f"column '{name}' not found;{hint} the {what} has columns: {', '.join(columns)}")


# ---------------------------------------------------------------------------------------------
# right after the session starts: paths only Spark can reach
# ---------------------------------------------------------------------------------------------
def check_input_reachable(spark, path: str, what: str = "input path") -> None:
    """For a path that is not local (hdfs://, s3a://, …): ask its Hadoop FileSystem (with the
    session's Hadoop configuration) whether it matches anything. One line instead of Spark's
    ``FileStreamSink`` warning with a Java stack. Local paths were checked before the session."""
    from softmax_spark.spark.connect_backend import is_connect

    if local_path(path) is not None or is_connect(spark):  # Spark Connect: no JVM here; Spark answers
        return
    context = spark.sparkContext
    jvm = context._jvm
    try:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        found = hadoop_path.getFileSystem(context._jsc.hadoopConfiguration()).globStatus(hadoop_path)
    except Exception as exc:  # noqa: BLE001 - say why in one line
        known = describe_failure(exc, path=path)
        raise InputError(known[1] if known else f"cannot reach {what} {path}: {_last_resort(exc)}") from None
    if found is None or len(found) == 0:
        raise InputError(f"{what} {path} does not exist")


# ---------------------------------------------------------------------------------------------
# failures raised inside Spark → one line
# ---------------------------------------------------------------------------------------------
def _java_chain(throwable, limit: int = 30) -> list[tuple[str, str | None, dict, str]]:
    """(class name, error condition, message parameters, message) of a Java throwable and of
    each of its causes."""
    chain = []
    while throwable is not None and len(chain) < limit:
        try:
            name = str(throwable.getClass().getName())
            message = str(throwable.getMessage() or "")
        except Exception:  # noqa: BLE001 - not a live Java object
            break
        condition, params = None, {}
        try:  # a SparkThrowable (Spark 4: getCondition; 3.x: getErrorClass)
            condition = throwable.getCondition()
        except Exception:  # noqa: BLE001
            try:
                condition = throwable.getErrorClass()
            except Exception:  # noqa: BLE001
                condition = None
        if condition:
            try:
                params = {str(k): str(v) for k, v in dict(throwable.getMessageParameters()).items()}
            except Exception:  # noqa: BLE001
                params = {}
        chain.append((name, str(condition) if condition else None, params, message))
        try:
            throwable = throwable.getCause()
        except Exception:  # noqa: BLE001
            break
    return chain


def _failure_chain(exc: BaseException) -> list[tuple[str, str | None, dict, str]]:
    """Every link of ``exc``: Python exceptions (``__cause__``, ``__context__``) and the Java
    throwables behind them, as (class name, condition, parameters, message)."""
    links, seen = [], set()
    stack = [exc]
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        java = getattr(current, "java_exception", None) or getattr(current, "_origin", None)
        condition = None
        if hasattr(current, "getCondition") and java is None:
            try:
                condition = current.getCondition()
            except Exception:  # noqa: BLE001
                condition = None
        text = str(getattr(current, "_desc", None) or "") if java is not None else str(current)
        if java is None or text:
            links.append((type(current).__name__, condition, {}, text))
        if java is not None:
            links.extend(_java_chain(java))
        stack += [current.__cause__, current.__context__]
        if isinstance(getattr(current, "_cause", None), BaseException):  # a captured exception's cause
            stack.append(current._cause)
    return links


_EXECUTOR_LOST = re.compile(r"ExecutorLostFailure \(executor (\S+) exited[^)]*\)(?: Reason: ([^\n]*))?")
_TASK_FAILED = re.compile(r"Task (\S+) in stage (\S+) failed (\d+) times")
_OOM = re.compile(r"(java\.lang\.OutOfMemoryError[^\n]*|MemoryError[^\n]*|Container killed by \S+ for exceeding "
                  r"memory limits[^\n]*|exit code 137[^\n]*OOM[^\n]*)")
_PERMISSION = re.compile(r"(AccessDeniedException|AccessControlException|Permission denied|"
                         r"INSUFFICIENT_PERMISSIONS|403 Forbidden|Access Denied)", re.IGNORECASE)
_MISMATCH_TEXT = re.compile(r"column: \[([^\]]*)\], physicalType: (\S+), logicalType: ([^\s,]+)")
_READING_FILE = re.compile(r"reading file (\S+?)\.?(?:\s|$)")
_NO_FILESYSTEM = re.compile(r'No FileSystem for scheme "?([^"\s]+)"?')
# Python's OSError text ([Errno 28] … : 'path'); Java's IOException says "No space left on device"
_NO_SPACE = re.compile(r"No space left on device(?:: '([^']*)')?", re.IGNORECASE)


def describe_failure(exc: BaseException, path: str | None = None) -> tuple[int, str] | None:
    """``(exit code, one line)`` for a failure raised inside Spark whose cause is known, else None.

    Recognised (the error condition or Java class anywhere in the chain):
    - ``FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH`` / ``SchemaColumnConvertNotSupportedException``
      (a column's type differs between the input's files) → 2, naming the file, column and types;
    - ``PATH_NOT_FOUND`` → 2; ``FAILED_READ_FILE.FILE_NOT_EXIST`` (a file gone after Spark
      listed the input) → 2;
    - permission denied (``AccessDeniedException``, Hadoop's ``AccessControlException``,
      ``INSUFFICIENT_PERMISSIONS``, S3's 403) → 2; no FileSystem for a scheme → 2;
    - ``java.lang.OutOfMemoryError`` / Python ``MemoryError`` in a task, a container killed for
      its memory → 1;
    - ``ExecutorLostFailure`` (an executor died more often than spark.task.maxFailures allows) → 1;
    - a full disk (ENOSPC, "No space left on device", in a task or in the driver) → 1, naming the
      path the failed write named (``storage.full_disk``, the block writer name theirs).
    """
    chain = _failure_chain(exc)
    if not chain:
        return None
    text = "\n".join(message for _, _, _, message in chain)
    conditions = {condition: params for _, condition, params, _ in chain if condition}
    classes = {name for name, _, _, _ in chain}

    def condition(suffix):
        return next(((c, p) for c, p in conditions.items() if c == suffix or c.endswith("." + suffix)), None)

    mismatch = condition("PARQUET_COLUMN_DATA_TYPE_MISMATCH")
    if mismatch or "SchemaColumnConvertNotSupportedException" in text or any(
            n.endswith("SchemaColumnConvertNotSupportedException") for n in classes):
        params = mismatch[1] if mismatch else {}
        found = _MISMATCH_TEXT.search(text)
        column = params.get("column") or (found.group(1) if found else "?")
        column = column.strip("[]` ")
        actual = params.get("actualType") or (found.group(2) if found else "another type")
        expected = params.get("expectedType") or (found.group(3) if found else "?")
        file = params.get("path") or (_READING_FILE.search(text).group(1) if _READING_FILE.search(text) else None)
        where = f"input file {file}" if file else "an input file"
        return 2, (f"{where}: column '{column}' is Parquet {actual} there, but {expected} in the input's schema "
                   "(taken from another file): the input's files disagree on this column's type; "
                   "rewrite them with one type")
    gone = condition("FILE_NOT_EXIST")
    if gone or "underlying files have been updated" in text:
        file = (gone[1].get("path") if gone else None) or _first(re.search(r"File (\S+) does not exist", text)) or path
        return 2, (f"input file {file} no longer exists: it was deleted or replaced after Spark listed the input; "
                   "rerun once the input is complete")
    missing = condition("PATH_NOT_FOUND")
    if missing:
        where = missing[1].get("path") or path or _first(re.search(r"Path does not exist: (\S+?)\.?(?:\s|$)", text))
        return 2, f"input path {where} does not exist"
    denied = _PERMISSION.search(text) or condition("INSUFFICIENT_PERMISSIONS")
    if denied or any(n.endswith(("AccessDeniedException", "AccessControlException")) for n in classes):
        detail = next((m for n, _, _, m in reversed(chain) if _PERMISSION.search(n + " " + m)), "")
        detail = detail.strip().splitlines()[0] if detail.strip() else (path or "")
        return 2, f"permission denied: {detail}"
    full = [m for m in _NO_SPACE.finditer(text)]
    if full:
        where = next((m.group(1) for m in full if m.group(1)), None) or path
        return 1, ("no space left on device" + (f": {where}" if where else "")
                   + "; free space there, or point the job elsewhere (spark.local.dir for the executors' block "
                   "files, --model-dir / --output for results)")
    no_fs = _NO_FILESYSTEM.search(text)
    if no_fs:
        return 2, (f"no Hadoop FileSystem for scheme '{no_fs.group(1)}'" + (f" (path {path})" if path else "")
                   + ": a typo in the URI, or its connector is not on Spark's classpath")
    task = _TASK_FAILED.search(text)
    attempts = f" (task {task.group(1)} in stage {task.group(2)} failed {task.group(3)} times)" if task else ""
    oom = _OOM.search(text)
    if oom:
        return 1, (f"a task ran out of memory{attempts}: {oom.group(1).strip()}; give the executors more memory "
                   "(spark.executor.memory, spark.executor.memoryOverhead for Python) or spread the rows "
                   "over more partitions (--num-partitions)")
    lost = _EXECUTOR_LOST.search(text)
    if lost:
        reason = (lost.group(2) or "").strip() or "no reason given"
        return 1, (f"executor lost{attempts}: executor {lost.group(1)} exited ({reason}); Spark gave up after "
                   "spark.task.maxFailures attempts — see that executor's log; exit code 137 means it was "
                   "killed (often for memory)")
    return None


def _first(match) -> str | None:
    return match.group(1) if match else None


def _last_resort(exc: BaseException) -> str:
    """``Class: first line`` of the innermost message that says something (a Py4JJavaError's own
    text is only "An error occurred while calling o108.parquet")."""
    for name, _, _, message in reversed(_failure_chain(exc)):
        first = message.strip().splitlines()[0] if message.strip() else ""
        if first and not first.startswith("An error occurred while calling"):
            return f"{name.rsplit('.', 1)[-1]}: {first}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
