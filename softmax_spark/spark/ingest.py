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

The ingest's parts, one module each: ``blocks`` (block descriptors and the ingest task bodies),
``block_writer`` (validating Arrow batches into one partition's files), ``moments`` (statistics and
the block-format rule), ``data_summary`` (the merged summary), ``run_dir`` (run directories and
their ownership), ``input_files`` (reading the input, input stamps), ``classic_ingest`` (the
classic session's driver side, ``IngestedData``) and ``connect_backend`` (Spark Connect's);
``backend.backend_for`` picks between the last two. This module is the entry point and keeps the
names callers imported from it before the split.
"""

from __future__ import annotations

from softmax_spark.core.features import FeatureSpec
from softmax_spark.core.labels import discover_classes  # noqa: F401 - re-exported
from softmax_spark.spark import connect_backend  # noqa: F401 - registers the "connect" engine
from softmax_spark.spark.backend import BlockData, backend_for
from softmax_spark.spark.block_writer import (_FILES, _BlockWriter, _scipy_available, _write_blocks,  # noqa: F401
                                              label_dtype_for)
from softmax_spark.spark.blocks import BlockDescriptor, _arrow_ingest_fn, _to_descriptor  # noqa: F401
from softmax_spark.spark.classic_ingest import IngestedData, remove_blocks  # noqa: F401
from softmax_spark.spark.data_summary import DataSummary, _summarise, run_block_format, summarise_records  # noqa: F401
from softmax_spark.spark.input_files import (BATCH_VALUES, InputChangedError, check_input_unchanged,  # noqa: F401
                                             input_stamps, plan_file_units, read_parquet)
from softmax_spark.spark.moments import (FULL_COVARIANCE_MAX_FEATURES, batch_moments, choose_block_format,  # noqa: F401
                                         merge_moments, sparse_batch_moments)
from softmax_spark.spark.run_dir import OWNER_SUFFIX, _local_dir, _proc_stat, remove_stale_run_dirs  # noqa: F401
# check_columns: re-exported: one column check for training and scoring
from softmax_spark.spark.schema import check_columns, storage_dtype  # noqa: F401

__all__ = ["BlockDescriptor", "DataSummary", "IngestedData", "InputChangedError", "read_parquet", "check_columns",
           "discover_classes", "ingest", "choose_block_format", "input_stamps", "check_input_unchanged"]


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
) -> BlockData:
    """Build the executor-local blocks on ``df``'s session backend (``backend.backend_for``);
    returns a ``BlockData`` (``IngestedData``, or ``ConnectIngestedData`` on Spark Connect).

    ``files``: the Parquet files behind ``df`` (``df.inputFiles()``) — when given and readable
    by pyarrow, tasks read their row groups directly (the fast path); otherwise the rows come
    from Spark through ``mapInArrow``. ``n_partitions``: how many blocks (a few large
    partitions beat many small ones: each task costs ~50 ms; default the backend's
    ``default_parallelism``). ``dtype``: the cache's, "float64", "float32" or "auto"
    (``schema.storage_dtype``). ``block_format``: "auto" (the measured density of the whole run
    decides, ``run_block_format``), "dense" or "csr". With "auto" each task first picks its
    partition's format; when partitions of different densities picked apart, one more job
    converts the blocks that differ in place, so a run has one format.
    Raises ``ValueError`` for an unknown ``block_format``, ``InputError`` (one line: column,
    partition, row) for bad input; nothing is left behind.
    """
    if block_format not in ("auto", "dense", "csr"):
        raise ValueError(f"block_format {block_format!r}: expected auto, dense or csr")
    dtype = storage_dtype(dtype, df.schema, spec)  # "auto": float32 for array<float> features
    return backend_for(df).ingest(df=df, spec=spec, label_col=label_col, classes=list(classes), weight_col=weight_col,
                                  dtype=dtype, n_partitions=n_partitions, n_features=n_features, files=files,
                                  block_format=block_format)
