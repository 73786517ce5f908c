"""Distributed passes over the ingested blocks: broadcast → mapPartitions → treeAggregate → destroy.

``DistributedLoss.run(kernel, payload, ...)`` is the one place that runs a pass: broadcast the
payload (e.g. (coef, intercept)) → each partition's task opens its memory-mapped block (dense
ndarray or CSR, as the descriptor says), or draws its minibatch from it, and applies the block
kernel (``softmax_spark.core.kernels``) to it in chunks of ``CHUNK_ROWS`` rows → ``treeAggregate``
merges the accumulators → the broadcast is destroyed.

Under a local master the passes run on ``resident`` tasks instead (one Spark job whose tasks
stay for the fit and run each pass the driver sends them, with the same task body and the same
merge order; see that module); a pass they cannot run, and every pass elsewhere, is the job above.

Fixed cost per pass (what small data feels): a payload ≤ ``INLINE_PAYLOAD_BYTES`` travels in the
task closure (no broadcast to create, read and destroy), and when ``treeAggregate`` would add no
level over the partitions (few partitions, or depth 1) the per-partition sums are collected and
merged on the driver in partition order — the same sums, one job with fewer JVM round trips. ``DistributedLoss(coef, intercept)`` is
that pass with ``kernels.LossGradKernel``, divided by Σ s_i on the driver. Optimizers only ever
see the returned numbers. (Ingest and scoring run their own Spark jobs: ``ingest``, ``evaluation``.)

Minibatches: partition p at iteration t keeps each row independently with probability
``batch_fraction``, from a generator seeded by (seed, t, p) — a retried task draws the same rows.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

from softmax_spark.spark import resident
from softmax_spark.core.errors import InputError
from softmax_spark.core.kernels import LossGradKernel

__all__ = ["DistributedLoss", "make_loss", "PassResult", "raise_task_error", "minibatch_rows", "row_chunks",
           "limit_task_blas_threads"]

# Rows per kernel call. Dense: 4,096 keeps the (n, C) logits and a float32 chunk's float64 copy in
# cache and under malloc's mmap threshold; one BLAS thread, the same rows in 4,096- vs 32,768-row
# chunks: 64 × 10 39 vs 44 ms (131,072 rows), float32 64 × 10 25 vs 39 ms (131,072 rows),
# 128 × 200 231 vs 269 ms (65,536 rows), 784 × 10 equal. CSR: 32,768 (a sparse call's fixed
# scipy cost: 283 ms vs 346 ms in 4,096-row chunks for 65,536 rows of 40 non-zeros in 131,072
# columns, 20 classes).
CHUNK_ROWS = 4096
CSR_CHUNK_ROWS = 32768
CHUNK_NNZ = 1 << 22  # CSR blocks: also ≤ 4M stored values per call (a chunk's values are copied)
# Payloads up to this size travel inside the task closure instead of a broadcast: a broadcast
# costs a temp file, JVM round trips to create and destroy it, and a read in every worker —
# milliseconds that dominate a pass on small data. (The closure itself is broadcast by PySpark
# once it exceeds spark.broadcast threshold, so large payloads keep an explicit broadcast.)
INLINE_PAYLOAD_BYTES = 256 * 1024


class PassResult(NamedTuple):
    """Data-term means over the rows used (no L2); ``n_rows`` the rows that took part."""

    loss: float
    grad_coef: np.ndarray  # of shape (n_classes, n_features)
    grad_intercept: np.ndarray  # of shape (n_classes,)
    weight_sum: float
    n_rows: int


_TASK_ERROR = re.compile(r"softmax_spark\.core\.errors\.InputError: (.*)")


def raise_task_error(exc: BaseException) -> None:
    """Re-raise an ``InputError`` raised inside a Spark task as itself (one clean line)."""
    match = _TASK_ERROR.search(str(exc))
    if match:
        raise InputError(match.group(1).strip()) from None


def minibatch_rows(n_rows: int, fraction: float, seed: int, iteration: int, partition: int) -> np.ndarray | None:
    """Row positions kept in this partition's minibatch (``None`` = all rows)."""
    if fraction >= 1.0:
        return None
    rng = np.random.default_rng([seed, iteration, partition])
    return np.flatnonzero(rng.random(n_rows) < fraction)


def row_chunks(X, rows: np.ndarray | None):
    """The kernel calls' row selections over one block: slices (all rows) or index arrays
    (``rows``, a minibatch), each ≤ CHUNK_ROWS rows (dense) or ≤ CSR_CHUNK_ROWS rows and
    ≤ CHUNK_NNZ stored values (CSR, but at least one row)."""
    n = X.shape[0] if rows is None else len(rows)
    if isinstance(X, np.ndarray):
        bounds = list(range(0, n, CHUNK_ROWS)) + [n]
    else:
        row_nnz = np.diff(X.indptr) if rows is None else np.diff(X.indptr)[rows]
        ends = np.concatenate([[0], np.cumsum(row_nnz)])
        bounds, start = [0], 0
        while start < n:
            by_nnz = int(np.searchsorted(ends, ends[start] + CHUNK_NNZ, side="right")) - 1
            start = min(n, start + CSR_CHUNK_ROWS, max(by_nnz, start + 1))
            bounds.append(start)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield slice(lo, hi) if rows is None else rows[lo:hi]


class _Inline:
    """A small payload shipped inside the task closure, read like a broadcast (``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        return self.value

    def __setstate__(self, value):
        self.value = value


def payload_nbytes(payload) -> int:
    """Bytes of the ndarrays in ``payload`` (nested tuples / lists); other objects count 0."""
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    if isinstance(payload, (tuple, list)):
        return sum(payload_nbytes(p) for p in payload)
    return 0


def _partition_sums(bc, kernel, n_classes, n_features, fraction, seed, iteration, fail_marker, class_weight):
    """The task body: ``kernel`` over the blocks of one partition, in chunks of ``CHUNK_ROWS``
    rows (closure; no Spark objects). Each block is dense or CSR, as its descriptor says."""

    def run(descriptors):
        _freeze_once()
        limit_task_blas_threads()
        payload = bc.value
        acc = kernel.zero(n_classes, n_features)
        missing = []
        for d in descriptors:
            if fail_marker:
                _maybe_fail_first_attempt(fail_marker, d.partition, iteration)
            local = d.local()  # its files, or a copy here rebuilt from the input slices
            if local is None:
                missing.append(d.partition)
                continue
            X, y_index, w = local.open()  # X: memory-mapped ndarray, or csr_matrix over memory maps
            if class_weight is not None:
                # s_i ← s_i · class_weight[y_i]: the weights enter the kernel as plain sample weights
                w = class_weight[y_index] if w is None else w * class_weight[y_index]
            rows = minibatch_rows(d.n_rows, fraction, seed, iteration, d.partition)
            for sel in row_chunks(X, rows):
                acc = kernel.add(acc, payload, X[sel], y_index[sel], None if w is None else w[sel])
            del X
        yield acc, missing

    return run


_blas_threads_set = None
_frozen = 0  # len(sys.modules) at the last gc.freeze() in this worker


def import_task(modules):
    """A task body (``foreachPartition``) importing ``modules`` in the Python worker that runs it,
    then ``_freeze_once``: run once per core before the first real job, its workers start warm."""
    names = tuple(modules)

    def warm(_rows):
        import importlib

        for name in names:
            importlib.import_module(name)
        _freeze_once()

    return warm


def _freeze_once(n_modules: int | None = None) -> None:
    """Move what this (reused) Python worker holds after its imports out of the garbage
    collector's reach, once per set of imported modules: PySpark's daemon runs a full
    ``gc.collect()`` after every task, which with numpy, scipy, pyarrow and pandas loaded (≈ 94k
    tracked objects) took 36–85 ms a task here — on 2 cores, time taken from the next pass.
    Frozen objects are module state that lives as long as the worker anyway; a task that
    imported more (``import_task`` ran first, or a CSR block brought scipy.sparse) freezes again.

    ``n_modules``: the module count to compare with the last freeze's (default ``len(sys.modules)``;
    a test passes its own, since the driver's Spark and Py4J threads may import at any time)."""
    global _frozen
    import sys

    n = len(sys.modules) if n_modules is None else n_modules
    if _frozen != n:
        import gc

        gc.freeze()
        _frozen = n


def limit_task_blas_threads() -> None:
    """Inside a Spark task: limit BLAS to the cores the task owns (``spark.task.cpus``), once per
    (reused) Python worker — threadpoolctl's library scan costs milliseconds, too much to repeat
    on every pass. Outside a task: nothing (the caller's process keeps its own setting).

    Without it each of local[2]'s two workers runs OpenBLAS with a thread per core: four busy
    threads on two cores."""
    global _blas_threads_set
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return
    n = max(1, ctx.cpus())
    if _blas_threads_set != n:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        _blas_threads_set = n


# A test seam, not an option: set only by tests (tests/test_failures.py) in the driver's environment
FAIL_FIRST_ATTEMPT_ENV = "SOFTMAX_SPARK_TEST_FAIL_FIRST_ATTEMPT_DIR"


def injected_failure_dir() -> str | None:
    """The marker directory of ``_maybe_fail_first_attempt`` when a test set
    ``FAIL_FIRST_ATTEMPT_ENV`` in the driver's environment, else None (always, in production)."""
    return os.environ.get(FAIL_FIRST_ATTEMPT_ENV) or None


def _maybe_fail_first_attempt(marker_dir: str, partition: int, iteration: int) -> None:
    """Test-only fault injection: fail the first attempt of each task once per (partition,
    iteration) pair, recorded by a marker file (retries then succeed)."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    marker = os.path.join(marker_dir, f"failed-{iteration}-{partition}")
    if ctx is not None and ctx.attemptNumber() == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"injected failure: partition {partition}, iteration {iteration}")


def _merge(a, b):
    """Merge (accumulator, missing partitions) pairs; ``None`` is the empty accumulator (the
    zero value travels with every task and is deep-copied: it must not be model-sized)."""
    acc_a, missing_a = a
    acc_b, missing_b = b
    if acc_a is None or acc_b is None:
        return (acc_b if acc_a is None else acc_a), missing_a + missing_b
    return acc_a.merge(acc_b), missing_a + missing_b


def merge_in_order(parts):
    """Per-partition (accumulator, missing) pairs, in partition order, merged into one pair
    (accumulator ``None`` when there were none): every path merges the same way."""
    merged = (None, [])
    for part in parts:
        merged = _merge(merged, part)
    return merged


def _is_ingested(obj) -> bool:
    """An ``IngestedData`` (or Connect's), not its blocks — asked of the type: a DataFrame
    answers any attribute name with a Column."""
    return callable(getattr(type(obj), "rebuild", None))


def loss_and_gradient(self, coef, intercept, iteration: int = 0, batch_fraction: float = 1.0,
                      seed: int = 0) -> PassResult:
    """Mean loss and gradients (no L2) at (coef, intercept) over all rows or a minibatch: one pass
    of ``LossGradKernel`` through ``self.run`` — the ``__call__`` of every loss over data
    (``DistributedLoss``, ``driver_data.DriverLoss``), which differ only in how they run a pass."""
    coef = np.ascontiguousarray(coef, dtype=np.float64)
    intercept = np.zeros(self.n_classes) if intercept is None else np.asarray(intercept, dtype=np.float64)
    acc = self.run(LossGradKernel(self.fit_intercept), (coef, intercept), iteration, batch_fraction, seed)
    if acc.weight_sum <= 0:
        # an empty minibatch: no information this step
        return PassResult(0.0, np.zeros((self.n_classes, self.n_features)), np.zeros(self.n_classes), 0.0, 0)
    loss, grad_coef, grad_intercept = acc.result()
    return PassResult(loss, grad_coef, grad_intercept, acc.weight_sum, acc.count)


class DistributedLoss:
    """Block kernels over a persisted RDD of block descriptors; the data term of J by default.

    Parameters
    ----------
    blocks : RDD of ``ingest.BlockDescriptor`` (persisted: it pins each task to its files), or an
        ``ingest.IngestedData`` (whose ``rebuild()`` is then used when files go missing)
    n_classes, n_features : ints
    fit_intercept : bool
    aggregation_depth : treeAggregate depth (≥ 1)
    rebuild : callable returning a new blocks RDD (or ``IngestedData``), called when a pass finds
        files missing; default: the ``IngestedData``'s own ``rebuild``
    fail_marker_dir : test-only; see ``_maybe_fail_first_attempt``
    label : names the Spark jobs ("softmax_spark: <label> pass, iteration <t>")
    class_weight : ndarray of shape (n_classes,) or None — multiplies each row's sample weight
    resident : bool — under a local master, run the passes on ``resident`` tasks (one Spark job
        for many passes, a task per core, each partition's sums as a job computes them) instead of
        a Spark job each; a pass they cannot run falls back to a job

    Notes
    -----
    The block format (dense or CSR) is each descriptor's own: a kernel gets whichever its block holds.
    """

    def __init__(self, blocks, n_classes, n_features, fit_intercept=True, aggregation_depth=2,
                 rebuild=None, fail_marker_dir=None, label="train", class_weight=None, resident=True):
        self.data = None
        if _is_ingested(blocks):  # an IngestedData
            self.data, blocks = blocks, blocks.blocks
        self.blocks = blocks
        self.n_classes = n_classes
        self.n_features = n_features
        self.fit_intercept = fit_intercept
        self.aggregation_depth = aggregation_depth
        self.rebuild = rebuild
        self.fail_marker_dir = fail_marker_dir
        self.label = label
        self.class_weight = None if class_weight is None else np.asarray(class_weight, dtype=np.float64)
        # fault injection targets Spark's task retries, which resident tasks do not go through
        self.resident = resident and fail_marker_dir is None
        self.passes = 0
        self._partitions_of = None  # the blocks RDD whose partition count is cached
        self._partitions = 0
        self._descriptors_of = None  # the blocks RDD whose descriptors are held, per partition
        self._descriptors = None
        self._slots = None  # tasks that can run at once under a local master (0: not local)

    __call__ = loss_and_gradient

    def run(self, kernel, payload, iteration: int = 0, batch_fraction: float = 1.0, seed: int = 0,
            label: str | None = None):
        """One distributed pass of ``kernel``: broadcast ``payload`` → ``kernel.add`` over every
        chunk of every block (or of the minibatch) → ``treeAggregate`` of the accumulators →
        destroy the broadcast. Returns the merged accumulator (sums; the caller divides).

        A pass in which some task found its block files missing (and could not rewrite them
        from the input) is discarded: the blocks are rebuilt and the pass run again (at most
        twice), so partial sums are never returned. Raises ``InputError`` for bad input found
        by a task, ``RuntimeError`` if the files cannot be rebuilt.
        """
        for _ in range(3):
            acc, missing = self._pass(kernel, payload, iteration, batch_fraction, seed, label or self.label)
            if not missing:
                return acc
            # a task ran where its block file is not: rebuild everything, never return partial sums
            self._rebuild(missing)
        raise RuntimeError(f"block files still missing after rebuilding: partitions {sorted(missing)}")

    def _rebuild(self, missing) -> None:
        resident.close(self.blocks.context)  # the rebuild's jobs need the cores
        rebuild = self.rebuild or (self.data.rebuild if self.data is not None else None)
        if rebuild is None:
            raise RuntimeError(f"block files missing for partitions {sorted(missing)} and no way to rebuild")
        fresh = rebuild()
        if _is_ingested(fresh):
            self.data, fresh = fresh, fresh.blocks
        self.blocks = fresh

    def _n_partitions(self) -> int:
        """The blocks RDD's partition count (a JVM round trip: asked once per blocks RDD)."""
        if self._partitions_of is not self.blocks:
            self._partitions = self.blocks.getNumPartitions()
            self._partitions_of = self.blocks
        return self._partitions

    def _tree_levels(self, n_partitions: int) -> bool:
        """Whether ``treeAggregate`` at ``aggregation_depth`` would add a level over the
        partitions (PySpark's own rule); if not, collecting the per-partition sums and merging
        them on the driver, in partition order, is the same sum with less scheduling."""
        if self.aggregation_depth <= 1:
            return False
        scale = max(int(np.ceil(n_partitions ** (1.0 / self.aggregation_depth))), 2)
        return n_partitions > scale + n_partitions / scale

    def _partition_descriptors(self) -> list:
        """Each partition's block descriptors, in partition order (one job per blocks RDD)."""
        if self._descriptors_of is not self.blocks:
            resident.close(self.blocks.context)  # its tasks hold the cores this job needs
            self._descriptors = self.blocks.glom().collect()
            self._descriptors_of = self.blocks
        return self._descriptors

    def _resident_pass(self, kernel, payload, iteration, batch_fraction, seed):
        """The pass on ``resident`` tasks as (accumulator, missing), or None: run it as a job."""
        sc = self.blocks.context
        if self.resident and self._slots is None:
            self._slots = resident.local_slots(sc) or 0  # a JVM round trip: asked once
        if not self.resident or not self._slots:
            return None
        args = (self.n_classes, self.n_features, batch_fraction, seed, iteration, None, self.class_weight)
        sums = resident.run(sc, self._slots, kernel, payload, self._partition_descriptors(), args)
        if sums is None:  # they failed or did not start: this loss runs jobs from now on
            self.resident = False
            return None
        self.passes += 1
        acc, missing = merge_in_order(sums)  # as the collect path below merges
        return (kernel.zero(self.n_classes, self.n_features) if acc is None else acc), missing

    def _pass(self, kernel, payload, iteration, batch_fraction, seed, label):
        done = self._resident_pass(kernel, payload, iteration, batch_fraction, seed)
        if done is not None:
            return done
        sc = self.blocks.context
        resident.close(sc)  # a job waits for cores that resident tasks hold
        inline = payload_nbytes(payload) <= INLINE_PAYLOAD_BYTES
        bc = _Inline(payload) if inline else sc.broadcast(payload)
        sc.setJobDescription(f"softmax_spark: {label} pass, iteration {iteration}")
        try:
            fn = _partition_sums(bc, kernel, self.n_classes, self.n_features, batch_fraction, seed, iteration,
                                 self.fail_marker_dir, self.class_weight)
            sums = self.blocks.mapPartitions(fn)
            if self._tree_levels(self._n_partitions()):
                acc, missing = sums.treeAggregate((None, []), _merge, _merge, self.aggregation_depth)
            else:
                # one stage, one result per partition: merged here in partition order, as
                # treeAggregate's final reduce would (the same floating-point sums)
                acc, missing = merge_in_order(sums.collect())
            return (kernel.zero(self.n_classes, self.n_features) if acc is None else acc), missing
        except Exception as exc:
            raise_task_error(exc)
            raise
        finally:
            self.passes += 1
            sc.setJobDescription(None)
            if not inline:
                bc.destroy()


def make_loss(blocks, *args, **kwargs) -> DistributedLoss:
    """``DistributedLoss(blocks, ...)`` for the session behind ``blocks``: on Spark Connect
    (blocks a DataFrame, or a ``connect_backend.ConnectIngestedData``) the DataFrame-only
    ``connect_backend.ConnectLoss``, else the RDD path."""
    from softmax_spark.spark.connect_backend import ConnectLoss, is_connect
    from softmax_spark.spark.driver_data import DriverData, DriverLoss

    if isinstance(blocks, DriverData):  # a small set held in the driver
        return DriverLoss(blocks, *args, **kwargs)
    if is_connect(blocks.blocks if _is_ingested(blocks) else blocks):
        return ConnectLoss(blocks, *args, **kwargs)
    return DistributedLoss(blocks, *args, **kwargs)
