"""Spark Connect backend: the ingest and the distributed passes with DataFrame APIs only.

A Spark Connect session (``SparkSession.builder.remote("sc://host:port")``, ``spark-submit
--remote sc://…``) has no RDD API — no ``mapPartitions`` on an RDD, ``treeAggregate``,
``broadcast`` or ``sparkContext``. On such a session the same work runs as:

- ingest (``ingest_connect``): one ``mapInArrow`` over the input rows whose function writes the
  executor-local blocks (``ingest._arrow_ingest_fn``, the classic path's own) and returns one
  descriptor row per partition; that descriptor DataFrame is cached (``.cache()`` + the
  ``collect`` that reads the statistics), so each later pass is scheduled where its cached
  descriptor — and so its block file — lives, as the persisted RDD is on a classic session.
- a pass (``ConnectLoss._pass``): one ``mapInArrow`` over the cached descriptors whose function
  carries the payload (e.g. (coef, intercept)) in its closure, cloudpickled with it into the
  plan (Connect has no broadcast), runs ``distributed._partition_sums`` (the classic task body:
  same kernels, chunks, minibatches, class weights) and returns one row per partition holding
  its pickled accumulator; the driver merges them in partition order (``distributed.merge_in_order``).

Everything above the pass (``DistributedLoss.run``'s missing-block rebuild, problems, solvers,
checkpoints) is shared. ``backend.backend_for`` picks this backend from the session's type: no flag.

Costs against the classic path: the payload travels inside each pass's plan (gRPC; Spark
Connect's default limit on one message is 128 MiB, ``spark.connect.grpc.maxInboundMessageSize``),
and every partition's accumulator reaches the driver (no tree): fine for a few hundred
partitions of gradient-sized sums, heavy for Hessian-sized ones on many partitions.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.spark.backend import is_connect, register  # noqa: F401 - is_connect: re-exported (its home before)
from softmax_spark.spark.blocks import _DESCRIPTOR_SCHEMA, _arrow_ingest_fn, _split_record, _to_descriptor
from softmax_spark.spark.classic_ingest import IngestedData
from softmax_spark.spark.data_summary import summarise_records
from softmax_spark.spark.distributed import DistributedLoss
from softmax_spark.spark.input_files import _input_files, check_input_unchanged, input_stamps
from softmax_spark.spark.run_dir import _local_dir
from softmax_spark.spark.tasks import Inline, merge_in_order, partition_sums, raise_task_error

__all__ = ["ClosurePayload", "ingest_connect", "ConnectIngestedData", "ConnectLoss"]

log = logging.getLogger("softmax_spark")

_PASS_SCHEMA = "partition int, sums binary"
_DESCRIPTOR_COLUMNS = ["partition", "host", "path", "n_rows", "n_features", "dtype", "has_weights", "format", "nnz",
                       "label_dtype"]


# stands for a broadcast where Connect has none: the value travels pickled with the function
ClosurePayload = Inline


def _descriptors(batches):
    return [_to_descriptor(row) for batch in batches for row in batch.to_pylist()]


def _pass_fn(payload, kernel, n_classes, n_features, fraction, seed, iteration, fail_marker, class_weight):
    """``mapInArrow`` body of one pass: the classic task body over this partition's descriptors,
    its (accumulator, missing partitions) pickled into one row. No row for an empty partition."""
    body = partition_sums(Inline(payload), kernel, n_classes, n_features, fraction, seed, iteration,
                           fail_marker, class_weight)

    def run(batches):
        import pyarrow as pa

        descriptors = _descriptors(batches)
        if not descriptors:
            return
        for sums in body(descriptors):
            row = {"partition": descriptors[0].partition, "sums": pickle.dumps(sums, protocol=5)}
            yield pa.RecordBatch.from_pylist([row], schema=pa.schema([("partition", pa.int32()),
                                                                      ("sums", pa.binary())]))

    return run


class ConnectLoss(DistributedLoss):
    """``DistributedLoss`` over a cached descriptor DataFrame, for a Spark Connect session.

    Same parameters, ``run`` and ``__call__`` as ``DistributedLoss`` (``blocks``: the
    ``ConnectIngestedData`` or its ``blocks`` DataFrame); only the pass differs (module
    docstring). ``aggregation_depth`` is unused: the driver merges the per-partition sums."""

    def _pass(self, kernel, payload, iteration, batch_fraction, seed, label):
        fn = _pass_fn(payload, kernel, self.n_classes, self.n_features, batch_fraction, seed, iteration,
                      self.fail_marker_dir, self.class_weight)
        try:
            rows = self.blocks.mapInArrow(fn, _PASS_SCHEMA).collect()
        except Exception as exc:
            raise_task_error(exc)
            raise
        finally:
            self.passes += 1
        # partition order: the same sums in the same order on every run; our own tasks'
        # accumulators, unpickled as treeAggregate would (never a file)
        acc, missing = merge_in_order(pickle.loads(row["sums"])
                                      for row in sorted(rows, key=lambda r: r["partition"]))
        return (kernel.zero(self.n_classes, self.n_features) if acc is None else acc), missing


def _remove_fn(run_id: str | None):
    """``mapInArrow`` body: delete the block files of the descriptors given (or, with ``run_id``,
    that run's directory in this executor's local dir); returns no rows."""

    def remove(batches):
        if run_id is not None:
            for _ in batches:
                pass
            shutil.rmtree(os.path.join(_local_dir(), f"softmax_spark-{run_id}"), ignore_errors=True)
            return
        for d in _descriptors(batches):
            d.remove()
        yield from ()

    return remove


def _run_quietly(frame) -> None:
    """Best effort: run ``frame`` (cleanup) and ignore failures — it must never hide the outcome."""
    try:
        frame.collect()
    except Exception:  # noqa: BLE001 - Spark's local dirs go when the executors stop
        pass


@dataclass
class ConnectIngestedData(IngestedData):
    """``ingest.IngestedData`` for Spark Connect: ``blocks`` is the cached descriptor DataFrame
    (descriptor columns only), ``persisted`` the cached one with the statistics; rebuild and
    release use DataFrame operations only."""

    source: str = "spark rows (arrow, Spark Connect)"

    def rebuild(self) -> "ConnectIngestedData":
        """As ``IngestedData.rebuild``: check the input stamps (``InputChangedError`` when an input
        file changed since the ingest), ingest again, release the old blocks, update in place."""
        log.warning("block files %s missing on some executor; rebuilding them", self.run_id)
        self.check_input()
        self.release()
        fresh = ingest_connect(**self.args)
        self.persisted, self.blocks, self.summary = fresh.persisted, fresh.blocks, fresh.summary
        self.run_id, self.released = fresh.run_id, False
        return self

    def check_input(self) -> None:
        """``IngestedData.check_input`` with the client's view only: the stamps were taken with
        pyarrow here (no JVM on a Connect client for Hadoop's)."""
        check_input_unchanged(self.stamps, None, "since the ingest")

    def release(self) -> None:
        """Delete the block files on the executors and drop the cached descriptors (once)."""
        if self.released:
            return
        self.released = True
        _run_quietly(self.blocks.mapInArrow(_remove_fn(None), _PASS_SCHEMA))
        self.persisted.unpersist()


def ingest_connect(df, spec, label_col, classes, weight_col=None, dtype="float64", n_partitions=None,
                   n_features=None, files=None, block_format="auto") -> ConnectIngestedData:
    """``ingest.ingest`` on a Spark Connect session (same arguments, same blocks and summary).

    The rows always come from Spark (``mapInArrow``): ``files`` is ignored, as the direct
    Parquet path schedules its tasks with ``SparkContext.parallelize``. ``n_partitions``
    (``backend.ConnectBackend.ingest`` passes ``default_parallelism``; None keeps them) caps the partitions (``coalesce``; never a shuffle).
    Input stamps as on the classic path (``ingest.input_stamps``, before the first read; checked
    after the ingest and before every rebuild), taken here with pyarrow: files this client cannot
    reach (e.g. hdfs:// without libhdfs, or the server's local disk seen from another machine)
    are not checked. Block format: unlike the classic path (one format a run, ``ingest.run_block_format``),
    each partition keeps the format its own density picked (``choose_block_format``) — partitions
    of one data set have the same density, so this differs only for skewed input; ``block_format``
    "dense"/"csr" gives one format. Raises ``InputError`` for bad input; nothing is left behind."""
    args = dict(df=df, spec=spec, label_col=label_col, classes=list(classes), weight_col=weight_col, dtype=dtype,
                n_partitions=n_partitions, n_features=n_features, files=files, block_format=block_format)
    spark = df.sparkSession
    columns = spec.columns + [label_col] + ([weight_col] if weight_col else [])
    run_id = uuid.uuid4().hex[:12]
    plan = (spec, label_col, weight_col, list(classes), np.dtype(dtype), run_id, n_features, block_format)
    # before the first read: a change after this point is seen by every later check
    stamps = input_stamps(files if files else _input_files(df), None)
    frame = df.select(*columns)
    if n_partitions:
        frame = frame.coalesce(n_partitions)  # fewer partitions than asked: left as they are
    persisted = frame.mapInArrow(_arrow_ingest_fn(plan), _DESCRIPTOR_SCHEMA).cache()
    try:
        records = [_split_record(row)[1] for row in persisted.collect()]
    except Exception as exc:
        persisted.unpersist()
        # the blocks of partitions that finished before the failure
        n = 2 * (n_partitions or 2)
        _run_quietly(spark.range(0, n, 1, n).mapInArrow(_remove_fn(run_id), _PASS_SCHEMA))
        raise_task_error(exc)
        raise
    blocks = persisted.select(*_DESCRIPTOR_COLUMNS)
    try:
        summary = summarise_records(records, spec, classes)
        check_input_unchanged(stamps, None, "during the ingest")
    except InputError:
        _run_quietly(blocks.mapInArrow(_remove_fn(None), _PASS_SCHEMA))
        persisted.unpersist()
        raise
    log.info("blocks %s: %s, density %.3g, cached_bytes=%d (executor-local block files, Spark Connect)", run_id,
             ", ".join(f"{k} × {v}" for k, v in sorted(summary.block_formats.items())), summary.density,
             summary.cached_bytes)
    return ConnectIngestedData(persisted, blocks, summary, run_id, args=args, stamps=stamps)


register("connect", ingest=ingest_connect, loss=ConnectLoss)
