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

from typing import NamedTuple

import numpy as np

from softmax_spark.core.kernels import LossGradKernel
from softmax_spark.spark import resident
from softmax_spark.spark.backend import backend_for, register
# the task body and its helpers live in ``tasks`` (shared with ``resident`` and ``connect_backend``);
# re-exported here, where callers found them before
from softmax_spark.spark.tasks import (CHUNK_NNZ, CHUNK_ROWS, CSR_CHUNK_ROWS, FAIL_FIRST_ATTEMPT_ENV,  # noqa: F401
                                       Inline, import_task, injected_failure_dir, limit_task_blas_threads,
                                       merge, merge_in_order, minibatch_rows, partition_sums, payload_nbytes,
                                       raise_task_error, row_chunks, SHIP_INLINE_BYTES)

__all__ = ["DistributedLoss", "PassResult", "loss_and_gradient", "is_ingested"]

INLINE_PAYLOAD_BYTES = SHIP_INLINE_BYTES  # one threshold for every payload (``tasks.SHIP_INLINE_BYTES``)


class PassResult(NamedTuple):
    """Data-term means over the rows used (no L2); ``n_rows`` the rows that took part."""

    loss: float
    grad_coef: np.ndarray  # of shape (n_classes, n_features)
    grad_intercept: np.ndarray  # of shape (n_classes,)
    weight_sum: float
    n_rows: int



def is_ingested(obj) -> bool:
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
        if is_ingested(blocks):  # an IngestedData
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
        if is_ingested(fresh):
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
        bc = backend_for(sc).ship(payload)  # in the closure when small, else a broadcast
        sc.setJobDescription(f"softmax_spark: {label} pass, iteration {iteration}")
        try:
            fn = partition_sums(bc, kernel, self.n_classes, self.n_features, batch_fraction, seed, iteration,
                                 self.fail_marker_dir, self.class_weight)
            sums = self.blocks.mapPartitions(fn)
            if self._tree_levels(self._n_partitions()):
                acc, missing = sums.treeAggregate((None, []), merge, merge, self.aggregation_depth)
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
            bc.destroy()  # nothing to do for a payload in the closure


register("classic", loss=DistributedLoss)
