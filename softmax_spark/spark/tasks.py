"""What runs inside a Spark task of a pass, on every backend: the task body, its chunks and
minibatches, BLAS threads, the worker's garbage-collector freeze, test fault injection, and the
driver-side merge of the per-partition sums and mapping of a task's ``InputError``.

A leaf module (numpy; pyspark only inside task functions, which run where pyspark is loaded
already): ``distributed`` (classic jobs), ``resident`` (resident tasks) and ``connect_backend``
(Spark Connect) all run ``partition_sums`` and merge with ``merge_in_order``, so the three
backends add the same numbers in the same order.
"""

from __future__ import annotations

import os
import re

import numpy as np

from softmax_spark.core.errors import InputError

__all__ = ["CHUNK_ROWS", "CSR_CHUNK_ROWS", "CHUNK_NNZ", "raise_task_error", "minibatch_rows", "row_chunks",
           "Inline", "SHIP_INLINE_BYTES", "payload_nbytes", "partition_sums", "import_task", "limit_task_blas_threads",
           "FAIL_FIRST_ATTEMPT_ENV", "injected_failure_dir", "merge", "merge_in_order"]

# Rows per kernel call. Dense: 4,096 keeps the (n, C) logits and a float32 chunk's float64 copy in
# cache and under malloc's mmap threshold; one BLAS thread, the same rows in 4,096- vs 32,768-row
# chunks: 64 × 10 39 vs 44 ms (131,072 rows), float32 64 × 10 25 vs 39 ms (131,072 rows),
# 128 × 200 231 vs 269 ms (65,536 rows), 784 × 10 equal. CSR: 32,768 (a sparse call's fixed
# scipy cost: 283 ms vs 346 ms in 4,096-row chunks for 65,536 rows of 40 non-zeros in 131,072
# columns, 20 classes).
CHUNK_ROWS = 4096
CSR_CHUNK_ROWS = 32768
CHUNK_NNZ = 1 << 22  # CSR blocks: also ≤ 4M stored values per call (a chunk's values are copied)


# Payloads (a pass's (coef, intercept), a scorer's coefficients) up to this size travel inside the
# task closure instead of a broadcast: a broadcast costs a temp file, JVM round trips to create and
# destroy it, and a read in every worker — milliseconds that dominate a pass on small data. PySpark
# broadcasts a closure itself once it exceeds ``spark.broadcast`` threshold, so larger payloads keep
# an explicit broadcast. (Spark Connect has no broadcast: there every payload travels in the plan.)
SHIP_INLINE_BYTES = 256 * 1024


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


class Inline:
    """A small payload shipped inside the task closure, read like a broadcast (``.value``;
    ``destroy()`` does nothing: it goes with the closure)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        return self.value

    def __setstate__(self, value):
        self.value = value

    def destroy(self) -> None:
        pass


def payload_nbytes(payload) -> int:
    """Bytes of the ndarrays in ``payload`` (nested tuples / lists); other objects count 0."""
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    if isinstance(payload, (tuple, list)):
        return sum(payload_nbytes(p) for p in payload)
    return 0


def partition_sums(bc, kernel, n_classes, n_features, fraction, seed, iteration, fail_marker, class_weight):
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


def merge(a, b):
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
        merged = merge(merged, part)
    return merged


# the names the modules used before the split (tests and docs name them)
_Inline, _partition_sums, _merge = Inline, partition_sums, merge
