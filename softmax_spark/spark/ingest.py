"""Ingest: Parquet → validated, executor-local numpy block files, once per training run.

One ``mapInArrow`` pass turns each input partition into three files in the executor's Spark
local directory (``X`` raw rows of shape (n_rows, n_features) in ``dtype``, ``y`` class indices,
``w`` sample weights), validating as it goes (finite values, equal lengths, non-null labels,
known classes) and summarising (rows per class, weighted column means and covariance, used by
the preconditioner and the SGD step bound). It returns one small *descriptor* per partition; the descriptors are persisted
as a Spark RDD, so every later pass is scheduled where its descriptor — and so its block file —
lives, and opens the file memory-mapped: no data crosses the JVM ↔ Python boundary after ingest.

A pass whose task lands on a machine without the file (Spark's locality is a preference, not a
guarantee) writes the partition's blocks again there from its Parquet row-group slices, which the
descriptor carries (direct path); without them (rows from Spark) it reports the partition as
missing — never wrong sums — and ``distributed.DistributedLoss`` has the driver rebuild the blocks.

Both rebuilds read the input again, so the ingest records each input file's size and modification
time (``input_stamps``, taken before the first read) and every rebuild checks them first: an input
file replaced, rewritten or deleted while training runs raises ``InputChangedError`` (an
``InputError``: the job exits 2 with one line) rather than mixing other rows into the sums.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace

import logging

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec, features_to_numpy, weights_to_numpy
from softmax_spark.core.labels import check_known, discover_classes  # discover_classes: re-exported
from softmax_spark.spark.schema import check_columns, storage_dtype  # check_columns: re-exported: one column check for training and scoring

__all__ = ["BlockDescriptor", "DataSummary", "IngestedData", "InputChangedError", "read_parquet", "check_columns",
           "discover_classes", "ingest", "choose_block_format", "input_stamps", "check_input_unchanged"]

log = logging.getLogger("softmax_spark")


_FILES = {"dense": (".X",), "csr": (".indptr", ".indices", ".values")}
_ALL_SUFFIXES = (".X", ".indptr", ".indices", ".values", ".y.npy", ".w.npy")


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


@dataclass
class DataSummary:
    """What the ingest pass learnt about the training data (merged over partitions)."""

    n_rows: int
    n_features: int
    classes: list
    class_counts: np.ndarray  # of shape (n_classes,), rows per class
    weight_sum: float
    col_mean: np.ndarray  # of shape (n_features,), weighted
    col_var: np.ndarray  # of shape (n_features,), weighted population variance
    covariance: np.ndarray | None  # of shape (n_features, n_features), weighted; None if D is large
    n_partitions: int
    nnz: int = 0  # non-zero feature values over all rows
    block_formats: dict = field(default_factory=dict)  # {"dense": partitions, "csr": partitions}
    cached_bytes: int = 0  # bytes of the executor-local block files

    @property
    def density(self) -> float:
        """Fraction of non-zero feature values, nnz / (n_rows · n_features)."""
        cells = self.n_rows * self.n_features
        return self.nnz / cells if cells else 0.0

    def to_dict(self) -> dict:
        return {
            "rows": self.n_rows,
            "features": self.n_features,
            "classes": list(self.classes),
            "class_counts": [int(c) for c in self.class_counts],
            "weight_sum": self.weight_sum,
            "partitions": self.n_partitions,
        }


def read_parquet(spark, path: str):
    """spark.read.parquet with a one-line error for a missing path."""
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(path)
    except AnalysisException as exc:
        text = str(exc)
        if "PATH_NOT_FOUND" in text or "does not exist" in text:
            raise InputError(f"input path {path} does not exist") from None
        if "UNABLE_TO_INFER_SCHEMA" in text:
            raise InputError(f"input path {path} holds no Parquet data (empty directory?)") from None
        raise InputError(f"cannot read Parquet at {path}: {text.splitlines()[0]}") from None


_DESCRIPTOR_SCHEMA = (
    "partition int, host string, path string, n_rows long, n_features int, dtype string, "
    "has_weights boolean, format string, nnz long, class_counts array<long>, "
    "weight_sum double, col_mean array<double>, col_m2 array<double>, label_dtype string"
)


FULL_COVARIANCE_MAX_FEATURES = 512  # above this only the diagonal is kept (D² floats per partition)


def batch_moments(X: np.ndarray, w: np.ndarray | None):
    """(Σ w, weighted column mean, M2) of one block, where M2 = Σ w (x − mean)(x − mean)ᵀ of
    shape (D, D) when D ≤ FULL_COVARIANCE_MAX_FEATURES, else its diagonal of shape (D,).
    Centred first, so a column like 1000 ± 1e-3 keeps its variance (no cancellation)."""
    total = float(X.shape[0]) if w is None else float(w.sum())
    if total <= 0:
        return None
    # float64 sums whatever the cache dtype (float32 X: w @ X and X − mean are float64 already)
    mean = X.mean(axis=0, dtype=np.float64) if w is None else (w @ X) / total
    centred = X - mean
    weighted = centred if w is None else centred * w[:, None]
    if X.shape[1] <= FULL_COVARIANCE_MAX_FEATURES:
        return total, mean, weighted.T @ centred
    return total, mean, np.einsum("ij,ij->j", weighted, centred)


def sparse_batch_moments(X, w: np.ndarray | None):
    """``batch_moments`` of a CSR chunk without densifying it: (Σ w, weighted column mean, M2),
    M2 of shape (D, D) when D ≤ FULL_COVARIANCE_MAX_FEATURES (from the sparse product XᵀWX),
    else its diagonal (from Σ w x_j²). From raw sums, centred per chunk (M2 = Σ w x xᵀ − Σw·μμᵀ),
    so a column far from zero on every row loses digits that ``batch_moments`` keeps — such a
    column is dense, and the data would be stored dense unless D is large."""
    import scipy.sparse as sp

    total = float(X.shape[0]) if w is None else float(w.sum())
    if total <= 0:
        return None
    X = X.astype(np.float64)
    Xw = X if w is None else sp.diags(w) @ X
    mean = np.asarray(Xw.sum(axis=0)).ravel() / total
    if X.shape[1] <= FULL_COVARIANCE_MAX_FEATURES:
        m2 = (X.T @ Xw).toarray() - total * np.outer(mean, mean)
        np.fill_diagonal(m2, np.maximum(np.diag(m2), 0.0))
    else:
        m2 = np.maximum(np.asarray(Xw.multiply(X).sum(axis=0)).ravel() - total * mean * mean, 0.0)
    return total, mean, m2


CSR_DENSITY = 0.25  # below this fraction of non-zeros, CSR blocks (see choose_block_format)
WIDE_FEATURES = 16384  # from this width on, the smaller files decide


def choose_block_format(n_rows: int, n_features: int, nnz: int, itemsize: int) -> str:
    """"csr" or "dense" for blocks of ``n_rows`` × ``n_features`` with ``nnz`` non-zeros.

    CSR when the density nnz / (n_rows · n_features) is below ``CSR_DENSITY`` (0.25): the sparse
    products then do ≥ 4× fewer multiply-adds than the dense BLAS ones, which makes up for their
    lower speed per operation, and the files are ≥ 2.7× smaller (float64 values + int32 indices,
    12 bytes a non-zero, against 8 a cell). Also CSR when the rows are wide (D ≥ ``WIDE_FEATURES``)
    and the CSR files are smaller than the dense ones (density below 2/3 in float64, 1/2 in float32):
    there memory decides, a dense row of 2¹⁴ float64 already being 128 KiB. Dense otherwise.
    """
    cells = n_rows * n_features
    if cells == 0:
        return "dense"
    if nnz < CSR_DENSITY * cells:
        return "csr"
    csr_bytes = nnz * (itemsize + 4) + 4 * (n_rows + 1)
    if n_features >= WIDE_FEATURES and csr_bytes < itemsize * cells:
        return "csr"
    return "dense"


def merge_moments(a, b):
    """Chan et al.'s pairwise merge of (Σ w, mean, M2) moments; ``None`` is the empty set."""
    if a is None:
        return b
    if b is None:
        return a
    wa, ma, m2a = a
    wb, mb, m2b = b
    total = wa + wb
    if total == 0:
        return a
    delta = mb - ma
    cross = np.outer(delta, delta) if np.ndim(m2a) == 2 else delta * delta
    return total, ma + delta * (wb / total), m2a + m2b + cross * (wa * wb / total)


def _descriptor_arrow_schema():
    import pyarrow as pa

    return pa.schema([
        ("partition", pa.int32()), ("host", pa.string()), ("path", pa.string()), ("n_rows", pa.int64()),
        ("n_features", pa.int32()), ("dtype", pa.string()), ("has_weights", pa.bool_()),
        ("format", pa.string()), ("nnz", pa.int64()), ("class_counts", pa.list_(pa.int64())),
        ("weight_sum", pa.float64()), ("col_mean", pa.list_(pa.float64())), ("col_m2", pa.list_(pa.float64())),
        ("label_dtype", pa.string()),
    ])


def _private_file(path: str):
    """A new (truncated) binary file only its owner can read or write (0600 whatever the umask:
    block files hold the training data, and Spark's own local directories are 0700)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file (a retried attempt's name) keeps its old mode otherwise
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _private_run_dir(root: str) -> bool:
    """Create the run directory ``root`` with mode 0700 (whatever the umask); False when it
    already existed (then made 0700 as well, if it is ours)."""
    try:
        os.mkdir(root, 0o700)
        created = True
    except FileNotFoundError:  # the local dir itself is missing (a temp dir cleaned meanwhile)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        return _private_run_dir(root)
    except FileExistsError:
        created = False
    try:
        os.chmod(root, 0o700)
    except PermissionError:  # not ours: reading it would fail later with a clear error
        pass
    return created


def _local_dir() -> str:
    """The executor's Spark local directory (set for Python workers), else the temp dir."""
    dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
    return dirs.split(",")[0] if dirs else tempfile.gettempdir()


# -- executor-local run directories: who owns them, and removing those of dead executors -------
# Each run writes into ``<executor local dir>/softmax_spark-<run_id>`` (run_id: 48 random bits, so
# concurrent runs never share a directory). A run that ends releases its blocks, and Spark deletes
# its executor's local dir (``blockmgr-*``) at a normal shutdown; a JVM killed with SIGKILL (or by
# the OOM killer) runs no shutdown hook, and both stay. So each run directory has an owner record
# beside it, ``softmax_spark-<run_id>.owner.json`` — the executor JVM's pid and start time — and the
# first task of every later run on the machine removes the run directories whose owner is gone.
OWNER_SUFFIX = ".owner.json"


def _proc_stat(pid: int):
    """(command name, parent pid, start time in clock ticks since boot) from Linux's /proc; None
    when the process does not exist (or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()  # rest[0] is field 3 (state): field k is rest[k - 3]
    if rest[0] == "Z":
        return None  # a zombie is dead
    return text[text.index("(") + 1:text.rindex(")")], int(rest[1]), int(rest[19])


def _executor_jvm():
    """{"pid", "start"} of the JVM running this Python worker — its nearest ``java`` ancestor
    (worker → pyspark daemon → JVM) — or None when it cannot be told (no /proc: not Linux)."""
    pid = os.getppid()
    for _ in range(4):
        stat = _proc_stat(pid)
        if stat is None:
            return None
        name, parent, start = stat
        if name == "java":
            return {"pid": pid, "start": start}
        pid = parent
    return None


def _claim_run_dir(root: str) -> None:
    """Record this executor's JVM as the owner of ``root``, then remove the run directories of
    JVMs that died without cleaning up. Best effort: never fails the ingest."""
    try:
        owner = {"host": socket.gethostname(), "jvm": _executor_jvm(), "created": time.time()}
        tmp = f"{root}{OWNER_SUFFIX}.tmp-{uuid.uuid4().hex[:8]}"
        with _private_file(tmp) as f:
            f.write(json.dumps(owner).encode("utf-8"))
        os.replace(tmp, root + OWNER_SUFFIX)
        remove_stale_run_dirs(os.path.dirname(root))
    except Exception:
        pass


def remove_stale_run_dirs(local_dir: str) -> list[str]:
    """Delete the ``softmax_spark-*`` run directories under ``local_dir`` and — when it is one of
    Spark's ``blockmgr-*`` directories — under its siblings (other executors' / applications'
    local dirs on this machine: local mode puts every application's under the same
    ``spark.local.dir``) whose owner JVM (``<run dir>.owner.json``: host, pid, start time) is no
    longer running on this host, with their owner records. Directories without an owner record,
    or of another host, or whose owner cannot be checked, are kept. Returns the removed paths."""
    import glob

    pattern = "softmax_spark-*" + OWNER_SUFFIX
    patterns = [os.path.join(local_dir, pattern)]
    if os.path.basename(local_dir.rstrip(os.sep)).startswith("blockmgr-"):
        patterns.append(os.path.join(os.path.dirname(local_dir.rstrip(os.sep)), "blockmgr-*", pattern))
    host, removed = socket.gethostname(), []
    for record in sorted({path for pattern in patterns for path in glob.glob(pattern)}):
        run_dir = record[:-len(OWNER_SUFFIX)]
        try:
            with open(record) as f:
                owner = json.load(f)
            jvm = owner.get("jvm")
            if owner.get("host") != host or not jvm:
                continue
            stat = _proc_stat(int(jvm["pid"]))
            if stat is not None and stat[2] == int(jvm["start"]):
                continue  # alive (the same process, not a reused pid)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        _remove_run_dir(run_dir)
        removed.append(run_dir)
    return removed


def _remove_run_dir(run_dir: str) -> None:
    """Delete a run directory and its owner record (best effort)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        os.remove(run_dir + OWNER_SUFFIX)
    except OSError:
        pass


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


def run_block_format(records: list[dict], block_format: str, itemsize: int) -> str:
    """The one block format of a run: ``block_format`` when "dense" or "csr" (asked for), else
    ``choose_block_format`` over the whole run (total rows, D, total non-zeros of the partitions'
    ingest ``records``) — "dense" without scipy, like the ingest tasks."""
    if block_format != "auto":
        return block_format
    if not records or not _scipy_available():
        return "dense"
    return choose_block_format(sum(r["n_rows"] for r in records), records[0]["n_features"],
                               sum(int(r["nnz"]) for r in records), itemsize)


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


def _write_blocks(batches, plan, partition):
    """Run a ``_BlockWriter`` over ``batches``; returns the record (None for no rows)."""
    from pyspark import TaskContext

    from softmax_spark.spark.distributed import limit_task_blas_threads

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


BATCH_VALUES = 1 << 22  # leaf values per decoded batch: ≈ 32 MiB of float64


def _batch_rows(row_group_meta) -> int:
    """Rows per streamed batch of a row group: ≈ ``BATCH_VALUES`` leaf values (the widest
    column's values per row, from the footer), between 1,024 and 65,536 rows."""
    rows = max(row_group_meta.num_rows, 1)
    per_row = max((row_group_meta.column(i).num_values / rows for i in range(row_group_meta.num_columns)),
                  default=1.0)
    return int(min(65536, max(1024, BATCH_VALUES // max(per_row, 1.0))))


def _read_units(units, columns):
    """Arrow batches of the (file, row_group, start, stop) slices ``units``, in order.

    Each row group is streamed (``iter_batches``) from its first row and only up to ``stop``:
    a row group split between partitions is decoded as far as each one needs, and never held
    whole in memory. Measured on one 60,000 × 784 row group: reading all of it took 0.95 s with
    ``read_row_group``, 0.60 s streamed in batches of 8,192 rows, its first half 0.37 s."""
    import pyarrow.parquet as pq

    for path, row_group, start, stop in units:
        with _open_input(path) as handle:
            parquet = pq.ParquetFile(handle)
            batch_rows = _batch_rows(parquet.metadata.row_group(row_group))
            position = 0  # of the batch's first row in the row group
            for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[row_group], columns=columns):
                end = position + batch.num_rows
                if end > start:
                    first = max(start, position)
                    yield batch.slice(first - position, min(stop, end) - first)
                position = end
                if position >= stop:
                    break


def _open_input(uri: str):
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    return filesystem.open_input_file(path)


class InputChangedError(InputError):
    """An input file changed (replaced, rewritten, deleted) between the ingest and a pass that
    had to read it again: its rows are not those the run started from."""


def _input_files(df) -> list[str]:
    """``df.inputFiles()`` (the files behind a file-based DataFrame), [] when there are none."""
    try:
        return sorted(df.inputFiles())
    except Exception:  # not a file-based plan
        return []


def _arrow_stamp(uri: str):
    """("arrow", size in bytes, modification time in ns) of ``uri`` read with pyarrow; None when
    it does not exist. Raises when pyarrow cannot reach the filesystem."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        return None
    return ("arrow", int(info.size), int(info.mtime_ns or 0))


def _hadoop_stamp(uri: str, spark):
    """("hadoop", length, modification time in ms) from Spark's Hadoop FileSystem; None when the
    file does not exist."""
    jvm, jsc = spark.sparkContext._jvm, spark.sparkContext._jsc
    path = jvm.org.apache.hadoop.fs.Path(uri)
    filesystem = path.getFileSystem(jsc.hadoopConfiguration())
    if not filesystem.exists(path):
        return None
    status = filesystem.getFileStatus(path)
    return ("hadoop", int(status.getLen()), int(status.getModificationTime()))


def input_stamps(files, spark=None) -> dict:
    """{file: (method, size in bytes, modification time)} of the input ``files`` — pyarrow's view
    ("arrow", time in ns) where pyarrow reaches the filesystem, else Hadoop's ("hadoop", time in
    ms; needs ``spark``); a file neither reaches is left out (not checked). Size + modification
    time is what Hadoop's and Spark's own file caches key on; a file rewritten in place with the
    same size and a preserved time goes unseen."""
    stamps = {}
    for uri in files or ():
        try:
            stamp = _arrow_stamp(uri)
        except Exception:
            try:
                stamp = _hadoop_stamp(uri, spark) if spark is not None else None
            except Exception:
                stamp = None
        if stamp is not None:
            stamps[uri] = stamp
    return stamps


def _changed_files(stamps: dict, spark=None) -> list:
    """[(file, stamp at ingest, stamp now or None when gone)] for the files of ``stamps`` that
    changed; a file that cannot be stamped now counts as gone (a Hadoop stamp without ``spark``
    is not checked)."""
    changed = []
    for uri, old in stamps.items():
        try:
            if old[0] == "arrow":
                now = _arrow_stamp(uri)
            elif spark is not None:
                now = _hadoop_stamp(uri, spark)
            else:
                continue
        except Exception:
            now = None
        if now != tuple(old):
            changed.append((uri, tuple(old), now))
    return changed


def check_input_unchanged(stamps: dict, spark=None, when: str = "since the ingest") -> None:
    """Raise ``InputChangedError`` (one line) naming the first input file whose size or
    modification time differs from ``stamps`` (``input_stamps`` at ingest), or that is gone."""
    changed = _changed_files(stamps, spark)
    if not changed:
        return
    uri, old, now = changed[0]
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    if now is None:
        what = "was deleted"
    else:
        what = f"changed (size {old[1]} → {now[1]} bytes, modified {_when(old)} → {_when(now)})"
    raise InputChangedError(
        f"input file {uri}{more} {what} {when}: its rows are no longer those the training started from, and "
        "the blocks cannot be rebuilt from them; keep the input unchanged while training runs (e.g. train on "
        "a snapshot) and rerun"
    )


def _when(stamp) -> str:
    import datetime

    seconds = stamp[2] / (1e9 if stamp[0] == "arrow" else 1e3)
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def plan_file_units(files: list[str], n_partitions: int, needed: list[str]):
    """Split the Parquet row groups of ``files`` into ``n_partitions`` lists of
    (file, row_group, start, stop) with near-equal row counts; None when pyarrow cannot read
    them directly or a needed column is not stored in the files (e.g. a Hive partition column)."""
    import pyarrow.parquet as pq

    groups = []
    try:
        for uri in files:
            with _open_input(uri) as handle:
                meta = pq.ParquetFile(handle).metadata
                names = set(meta.schema.to_arrow_schema().names)
                if not set(needed) <= names:
                    return None
                for rg in range(meta.num_row_groups):
                    groups.append((uri, rg, meta.row_group(rg).num_rows))
    except Exception:  # an unknown filesystem or an unreadable footer: let Spark read it
        return None
    total = sum(n for *_, n in groups)
    n_partitions = max(1, min(n_partitions, total))
    target = -(-total // n_partitions)
    plan, current, filled = [[] for _ in range(n_partitions)], 0, 0
    for uri, rg, rows in groups:
        start = 0
        while start < rows:
            take = min(rows - start, target - filled)
            plan[current].append((uri, rg, start, start + take))
            start += take
            filled += take
            if filled == target and current < n_partitions - 1:
                current, filled = current + 1, 0
    return [units for units in plan if units]


def ingest(
    df,
    spec: FeatureSpec,
    label_col: str,
    classes: list,
    weight_col: str | None = None,
    dtype: str = "float64",
    n_partitions: int | None = None,
    n_features: int | None = None,
    files: list[str] | None = None,
    block_format: str = "auto",
):
    """Build the executor-local blocks; returns an ``IngestedData``.

    ``files``: the Parquet files behind ``df`` (``df.inputFiles()``) — when given and readable
    by pyarrow, tasks read their row groups directly (the fast path); otherwise the rows come
    from Spark through ``mapInArrow``. ``n_partitions``: how many blocks (a few large
    partitions beat many small ones: each task costs ~50 ms). ``dtype``: the cache's, "float64",
    "float32" or "auto" (``schema.storage_dtype``). ``block_format``: "auto" (the
    measured density of the whole run decides, ``run_block_format``), "dense" or "csr". With
    "auto" each task first picks its partition's format; when partitions of different densities
    picked apart, one more job converts the blocks that differ in place, so a run has one format.
    Raises ``InputError`` (one line: column, partition, row) for bad input; nothing is left behind.
    """
    if block_format not in ("auto", "dense", "csr"):
        raise ValueError(f"block_format {block_format!r}: expected auto, dense or csr")
    dtype = storage_dtype(dtype, df.schema, spec)  # "auto": float32 for array<float> features
    args = dict(df=df, spec=spec, label_col=label_col, classes=list(classes), weight_col=weight_col, dtype=dtype,
                n_partitions=n_partitions, n_features=n_features, files=files, block_format=block_format)
    from softmax_spark.spark.connect_backend import is_connect

    if is_connect(df):  # no RDD API: the DataFrame-only backend
        from softmax_spark.spark.connect_backend import ingest_connect

        return ingest_connect(**args)
    from pyspark import StorageLevel

    from softmax_spark.spark.distributed import raise_task_error

    columns = spec.columns + [label_col] + ([weight_col] if weight_col else [])
    run_id = uuid.uuid4().hex[:12]
    plan = (spec, label_col, weight_col, list(classes), np.dtype(dtype), run_id, n_features, block_format)
    sc = df.sparkSession.sparkContext
    n_partitions = n_partitions or sc.defaultParallelism
    # before the first read: a change after this point is seen by every later check
    stamps = input_stamps(files if files else _input_files(df), df.sparkSession)
    units = plan_file_units(files, n_partitions, columns) if files else None
    if units is not None:
        source = "parquet files (pyarrow)"
        persisted = sc.parallelize(units, len(units)).mapPartitionsWithIndex(_file_ingest_fn(plan, columns, stamps))
    else:
        source = "spark rows (arrow)"
        df = df.select(*columns)
        if df.rdd.getNumPartitions() > n_partitions:
            df = df.coalesce(n_partitions)
        persisted = df.mapInArrow(_arrow_ingest_fn(plan), _DESCRIPTOR_SCHEMA).rdd.map(_split_record)
    # persisted: (descriptor, statistics) — later passes only unpickle the small descriptor,
    # and run where it is cached, i.e. where the block files are
    persisted = persisted.persist(StorageLevel.MEMORY_ONLY)
    persisted.setName(f"softmax_spark blocks {run_id} from {source}")
    sc.setJobDescription(f"softmax_spark: ingest ({run_id}, {source})")
    try:
        records = [stats for _, stats in persisted.collect()]
    except Exception as exc:
        persisted.unpersist()
        _remove_run_dirs(sc, run_id)  # the blocks of partitions that finished before the failure
        raise_task_error(exc)
        raise
    finally:
        sc.setJobDescription(None)
    try:
        summary = summarise_records(records, spec, classes)
        check_input_unchanged(stamps, df.sparkSession, "during the ingest")
    except InputError:
        remove_blocks(persisted.map(_first))
        persisted.unpersist()
        raise
    run_format = run_block_format(records, block_format, np.dtype(dtype).itemsize)
    if any(r["format"] != run_format for r in records):  # partitions of different densities chose apart
        persisted, records = _convert_blocks(sc, persisted, records, run_format, plan[:-1] + (run_format,), run_id)
        summary = _summarise(records, classes)
    log.info("blocks %s: %s, density %.3g, cached_bytes=%d (executor-local block files)", run_id,
             ", ".join(f"{k} × {v}" for k, v in sorted(summary.block_formats.items())), summary.density,
             summary.cached_bytes)
    return IngestedData(persisted, persisted.map(_first), summary, run_id, source, args, stamps)


def _convert_blocks(sc, persisted, records: list[dict], target: str, plan, run_id: str):
    """One more job over the persisted (descriptor, record) pairs: every block not in ``target``
    converted in place by the task holding it (``_convert_fn``). Returns the new persisted pairs
    and the ingest ``records`` updated (format, nnz); the old pairs are dropped. On a failed
    task removes the blocks and raises (``raise_task_error``)."""
    from pyspark import StorageLevel

    from softmax_spark.spark.distributed import raise_task_error

    converted = persisted.map(_convert_fn(target, plan)).persist(StorageLevel.MEMORY_ONLY)
    converted.setName(f"{persisted.name()} as {target}")
    sc.setJobDescription(f"softmax_spark: blocks {run_id} to the run's format ({target})")
    try:  # only the small (partition, format, nnz) triples travel back: the records are here already
        stored = dict((p, (fmt, nnz)) for p, fmt, nnz in converted.map(_stored_format).collect())
    except Exception as exc:
        converted.unpersist()
        remove_blocks(persisted.map(_first))
        persisted.unpersist()
        raise_task_error(exc)
        raise
    finally:
        sc.setJobDescription(None)
    persisted.unpersist()
    log.info("blocks %s: %d of %d partitions converted to %s, the run's format", run_id,
             sum(r["format"] != target for r in records), len(records), target)
    records = [dict(r, format=stored[r["partition"]][0], nnz=stored[r["partition"]][1]) for r in records]
    return converted, records


def _stored_format(pair) -> tuple:
    d = pair[0]
    return d.partition, d.format, d.nnz


def summarise_records(records: list[dict], spec: FeatureSpec, classes: list) -> DataSummary:
    """The ``DataSummary`` of the partitions' ingest records; ``InputError`` for no rows or
    partitions whose feature counts differ."""
    if not records:
        raise InputError("the input has 0 rows; expected at least one labelled row")
    first = records[0]
    other = next((r for r in records if r["n_features"] != first["n_features"]), None)
    if other is not None:
        raise InputError(
            f"column '{spec.describe()}': feature arrays of length {other['n_features']} in partition "
            f"{other['partition']}, expected {first['n_features']} like partition {first['partition']}"
        )
    return _summarise(records, classes)


@dataclass
class IngestedData:
    """The persisted ingest result: ``blocks`` (RDD of BlockDescriptor) for the passes."""

    persisted: object  # RDD of (BlockDescriptor, stats dict), persisted
    blocks: object  # RDD of BlockDescriptor
    summary: DataSummary
    run_id: str
    source: str = ""
    args: dict | None = field(default=None, repr=False)  # the ``ingest`` arguments, for ``rebuild``
    stamps: dict = field(default_factory=dict, repr=False)  # ``input_stamps`` of the input at ingest
    released: bool = False

    @property
    def block_format(self) -> str:
        """"dense" or "csr" (the run's format, ``run_block_format``); "mixed" only on Spark
        Connect, where each partition keeps its own choice."""
        formats = list(self.summary.block_formats)
        return formats[0] if len(formats) == 1 else "mixed"

    def rebuild(self) -> "IngestedData":
        """Ingest the same input again (same partitions, same rows: same sums) after block files
        were lost, releasing the old blocks; this object is updated in place and returned, so
        every holder sees the new blocks. Raises ``RuntimeError`` if it was built without its
        arguments."""
        if self.args is None:
            raise RuntimeError("this IngestedData cannot rebuild itself (built without its ingest arguments)")
        log.warning("block files %s missing on some executor; rebuilding them", self.run_id)
        self.check_input()
        self.release()
        fresh = ingest(**self.args)
        self.persisted, self.blocks, self.summary = fresh.persisted, fresh.blocks, fresh.summary
        self.run_id, self.source, self.released = fresh.run_id, fresh.source, False
        return self

    def check_input(self) -> None:
        """Raise ``InputChangedError`` when an input file changed since this ingest (call before
        reading the input again)."""
        spark = self.args["df"].sparkSession if self.args else None
        check_input_unchanged(self.stamps, spark, "since the ingest")

    def release(self) -> None:
        """Delete the block files on the executors and drop the cached descriptors (once)."""
        if self.released:
            return
        self.released = True
        from softmax_spark.spark.resident import close

        close(self.blocks.context)  # resident tasks read these blocks and hold the cores
        remove_blocks(self.blocks)
        self.persisted.unpersist()


def remove_blocks(blocks) -> None:
    """Best effort: delete each partition's files where its descriptor lives."""
    def remove(descriptors):
        for d in descriptors:
            d.remove()
        return iter(())

    try:
        blocks.foreachPartition(remove)
    except Exception:  # cleanup must never hide the real outcome; Spark's local dirs go at exit
        pass


def _remove_run_dirs(sc, run_id: str) -> None:
    """Best effort after a failed ingest: delete ``softmax_spark-<run_id>`` from the local
    directory of every executor a few tasks reach (no descriptors exist to find them by)."""
    def remove(_):
        _remove_run_dir(os.path.join(_local_dir(), f"softmax_spark-{run_id}"))
        return iter(())

    n = 2 * sc.defaultParallelism
    try:
        sc.parallelize(range(n), n).foreachPartition(remove)
    except Exception:  # cleanup must never hide the real error
        pass


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


def _summarise(records: list[dict], classes: list) -> DataSummary:
    n_classes = len(classes)
    if not records:
        return DataSummary(0, 0, list(classes), np.zeros(n_classes, np.int64), 0.0,
                           np.zeros(0), np.zeros(0), None, 0)
    n_features = records[0]["n_features"]
    moments = None
    for r in records:
        m2 = np.asarray(r["col_m2"])
        if m2.size == 0:
            continue  # only zero-weight rows in this partition
        if m2.size != n_features:
            m2 = m2.reshape(n_features, n_features)
        moments = merge_moments(moments, (r["weight_sum"], np.asarray(r["col_mean"]), m2))
    if moments is None:
        raise InputError("every row has sample weight 0; expected a positive total weight")
    weight_sum, mean, m2 = moments
    cov = m2 / weight_sum if m2.ndim == 2 else None
    var = np.diag(cov).copy() if cov is not None else m2 / weight_sum
    return DataSummary(
        n_rows=sum(r["n_rows"] for r in records),
        n_features=n_features,
        classes=list(classes),
        class_counts=np.sum([r["class_counts"] for r in records], axis=0).astype(np.int64),
        weight_sum=weight_sum,
        col_mean=mean,
        col_var=var,
        covariance=cov,
        n_partitions=len(records),
        nnz=sum(int(r["nnz"]) for r in records),
        block_formats={fmt: sum(r["format"] == fmt for r in records) for fmt in sorted({r["format"] for r in records})},
        cached_bytes=sum(_to_descriptor(r).cached_bytes() for r in records),
    )
