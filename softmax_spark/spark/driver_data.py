"""Small training sets held in the driver: no Python workers for an Estimator fit on small data.

The ingest (``ingest.ingest``) turns each partition into executor-local block files in a Python
worker, and every pass is a Spark job (or a resident task) over them. On small data the first fit
of a session pays for Python workers it barely uses: the daemon's start, a fork per core, each
worker's imports (numpy, pyarrow, our task code), on top of the JVM's own cold start — what made
a first fit slower than MLlib's, which runs no Python (issue 29; figures in
docs/install-and-notebooks.md).

``ingest_in_driver`` collects the input's columns to the driver as Arrow (``DataFrame.toArrow``:
one JVM job, no Python worker) when Spark's own size estimate of the selected columns (the
optimized plan's ``sizeInBytes``) is at most ``max_bytes`` and it has at most
``DRIVER_MAX_ROWS`` rows (and rows × width × 8 ≤ ``max_bytes`` when the width is known from
the schema: an unknown estimate, e.g. of ``createDataFrame``'s rows, needs a known width), validates them with the ingest's own functions (``features_to_numpy``,
``labels.check_known``, ``weights_to_numpy``: the same one-line errors), and summarises them
as the ingest does (``batch_moments``). ``DriverLoss`` runs the block kernels over the arrays in
the driver — the loop ``distributed._partition_sums`` runs in a task, over one partition — so
the solvers, the penalty, the preconditioner and the stopping rules are the distributed run's.
A deterministic solver reaches the same optimum; minibatches (``batchFraction`` < 1) draw as a
single partition would.

Classic sessions only (on Spark Connect the server holds the data); None means "ingest as usual".
"""

from __future__ import annotations

import logging

import numpy as np

from softmax_spark.spark.data_summary import DataSummary
from softmax_spark.spark.distributed import loss_and_gradient
from softmax_spark.spark.moments import batch_moments, merge_moments
from softmax_spark.core.errors import InputError
from softmax_spark.core.features import features_to_numpy, weights_to_numpy
from softmax_spark.core.labels import check_known, sorted_classes
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.tasks import merge_in_order, minibatch_rows, row_chunks

__all__ = ["ingest_in_driver", "collect_small", "table_classes", "DriverData", "DriverLoss", "DRIVER_MAX_BYTES", "DRIVER_MAX_ROWS"]

log = logging.getLogger("softmax_spark")

DRIVER_MAX_BYTES = 32 << 20  # Spark's estimate of the selected columns; and the dense float64 matrix
DRIVER_MAX_ROWS = 200_000
UNKNOWN_SIZE = 1 << 50  # ≥ 1 PiB: Spark did not know (Long.MaxValue, spark.sql.defaultSizeInBytes, scaled by a Project)


def _estimated_bytes(df) -> int | None:
    """The optimized plan's size estimate (Spark's ``Statistics.sizeInBytes``), or None."""
    try:
        size = df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()  # a Scala BigInt
        return int(size if isinstance(size, int) else size.toString())
    except Exception:  # noqa: BLE001 - no estimate: ingest as usual
        return None


def _row_width(schema, spec) -> int | None:
    """Feature values per row from the schema: 1 per numeric column, a vector column's ML
    attribute count (``ml_attr.num_attrs``, set by VectorAssembler / OneHotEncoder); None when
    a column's width is not known before reading it (an array, a vector without metadata)."""
    from pyspark.sql import types as T

    width = 0
    for name in spec.columns:
        field = schema[name]
        if isinstance(field.dataType, T.NumericType):
            width += 1
            continue
        attrs = (field.metadata or {}).get("ml_attr") or {}
        if "num_attrs" in attrs:
            width += int(attrs["num_attrs"])
        elif "attrs" in attrs:
            width += sum(len(group) for group in attrs["attrs"].values())
        else:
            return None
    return width


class DriverData:
    """The training set in the driver; what ``training.TrainingData`` reads of an ``IngestedData``."""

    source = "the driver (small data, Arrow collect)"

    def __init__(self, X, y, w, summary: DataSummary):
        self.X, self.y, self.w, self.summary = X, y, w, summary
        self.blocks = self  # make_loss(blocks) → DriverLoss
        self.block_format = "dense"

    def check_input(self) -> None:
        pass

    def release(self) -> None:
        self.X = self.y = self.w = None


def collect_small(df, spec, label_col, weight_col=None, max_bytes: int = DRIVER_MAX_BYTES):
    """The selected columns of ``df`` as an Arrow table when they are small (the rule in the
    module docstring), else None. One JVM job; no Python worker."""
    if not backend_for(df).has_rdd or max_bytes <= 0:  # Spark Connect: no driver-side path
        return None
    columns = spec.columns + [label_col] + ([weight_col] if weight_col else [])
    selected = df.select(*columns)
    width = _row_width(selected.schema, spec)
    estimate = _estimated_bytes(selected)
    if estimate is not None and estimate >= UNKNOWN_SIZE:
        estimate = None  # e.g. createDataFrame's rows: Spark does not know
    if width is None and estimate is None:
        log.debug("training set not held in the driver: neither its width nor its size is known")
        return None
    if estimate is not None and estimate > max_bytes:
        log.debug("training set not held in the driver: Spark estimates %s bytes (limit %d)", estimate, max_bytes)
        return None
    max_rows = DRIVER_MAX_ROWS if width is None else min(DRIVER_MAX_ROWS, max_bytes // (8 * max(width, 1)))
    sc = df.sparkSession.sparkContext
    sc.setJobDescription("softmax_spark: read the (small) training set into the driver")
    try:
        table = selected.limit(max_rows + 1).toArrow()
    finally:
        sc.setJobDescription(None)
    if table.num_rows > max_rows:
        log.debug("training set not held in the driver: more than %d rows", max_rows)
        return None
    return table


def table_classes(table, label_col: str) -> list | None:
    """The sorted distinct non-null labels of a collected table, as ``labels.discover_classes``
    gives them (Python values, −0.0 as 0.0); None (ask Spark) for a NaN label."""
    import pyarrow.compute as pc


    column = table.column(label_col)
    values = [v for v in pc.unique(column).to_pylist() if v is not None]
    if any(isinstance(v, float) and v != v for v in values):
        return None
    values = [0.0 if isinstance(v, float) and v == 0 else v for v in values]
    try:
        return sorted_classes(values)
    except TypeError:
        return None


def ingest_in_driver(df, spec, label_col, classes, weight_col=None, dtype="float64",
                     max_bytes: int = DRIVER_MAX_BYTES, n_features: int | None = None,
                     table=None) -> DriverData | None:
    """The rows of ``df`` as a ``DriverData``, or None when the data may be larger than
    ``max_bytes`` (Spark's estimate, or the dense matrix once read) or ``DRIVER_MAX_ROWS`` rows,
    or the session is Spark Connect. ``table``: what ``collect_small`` returned already. ``n_features``: the length the feature arrays must have
    (a validation set's: the training set's). Raises ``InputError`` for bad rows, as the ingest does."""

    if table is None:
        table = collect_small(df, spec, label_col, weight_col, max_bytes)
    if table is None:
        return None
    n = table.num_rows
    if n == 0:
        raise InputError("the input has 0 rows; expected at least one labelled row")
    dtype = np.dtype(dtype)
    where = "the input"
    X = features_to_numpy(table, spec, dtype, where, 0, n_features, sparse=False)
    if X.nbytes > max_bytes:
        return None
    y = check_known(table.column(label_col), classes, label_col, where, 0)
    w = weights_to_numpy(table.column(weight_col), weight_col, where, 0) if weight_col else None
    moments = batch_moments(X.astype(np.float64, copy=False), w)
    if moments is None:
        raise InputError("every row has sample weight 0; expected a positive total weight")
    weight_sum, mean, m2 = merge_moments(None, moments)
    cov = m2 / weight_sum if m2.ndim == 2 else None
    var = np.diag(cov).copy() if cov is not None else m2 / weight_sum
    summary = DataSummary(
        n_rows=n, n_features=X.shape[1], classes=list(classes),
        class_counts=np.bincount(y, minlength=len(classes)).astype(np.int64), weight_sum=weight_sum,
        col_mean=mean, col_var=var, covariance=cov, n_partitions=1, nnz=int(np.count_nonzero(X)),
        block_formats={"dense": 1}, cached_bytes=int(X.nbytes),
    )
    return DriverData(np.ascontiguousarray(X), y.astype(np.int32), w, summary)


class DriverLoss:
    """``distributed.DistributedLoss``'s interface (``__call__``, ``run``, ``passes``) over a
    ``DriverData``: the task's loop of ``_partition_sums`` over the one in-memory partition."""

    def __init__(self, data: DriverData, n_classes, n_features, fit_intercept=True, aggregation_depth=2,
                 rebuild=None, fail_marker_dir=None, label="train", class_weight=None, resident=True):
        self.data = data
        self.n_classes, self.n_features, self.fit_intercept = n_classes, n_features, fit_intercept
        self.label = label
        self.class_weight = None if class_weight is None else np.asarray(class_weight, dtype=np.float64)
        self.passes = 0

    __call__ = loss_and_gradient  # as DistributedLoss's

    def run(self, kernel, payload, iteration: int = 0, batch_fraction: float = 1.0, seed: int = 0,
            label: str | None = None):
        """One pass of ``kernel`` over the rows (or the minibatch: partition 0's draw)."""
        X, y, w = self.data.X, self.data.y, self.data.w
        if self.class_weight is not None:
            w = self.class_weight[y] if w is None else w * self.class_weight[y]
        acc = kernel.zero(self.n_classes, self.n_features)
        rows = minibatch_rows(X.shape[0], batch_fraction, seed, iteration, 0)
        with _one_blas_thread():
            for sel in row_chunks(X, rows):
                acc = kernel.add(acc, payload, X[sel], y[sel], None if w is None else w[sel])
        self.passes += 1
        merged, _ = merge_in_order([(acc, [])])
        return merged


_controller = None


def _one_blas_thread():
    """BLAS limited to one thread for a pass (restored after): on small blocks its threads only
    wait for each other — a pass over 2,000 × 13 took 0.54–0.68 s with OpenBLAS's default threads
    against 0.02–0.08 s in a one-core task, on a busy 2-core machine. threadpoolctl's controller
    (its library scan) is made once."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1)
