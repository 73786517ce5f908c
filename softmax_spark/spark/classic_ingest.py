"""The ingest on a classic session (RDD API): input → executor-local blocks, persisted descriptors.

``ingest_classic`` runs one job — the direct Parquet path (``SparkContext.parallelize`` over
row-group slices, read with pyarrow) or ``mapInArrow`` over Spark's rows — persists the
(descriptor, statistics) pairs, converts partitions to the run's one block format if they chose
apart, and returns an ``IngestedData``: the blocks, their summary, and how to rebuild, check and
release them. ``ingest.ingest`` is the entry point (it picks this or Spark Connect's).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark import resident
from softmax_spark.spark.backend import register
from softmax_spark.spark.blocks import (_DESCRIPTOR_SCHEMA, _arrow_ingest_fn, _convert_fn, _file_ingest_fn, _first,
                                        _split_record, _stored_format)
from softmax_spark.spark.data_summary import DataSummary, _summarise, run_block_format, summarise_records
from softmax_spark.spark.input_files import _input_files, check_input_unchanged, input_stamps, plan_file_units
from softmax_spark.spark.run_dir import _local_dir, _remove_run_dir
from softmax_spark.spark.tasks import raise_task_error

__all__ = ["ingest_classic", "IngestedData", "remove_blocks"]

log = logging.getLogger("softmax_spark")


def ingest_classic(df, spec: FeatureSpec, label_col: str, classes: list, weight_col: str | None = None,
                   dtype: str = "float64", n_partitions: int | None = None, n_features: int | None = None,
                   files: list[str] | None = None, block_format: str = "auto") -> "IngestedData":
    """``ingest.ingest`` on a classic session, its arguments already checked (``dtype`` a numpy
    name, not "auto"); returns an ``IngestedData``. Raises ``InputError`` for bad input (one line:
    column, partition, row); nothing is left behind."""
    from pyspark import StorageLevel  # pyspark is loaded by the caller's session; not at import time

    args = dict(df=df, spec=spec, label_col=label_col, classes=list(classes), weight_col=weight_col, dtype=dtype,
                n_partitions=n_partitions, n_features=n_features, files=files, block_format=block_format)
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
        fresh = ingest_classic(**self.args)
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
        resident.close(self.blocks.context)  # resident tasks read these blocks and hold the cores
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


register("classic", ingest=ingest_classic)
