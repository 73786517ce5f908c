"""A local Parquet input known from its footers: its files and Spark schema without Spark SQL.

    open_parquet(spark, path) -> ParquetFiles | DataFrame

Training by path needs the input's schema (to check the columns and choose the cache dtype),
its files (the ingest reads their row groups with pyarrow) and the labels (``labels`` reads them
from the files). Spark's first ``read.parquet`` in a process spends 1.7 s of JVM work on the
SQL engine's first analysis, and ``inputFiles()`` 0.2 s more (local[2], this machine), before
any of that. ``open_parquet`` answers from the footers instead (milliseconds) when ``path`` is a
local Parquet file or a flat directory of them that all have one schema, and otherwise returns
``ingest.read_parquet(spark, path)``.

``ParquetFiles`` answers ``schema``, ``columns``, ``sparkSession`` and ``inputFiles()`` itself;
any other attribute is the DataFrame's, read with Spark the first time it is needed (the
ingest's Spark-rows path, ``randomSplit`` for ``--validation-fraction``), so Spark keeps the
last word on anything the footers do not settle.

Which files: what Spark reads at a directory — its regular files, leaving out names that start
with ``_`` or ``.`` (``_SUCCESS``, checksum files) and files being copied — sorted, as ``file:``
URIs in Hadoop's form. A sub-directory (hive partitioning:
columns that live in directory names) or a glob leaves the path to Spark.

Which schema: Spark's own when the writer stored it (the footer key
``org.apache.spark.sql.parquet.row.metadata``, which keeps ml Vector columns as VectorUDT),
else the Arrow schema converted by PySpark (``from_arrow_schema``: list<double> →
array<double>, int32 → int, …). Files whose Arrow schemas differ, or a type PySpark does not
convert (unsigned integers), leave the path to Spark.
"""

from __future__ import annotations

import json
import os

from softmax_spark.io.driver_paths import GLOB_CHARS, spark_local_path
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.input_files import read_parquet

__all__ = ["ParquetFiles", "open_parquet", "local_parquet_files", "spark_schema"]

SPARK_ROW_METADATA_KEY = b"org.apache.spark.sql.parquet.row.metadata"


def local_parquet_files(path: str) -> list[str] | None:
    """Sorted ``file:`` URIs (percent-encoded, as ``DataFrame.inputFiles()`` gives them) of the
    Parquet data at local ``path`` (a file, or a directory without sub-directories), or None when
    only Spark can tell: not local, a glob, missing, empty, or holding a sub-directory."""
    local = spark_local_path(path)
    if local is None or GLOB_CHARS & set(local):
        return None
    try:
        if os.path.isfile(local):
            return None if _hidden(os.path.basename(local)) else [_file_uri(local)]
        if not os.path.isdir(local):
            return None
        files = []
        with os.scandir(local) as entries:
            for entry in entries:
                if _hidden(entry.name):
                    continue
                if not entry.is_file():
                    return None  # a sub-directory: hive partitioning, Spark's reading
                files.append(_file_uri(entry.path))
    except OSError:  # unreadable: Spark's read says what
        return None
    return sorted(files) or None


def _hidden(name: str) -> bool:
    """Names Spark's file listing leaves out: ``_…`` and ``.…`` (``_SUCCESS``, checksum files)
    and files still being copied (``….__COPYING__``, ``…._COPYING_``)."""
    return name.startswith(("_", ".")) or name.endswith(("._COPYING_", ".__COPYING__"))


def _file_uri(path: str) -> str:
    """``file://`` URI of a local path as Hadoop writes it (``DataFrame.inputFiles()``): absolute,
    symlinks kept, only what a URI path cannot hold percent-encoded (space, ``%``, non-ASCII)."""
    from urllib.parse import quote

    return "file://" + quote(os.path.abspath(path), safe="/!$&'()*+,;=:@~")


def spark_schema(files: list[str]):
    """The Spark ``StructType`` of local Parquet ``files`` (URIs) from their footers, or None
    when the files' Arrow schemas differ, a footer cannot be read, or a type has no Spark
    equivalent in PySpark's conversion."""
    import pyarrow.parquet as pq
    from pyarrow import fs
    from pyspark.sql.types import StructType

    schemas = []
    try:
        for uri in files:
            filesystem, path = fs.FileSystem.from_uri(uri)
            schemas.append(pq.read_schema(path, filesystem=filesystem))
    except Exception:  # noqa: BLE001 - not Parquet, unreadable: Spark's read says what
        return None
    first = schemas[0]
    if any(not s.equals(first, check_metadata=False) for s in schemas[1:]):
        return None
    stored = (first.metadata or {}).get(SPARK_ROW_METADATA_KEY)
    try:
        if stored is not None:
            return StructType.fromJson(json.loads(stored))
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(first.remove_metadata())
    except Exception:  # noqa: BLE001 - a type PySpark does not convert: Spark's read decides
        return None


class ParquetFiles:
    """A local Parquet input read by its files (see the module docstring).

    ``schema``: Spark ``StructType``; ``columns``: its names; ``inputFiles()``: the files as
    sorted ``file:`` URIs; ``sparkSession``: the session. Any other attribute: the DataFrame
    ``spark.read.parquet(path)``'s (read once, on first use)."""

    def __init__(self, spark, path: str, files: list[str], schema):
        self.sparkSession = spark
        self.path = path
        self.schema = schema
        self._files = list(files)
        self._df = None

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def inputFiles(self) -> list[str]:  # noqa: N802 - DataFrame's name
        return list(self._files)

    @property
    def dataframe(self):
        """``spark.read.parquet(path)`` (``ingest.read_parquet``'s errors), read once."""
        if self._df is None:
            self._df = read_parquet(self.sparkSession, self.path)
        return self._df

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_df", "_files", "schema", "sparkSession", "path", "dataframe"):
            raise AttributeError(name)  # not set yet (unpickling, copy): no Spark read for that
        return getattr(self.dataframe, name)

    def __repr__(self) -> str:
        return f"ParquetFiles({self.path!r}, {len(self._files)} files)"


def open_parquet(spark, path: str):
    """A ``ParquetFiles`` for a local Parquet input whose files and schema the footers settle,
    else ``ingest.read_parquet(spark, path)`` (a DataFrame; ``InputError`` for a missing path).
    Spark Connect sessions always get the DataFrame."""
    if backend_for(spark).has_rdd:
        files = local_parquet_files(path)
        schema = spark_schema(files) if files else None
        if schema is not None:
            return ParquetFiles(spark, path, files, schema)
    return read_parquet(spark, path)
