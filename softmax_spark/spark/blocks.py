"""Block descriptors: where one partition's executor-local block files live and what they hold,
and the ingest task bodies that write them and answer with one descriptor row each.

A descriptor is small and pickled to every task of a pass; ``local()`` finds its files on the
executor running the task or, for the direct Parquet path, writes them again there from the
input's row-group slices it carries (``input_files``) — never from another version of the input.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from softmax_spark.spark.block_writer import _ALL_SUFFIXES, _FILES, _convert_block_files, _write_blocks
from softmax_spark.spark.input_files import _changed_files, _read_units
from softmax_spark.spark.run_dir import _local_dir, _remove_run_dir

__all__ = ["BlockDescriptor"]


@dataclass(frozen=True)
class BlockDescriptor:
    """Where one partition's blocks live and what they hold (small; pickled to tasks).

    ``format`` "dense": ``<path>.X`` holds the rows, (n_rows, n_features) C-order in ``dtype``;
    "csr": ``<path>.indptr`` (n_rows + 1,), ``<path>.indices`` (nnz,) — both int32, or both
    int64 when nnz ≥ 2³¹ — and ``<path>.values`` (nnz,) in ``dtype``. Both formats store
    ``<path>.y.npy`` (class indices, in ``label_dtype``: the smallest unsigned type holding C − 1,
    ``label_dtype_for``) and, with weights, ``<path>.w.npy``.
    """

    partition: int
    host: str
    path: str  # file prefix, see above
    n_rows: int
    n_features: int
    dtype: str
    has_weights: bool
    format: str = "dense"
    nnz: int = 0  # stored non-zeros (dense blocks: counted non-zeros)
    label_dtype: str = "int64"  # of the .y.npy file
    # direct Parquet ingest only: (plan, columns, units, stamps), what any executor needs to write
    # this partition's blocks again from the input (``local``), with the stamps of its files at
    # ingest (``input_stamps``); None for rows that came from Spark
    source: tuple | None = field(default=None, compare=False, repr=False)

    def exists(self) -> bool:
        return all(os.path.exists(self.path + suffix) for suffix in _FILES[self.format] + (".y.npy",))

    def _path_here(self) -> str:
        """The same ``softmax_spark-<run>/part-<n>`` name in this executor's local directory."""
        run_dir, name = os.path.split(self.path)
        return os.path.join(_local_dir(), os.path.basename(run_dir), name)

    def local(self) -> "BlockDescriptor | None":
        """This partition's blocks as readable by the running task: its own files when they are
        here, else a copy in this executor's local directory — written now from the input's
        row-group slices when ``source`` is known (a task that runs on another machine than its
        files, or after they were deleted) — else None: the driver must rebuild."""
        if self.exists():
            return self
        here = replace(self, path=self._path_here())
        if here.path != self.path and here.exists():
            return here
        if self.source is None:
            return None
        plan, columns, units, stamps = self.source
        if _changed_files(stamps):  # never rows of another file version: the driver reports it
            return None
        try:
            record = _write_blocks(_read_units(units, columns), plan, self.partition)
        except Exception:  # the input moved or went: let the driver rebuild (and report) it
            return None
        if (record is None or record["path"] != here.path or record["n_rows"] != self.n_rows
                or record["format"] != self.format):
            return None
        return here

    def open(self):
        """(X, y_index of shape (n_rows,), weights of shape (n_rows,) or None).

        X: for "dense" an ndarray memory-mapped, shape (n_rows, n_features); for "csr" a
        ``scipy.sparse.csr_matrix`` whose three arrays are the memory-mapped files (no copy)."""
        if self.format == "csr":
            import scipy.sparse as sp

            index_dtype = np.int32 if self.nnz < 2**31 else np.int64
            indptr = np.memmap(self.path + ".indptr", dtype=index_dtype, mode="r", shape=(self.n_rows + 1,))
            if self.nnz:
                indices = np.memmap(self.path + ".indices", dtype=index_dtype, mode="r", shape=(self.nnz,))
                values = np.memmap(self.path + ".values", dtype=self.dtype, mode="r", shape=(self.nnz,))
            else:  # np.memmap refuses an empty file
                indices, values = np.zeros(0, index_dtype), np.zeros(0, self.dtype)
            X = sp.csr_matrix((values, indices, indptr), shape=(self.n_rows, self.n_features), copy=False)
        else:
            X = np.memmap(self.path + ".X", dtype=self.dtype, mode="r", shape=(self.n_rows, self.n_features))
        y_index = np.load(self.path + ".y.npy", allow_pickle=False)
        w = np.load(self.path + ".w.npy", allow_pickle=False) if self.has_weights else None
        return X, y_index, w

    def cached_bytes(self) -> int:
        """Bytes of this partition's block files."""
        itemsize = np.dtype(self.dtype).itemsize
        if self.format == "csr":
            index_size = 4 if self.nnz < 2**31 else 8
            x_bytes = (self.n_rows + 1) * index_size + self.nnz * (index_size + itemsize)
        else:
            x_bytes = self.n_rows * self.n_features * itemsize
        y_bytes = self.n_rows * np.dtype(self.label_dtype).itemsize
        return x_bytes + y_bytes + (self.n_rows * 8 if self.has_weights else 0)

    def remove(self) -> None:
        """Delete this partition's files and, on the executor running this, the whole run
        directory (copies ``local`` wrote for other partitions included)."""
        for suffix in _ALL_SUFFIXES:
            try:
                os.remove(self.path + suffix)
            except FileNotFoundError:
                pass
        run_dir = os.path.dirname(self._path_here())
        if os.path.basename(run_dir).startswith("softmax_spark-"):
            _remove_run_dir(run_dir)  # copies for other partitions and the owner record too


_DESCRIPTOR_SCHEMA = (
    "partition int, host string, path string, n_rows long, n_features int, dtype string, "
    "has_weights boolean, format string, nnz long, class_counts array<long>, "
    "weight_sum double, col_mean array<double>, col_m2 array<double>, label_dtype string"
)


def _descriptor_arrow_schema():
    import pyarrow as pa

    return pa.schema([
        ("partition", pa.int32()), ("host", pa.string()), ("path", pa.string()), ("n_rows", pa.int64()),
        ("n_features", pa.int32()), ("dtype", pa.string()), ("has_weights", pa.bool_()),
        ("format", pa.string()), ("nnz", pa.int64()), ("class_counts", pa.list_(pa.int64())),
        ("weight_sum", pa.float64()), ("col_mean", pa.list_(pa.float64())), ("col_m2", pa.list_(pa.float64())),
        ("label_dtype", pa.string()),
    ])


def _convert_fn(target: str, plan):
    """Task body of the conversion job: each (descriptor, record) pair's block files rewritten in
    ``target`` in place (temp files, then rename; the old format's files removed). The descriptor's
    ``source`` plan asks for ``target``, so a copy ``BlockDescriptor.local`` writes is in the
    run's format too. A block whose files are gone keeps them gone: the pass that needs it has the
    driver rebuild (``IngestedData.rebuild``, which applies the same run rule)."""

    def convert(pair):
        d, record = pair
        source = (plan,) + tuple(d.source[1:]) if d.source is not None else None
        new = replace(d, format=target, source=source)
        if d.format == target:
            return new, record
        here = d.local() if not (new.exists() and not d.exists()) else None  # a re-run finds it done
        nnz = d.nnz
        if here is not None:
            tmp = f"{here.path}.convert-{uuid.uuid4().hex[:8]}"
            try:
                nnz = _convert_block_files(here.path, tmp, here.format, target, d.n_rows, d.n_features, d.dtype,
                                           d.nnz)
                for suffix in _FILES[target]:  # rename last, as the ingest tasks publish
                    os.replace(tmp + suffix, here.path + suffix)
            finally:
                for suffix in _FILES[target]:
                    if os.path.exists(tmp + suffix):
                        os.remove(tmp + suffix)
            for suffix in _FILES[d.format]:
                try:
                    os.remove(here.path + suffix)
                except FileNotFoundError:
                    pass
        return replace(new, nnz=nnz), dict(record, format=target, nnz=nnz)

    return convert


def _arrow_ingest_fn(plan):
    """``mapInArrow`` body: Spark's Arrow batches → block files → one descriptor row."""

    def ingest_partition(batches):
        import pyarrow as pa
        from pyspark import TaskContext

        ctx = TaskContext.get()
        record = _write_blocks(batches, plan, ctx.partitionId() if ctx else 0)
        if record is not None:
            row = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in record.items()}
            yield pa.RecordBatch.from_pylist([row], schema=_descriptor_arrow_schema())

    return ingest_partition


def _file_ingest_fn(plan, columns, file_stamps):
    """Task body of the direct path: read this partition's Parquet row-group slices with
    pyarrow (no JVM ↔ Python copy), write the blocks, return (descriptor, record)."""

    def ingest_partition(index, unit_lists):
        units = [unit for unit_list in unit_lists for unit in unit_list]
        record = _write_blocks(_read_units(units, columns), plan, index)
        if record is not None:
            mine = {unit[0] for unit in units}
            stamps = {uri: stamp for uri, stamp in file_stamps.items() if uri in mine}
            yield replace(_to_descriptor(record), source=(plan, columns, units, stamps)), record

    return ingest_partition


def _stored_format(pair) -> tuple:
    d = pair[0]
    return d.partition, d.format, d.nnz


def _first(pair):
    return pair[0]


def _split_record(row) -> tuple:
    record = row.asDict()
    for key in ("col_mean", "col_m2", "class_counts"):
        record[key] = np.asarray(record[key])
    return _to_descriptor(record), record


def _to_descriptor(record: dict) -> BlockDescriptor:
    return BlockDescriptor(
        record["partition"], record["host"], record["path"], record["n_rows"],
        record["n_features"], record["dtype"], record["has_weights"], record["format"], record["nnz"],
        record.get("label_dtype") or "int64",
    )
