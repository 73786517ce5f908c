"""The one module that knows about RDDs and broadcasts: (coef, intercept) → (loss, gradient).

Every evaluation: broadcast (coef, intercept) → each partition's task opens its memory-mapped
block (or draws its minibatch from it) and runs the vectorised kernel
(``loss.loss_and_gradient_sums``) over it in chunks → ``treeAggregate`` sums the accumulators →
the broadcast is destroyed → the driver divides by Σ s_i. Optimizers only ever see the
returned numbers.

Minibatches: partition p at iteration t keeps each row independently with probability
``batch_fraction``, from a generator seeded by (seed, t, p) — a retried task draws the same rows.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

from .errors import InputError
from .loss import LossAccumulator

__all__ = ["DistributedLoss", "PassResult", "raise_task_error", "minibatch_rows"]

CHUNK_ROWS = 32768  # rows per kernel call: big enough for BLAS-3, small enough for cache


class PassResult(NamedTuple):
    """Data-term means over the rows used (no L2); ``n_rows`` the rows that took part."""

    loss: float
    grad_coef: np.ndarray  # of shape (n_classes, n_features)
    grad_intercept: np.ndarray  # of shape (n_classes,)
    weight_sum: float
    n_rows: int


_TASK_ERROR = re.compile(r"softmax_spark\.errors\.InputError: (.*)")


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


def _partition_sums(bc, fit_intercept, fraction, seed, iteration, fail_marker, class_weight):
    """The task body: sums over the blocks of one partition (closure; no Spark objects)."""

    def run(descriptors):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        # BLAS threads = the cores this task owns (spark.task.cpus): no oversubscription
        blas_threads = max(1, ctx.cpus()) if ctx is not None else 1
        coef, intercept = bc.value
        acc = LossAccumulator(*coef.shape)
        missing = []
        for d in descriptors:
            if fail_marker:
                _maybe_fail_first_attempt(fail_marker, d.partition, iteration)
            local = d.local()  # its files, or a copy here rebuilt from the input slices
            if local is None:
                missing.append(d.partition)
                continue
            X, y_index, w = local.open()
            if class_weight is not None:
                # s_i ← s_i · class_weight[y_i]: the weights enter the kernel as plain sample weights
                w = class_weight[y_index] if w is None else w * class_weight[y_index]
            rows = minibatch_rows(d.n_rows, fraction, seed, iteration, d.partition)
            _limit_blas_threads(blas_threads)
            b = intercept if fit_intercept else None
            if rows is None:
                for start in range(0, d.n_rows, CHUNK_ROWS):
                    sl = slice(start, start + CHUNK_ROWS)
                    acc.add(coef, b, X[sl], y_index[sl], None if w is None else w[sl])
            else:
                for start in range(0, len(rows), CHUNK_ROWS):
                    idx = rows[start:start + CHUNK_ROWS]
                    acc.add(coef, b, X[idx], y_index[idx], None if w is None else w[idx])
            del X
        yield acc, missing

    return run


_blas_threads_set = None


def _limit_blas_threads(n: int) -> None:
    """Limit BLAS to the task's cores, once per (reused) Python worker: threadpoolctl's library
    scan costs milliseconds, too much to repeat on every pass."""
    global _blas_threads_set
    if _blas_threads_set != n:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        _blas_threads_set = n


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
    acc_a, missing_a = a
    acc_b, missing_b = b
    return acc_a.merge(acc_b), missing_a + missing_b


class DistributedLoss:
    """The data term of J and its gradient over a persisted RDD of block descriptors.

    Parameters
    ----------
    blocks : RDD of ``ingest.BlockDescriptor`` (persisted: it pins each task to its files)
    n_classes, n_features : ints
    fit_intercept : bool
    aggregation_depth : treeAggregate depth (≥ 1)
    rebuild : callable returning a new blocks RDD, called when a pass finds files missing
    fail_marker_dir : test-only; see ``_maybe_fail_first_attempt``
    class_weight : ndarray of shape (n_classes,) or None — multiplies each row's sample weight
    """

    def __init__(self, blocks, n_classes, n_features, fit_intercept=True, aggregation_depth=2,
                 rebuild=None, fail_marker_dir=None, label="train", class_weight=None):
        self.blocks = blocks
        self.n_classes = n_classes
        self.n_features = n_features
        self.fit_intercept = fit_intercept
        self.aggregation_depth = aggregation_depth
        self.rebuild = rebuild
        self.fail_marker_dir = fail_marker_dir
        self.label = label
        self.class_weight = None if class_weight is None else np.asarray(class_weight, dtype=np.float64)
        self.passes = 0

    def __call__(self, coef, intercept, iteration: int = 0, batch_fraction: float = 1.0, seed: int = 0) -> PassResult:
        """Mean loss and gradients (no L2) at (coef, intercept) over all rows or a minibatch."""
        for _ in range(3):
            acc, missing = self._pass(coef, intercept, iteration, batch_fraction, seed)
            if not missing:
                break
            if self.rebuild is None:
                raise RuntimeError(f"block files missing for partitions {sorted(missing)} and no way to rebuild")
            # a task ran where its block file is not: rebuild everything, never return partial sums
            self.blocks = self.rebuild()
        else:
            raise RuntimeError(f"block files still missing after rebuilding: partitions {sorted(missing)}")
        if acc.weight_sum <= 0:
            # an empty minibatch: no information this step
            return PassResult(0.0, np.zeros((self.n_classes, self.n_features)), np.zeros(self.n_classes), 0.0, 0)
        loss, grad_coef, grad_intercept = acc.result()
        return PassResult(loss, grad_coef, grad_intercept, acc.weight_sum, acc.count)

    def _pass(self, coef, intercept, iteration, batch_fraction, seed):
        sc = self.blocks.context
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        intercept = np.zeros(self.n_classes) if intercept is None else np.asarray(intercept, dtype=np.float64)
        bc = sc.broadcast((coef, intercept))
        sc.setJobDescription(f"softmax_spark: {self.label} pass, iteration {iteration}")
        try:
            fn = _partition_sums(bc, self.fit_intercept, batch_fraction, seed, iteration,
                                 self.fail_marker_dir, self.class_weight)
            zero = (LossAccumulator(self.n_classes, self.n_features), [])
            return self.blocks.mapPartitions(fn).treeAggregate(zero, _merge, _merge, self.aggregation_depth)
        except Exception as exc:
            raise_task_error(exc)
            raise
        finally:
            self.passes += 1
            sc.setJobDescription(None)
            bc.destroy()
