"""Failures raised inside Spark → one line each, and the job's exit code.

``describe_failure`` walks an exception raised inside Spark (Python ``__cause__`` /
``__context__``, ``Py4JJavaError.java_exception``, a captured exception's Java origin, and each
Java ``getCause()``) and maps Spark's error conditions to (exit code, one line);
``_last_resort`` is the line for anything else.
"""

from __future__ import annotations

import re

__all__ = ["describe_failure"]


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
