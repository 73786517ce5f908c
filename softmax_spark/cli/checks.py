"""The jobs' fail-fast checks: before any SparkSession starts (a local path or ``file:`` URI; a
misspelt column from the Parquet footers, read with pyarrow), and right after it starts (a path
only Spark can reach, asked of Hadoop's FileSystem). Each raises ``InputError`` with one line.
"""

from __future__ import annotations

import glob
import os

from softmax_spark.cli.failures import _last_resort, describe_failure
from softmax_spark.core.errors import InputError
from softmax_spark.io.driver_paths import GLOB_CHARS, spark_local_path
from softmax_spark.spark.backend import backend_for

__all__ = ["check_input_exists", "check_not_exists", "check_parquet_columns", "check_input_reachable"]


def check_input_exists(path: str, what: str = "input path") -> str | None:
    """``InputError("<what> <path> does not exist")`` when ``path`` is local and matches nothing
    (a glob: no file matches). Returns the local path (None: only Spark can tell)."""
    local = spark_local_path(path)
    if local is None:
        return None
    exists = bool(glob.glob(local)) if GLOB_CHARS & set(local) else os.path.exists(local)
    if not exists:
        raise InputError(f"{what} {path} does not exist")
    return local


def check_not_exists(path: str | None, overwrite: bool, what: str) -> None:
    """``InputError`` when the local ``path`` exists and ``overwrite`` is false (the same line
    ``atomic.check_writable`` gives after the session starts)."""
    local = spark_local_path(path) if path else None
    if local is not None and os.path.exists(local) and not overwrite:
        raise InputError(f"{what} {path} already exists; pass --overwrite to replace it")


def check_parquet_columns(path: str, names, what: str = "input") -> None:
    """Each of ``names`` is a column of the local Parquet data at ``path`` (file or directory,
    hive partition columns included), else ``InputError("column 'x' not found; did you mean
    'y'? the input has columns: …")``. Reads the footers only (pyarrow). Silent when ``path`` is
    not local, is a glob, or is not something pyarrow reads as Parquet: Spark will say."""
    local = spark_local_path(path)
    if local is None or GLOB_CHARS & set(local) or not os.path.exists(local):
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
    if spark_local_path(path) is not None or not backend_for(spark).has_jvm:  # Spark Connect: Spark answers
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
