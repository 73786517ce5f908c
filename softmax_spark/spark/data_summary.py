"""``DataSummary``: what the ingest learnt about the training data, merged over the partitions'
ingest records (rows per class, weighted moments, density, block formats, cached bytes), and the
run's one block format (``run_block_format``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.block_writer import _scipy_available
from softmax_spark.spark.blocks import _to_descriptor
from softmax_spark.spark.moments import choose_block_format, merge_moments

__all__ = ["DataSummary", "run_block_format", "summarise_records"]


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
