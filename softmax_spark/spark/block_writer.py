"""The ingest task's writer: validated Arrow batches → one partition's block files.

``_BlockWriter`` validates each batch (finite values, equal lengths, non-null and known labels),
appends it to the partition's files in the run directory (``run_dir``), keeps the moments
(``moments``) and publishes the files by renaming them last; ``_convert_block_files`` rewrites a
finished partition in the other block format; ``_write_blocks`` is the task-side entry point.
"""

from __future__ import annotations

import errno
import os
import socket
import uuid

import numpy as np

from softmax_spark.core.features import features_to_numpy, weights_to_numpy
from softmax_spark.core.labels import check_known
from softmax_spark.spark.moments import batch_moments, choose_block_format, merge_moments, sparse_batch_moments
from softmax_spark.spark.run_dir import _claim_run_dir, _local_dir, _private_file, _private_run_dir
from softmax_spark.spark.tasks import limit_task_blas_threads

__all__ = ["label_dtype_for", "CONVERT_ROWS"]

# a block's files: <path> + these suffixes (``blocks.BlockDescriptor`` documents the layout)
_FILES = {"dense": (".X",), "csr": (".indptr", ".indices", ".values")}


_ALL_SUFFIXES = (".X", ".indptr", ".indices", ".values", ".y.npy", ".w.npy")


def _scipy_available() -> bool:
    """Whether scipy is installed — asked without importing it (0.1–0.3 s in a cold worker):
    dense data never needs it, sparse data imports it where it builds a CSR block (an installed
    but broken scipy then fails that task with its ImportError rather than falling back to dense
    blocks)."""
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


class _BlockWriter:
    """Validates Arrow batches and appends them to one partition's block files, keeping the
    statistics; ``finish()`` publishes the files (rename last) and returns the record.

    ``block_format``: "dense", "csr", or "auto" — then the first batch's density picks the
    format (``choose_block_format``), and ``finish`` converts the files (chunk by chunk) if the
    whole partition's density picks the other one (``ingest`` then converts the partitions that
    differ from the run's choice, ``run_block_format``). CSR needs scipy in the task: without it
    "auto" stays dense. The rows are never held in memory beyond one batch."""

    def __init__(self, spec, label_col, weight_col, classes, dtype, run_id, n_features, block_format="auto", *,
                 partition, attempt):
        self.spec, self.label_col, self.weight_col = spec, label_col, weight_col
        self.classes, self.dtype, self.n_features = list(classes), np.dtype(dtype), n_features
        self.requested = block_format if (block_format != "auto" or _scipy_available()) else "dense"
        self.format = None  # the storage format, set by the first batch
        self.partition = partition
        self.where = f"partition {partition}"
        root = os.path.join(_local_dir(), f"softmax_spark-{run_id}")
        if _private_run_dir(root):  # the first task of this run on this executor
            _claim_run_dir(root)
        self.final = os.path.join(root, f"part-{partition:05d}")
        self.tmp = f"{self.final}.attempt-{attempt}-{uuid.uuid4().hex[:8]}"
        self.files = {}
        self.n_rows = 0
        self.nnz = 0
        self.row_nnz = []  # CSR: non-zeros per row, per batch
        self.class_counts = np.zeros(len(self.classes), dtype=np.int64)
        self.moments = None
        self.ys, self.ws = [], []

    def _open(self, fmt: str) -> None:
        self.format = fmt
        for suffix in _FILES[fmt][-2:] if fmt == "csr" else _FILES[fmt]:
            self.files[suffix] = _private_file(self.tmp + suffix)

    def add(self, batch) -> None:
        if batch.num_rows == 0:
            return
        sparse = "auto" if self.requested != "dense" else False
        X = features_to_numpy(batch, self.spec, self.dtype, self.where, self.n_rows, self.n_features, sparse=sparse)
        is_csr = not isinstance(X, np.ndarray)
        if self.n_features is None:
            self.n_features = X.shape[1]
        y = self._label_index(batch.column(self.label_col))
        w = None
        if self.weight_col:
            w = weights_to_numpy(batch.column(self.weight_col), self.weight_col, self.where, self.n_rows)
            self.ws.append(w)
        batch_nnz = X.nnz if is_csr else int(np.count_nonzero(X))
        if self.format is None:
            fmt = self.requested
            if fmt == "auto":
                fmt = choose_block_format(X.shape[0], X.shape[1], batch_nnz, self.dtype.itemsize)
            self._open(fmt)
        if is_csr:
            self.moments = merge_moments(self.moments, sparse_batch_moments(X, w))
        else:
            self.moments = merge_moments(self.moments, batch_moments(X.astype(np.float64, copy=False), w))
        self.class_counts += np.bincount(y, minlength=len(self.classes))
        self.ys.append(y.astype(np.int32))
        self._write_rows(X, is_csr)
        self.n_rows += X.shape[0]
        self.nnz += batch_nnz

    def _write_rows(self, X, is_csr: bool) -> None:
        if self.format == "dense":
            self.files[".X"].write(np.ascontiguousarray(X.toarray() if is_csr else X).data)
            return
        if is_csr:
            indices, values, counts = X.indices, X.data, np.diff(X.indptr)
        else:  # dense rows into CSR files (numpy only)
            rows, indices = np.nonzero(X)
            values, counts = X[rows, indices], np.bincount(rows, minlength=X.shape[0])
        self.files[".indices"].write(np.ascontiguousarray(indices, dtype=np.int32).data)
        self.files[".values"].write(np.ascontiguousarray(values, dtype=self.dtype).data)
        self.row_nnz.append(counts.astype(np.int64))

    def _label_index(self, column) -> np.ndarray:
        """Class positions of the batch's labels (``labels``' rule); a null or unknown label raises."""
        return check_known(column, self.classes, self.label_col, self.where, self.n_rows)

    def _close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def abort(self) -> None:
        self._close()
        for suffix in _ALL_SUFFIXES:
            if os.path.exists(self.tmp + suffix):
                os.remove(self.tmp + suffix)

    def _finish_csr(self) -> None:
        """Write the row pointers; int64 indices (rewritten) when nnz ≥ 2³¹ (scipy wants
        indptr and indices of one dtype)."""
        counts = np.concatenate(self.row_nnz) if self.row_nnz else np.zeros(0, np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        wide = self.nnz >= 2**31
        with _private_file(self.tmp + ".indptr") as out:
            out.write(np.ascontiguousarray(indptr, dtype=np.int64 if wide else np.int32).data)
        if wide:
            narrow = np.memmap(self.tmp + ".indices", dtype=np.int32, mode="r")
            with _private_file(self.tmp + ".indices64") as out:
                for start in range(0, len(narrow), 1 << 24):
                    out.write(narrow[start:start + (1 << 24)].astype(np.int64).data)
            del narrow
            os.replace(self.tmp + ".indices64", self.tmp + ".indices")

    def _convert(self, target: str) -> None:
        """Rewrite the finished files of this partition in the other format (``_convert_block_files``)."""
        self.nnz = _convert_block_files(self.tmp, self.tmp, self.format, target, self.n_rows, self.n_features,
                                        self.dtype, self.nnz)
        for suffix in _FILES[self.format]:
            os.remove(self.tmp + suffix)
        self.format = target

    def finish(self) -> dict | None:
        self._close()
        if self.n_rows == 0:
            self.abort()
            return None
        if self.format == "csr":
            self._finish_csr()
        if self.requested == "auto":
            # the first batch chose; the whole partition's density decides
            final = choose_block_format(self.n_rows, self.n_features, self.nnz, self.dtype.itemsize)
            if final != self.format:
                self._convert(final)
        label_dtype = label_dtype_for(len(self.classes))
        with _private_file(self.tmp + ".y.npy") as out:
            np.save(out, np.concatenate(self.ys).astype(label_dtype), allow_pickle=False)
        if self.weight_col:
            with _private_file(self.tmp + ".w.npy") as out:
                np.save(out, np.concatenate(self.ws), allow_pickle=False)
        # rename last (the data file): a retried or speculative attempt replaces the files whole
        for suffix in (".y.npy", ".w.npy") + _FILES[self.format]:
            if os.path.exists(self.tmp + suffix):
                os.replace(self.tmp + suffix, self.final + suffix)
        moments = self.moments
        return {
            "partition": self.partition,
            "host": socket.gethostname(),
            "path": self.final,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "dtype": self.dtype.name,
            "has_weights": bool(self.weight_col),
            "format": self.format,
            "nnz": int(self.nnz),
            "class_counts": self.class_counts,
            "weight_sum": moments[0] if moments else 0.0,
            "col_mean": moments[1] if moments else np.zeros(self.n_features),
            "col_m2": moments[2].ravel() if moments else np.zeros(0),
            "label_dtype": label_dtype,
        }


def label_dtype_for(n_classes: int) -> str:
    """The smallest unsigned integer type holding class positions 0 … n_classes − 1 (uint8 up to
    256 classes): the labels' share of the cache, 8 bytes a row as int64, is then ≤ 1 byte in
    most runs — what keeps a float32 cache ≤ half of MLlib's (4D + 1 against its ≥ 8D + 8 bytes)."""
    if n_classes <= 1 << 8:
        return "uint8"
    return "uint16" if n_classes <= 1 << 16 else "uint32"


CONVERT_ROWS = 4096  # rows per chunk when a finished partition changes block format


def _convert_block_files(src: str, dst: str, fmt: str, target: str, n_rows: int, n_features: int, dtype,
                         nnz: int) -> int:
    """Write the feature files of the block at prefix ``src`` (format ``fmt``: "dense" or "csr",
    ``BlockDescriptor``'s layout) at prefix ``dst`` in format ``target``, CONVERT_ROWS rows at a
    time (numpy only; at most one chunk densified at once). ``src`` files are left in place (the
    caller removes or renames). Returns the non-zeros the new block stores (``nnz`` for dense)."""
    dtype, n, D = np.dtype(dtype), n_rows, n_features
    index_dtype = np.int32 if nnz < 2**31 else np.int64  # scipy wants indptr and indices of one dtype
    if target == "dense":
        indptr = np.fromfile(src + ".indptr", dtype=index_dtype)
        # np.memmap refuses an empty file
        indices = np.memmap(src + ".indices", dtype=index_dtype, mode="r") if nnz else np.zeros(0, index_dtype)
        values = np.memmap(src + ".values", dtype=dtype, mode="r") if nnz else np.zeros(0, dtype)
        with _private_file(dst + ".X") as out:
            for start in range(0, n, CONVERT_ROWS):
                stop = min(n, start + CONVERT_ROWS)
                lo, hi = int(indptr[start]), int(indptr[stop])
                chunk = np.zeros((stop - start, D), dtype=dtype)
                rows = np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1]))
                chunk[rows, indices[lo:hi]] = values[lo:hi]
                out.write(chunk.data)
        del indices, values
        return nnz
    X = np.memmap(src + ".X", dtype=dtype, mode="r", shape=(n, D)) if n * D else np.zeros((n, D), dtype)
    pointers, total = [np.zeros(1, np.int64)], 0
    with _private_file(dst + ".indices") as out_indices, _private_file(dst + ".values") as out_values:
        for start in range(0, n, CONVERT_ROWS):
            chunk = np.asarray(X[start:start + CONVERT_ROWS])
            rows, columns = np.nonzero(chunk)
            out_indices.write(np.ascontiguousarray(columns, dtype=index_dtype).data)
            out_values.write(np.ascontiguousarray(chunk[rows, columns], dtype=dtype).data)
            pointers.append(total + np.cumsum(np.bincount(rows, minlength=chunk.shape[0])))
            total += len(rows)
    del X
    with _private_file(dst + ".indptr") as out:
        out.write(np.ascontiguousarray(np.concatenate(pointers), dtype=index_dtype).data)
    return int(total)


def _write_blocks(batches, plan, partition):
    """Run a ``_BlockWriter`` over ``batches``; returns the record (None for no rows)."""
    from pyspark import TaskContext  # inside the task: pyspark is loaded there already

    limit_task_blas_threads()  # the moments' Gram products: one BLAS thread per task core
    ctx = TaskContext.get()
    attempt = ctx.attemptNumber() if ctx else 0
    writer = _BlockWriter(*plan, partition=partition, attempt=attempt)
    try:
        for batch in batches:
            writer.add(batch)
        return writer.finish()
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # name the directory (a write names none)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.dirname(writer.final)) from None
        raise
