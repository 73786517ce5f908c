"""Arrow record batches → numpy feature matrices, labels and weights, with validation.

Pure pyarrow + numpy (no Spark): runs inside Spark's Python workers (``mapInArrow``) for both
training ingest and scoring, and in tests without Spark.

Accepted feature columns
------------------------
- one column (``features_col``) of array<double>, array<float> (any list type) or a dense
  Spark ML ``Vector`` (Arrow: struct<type, size, indices, values>, type 1 = dense);
- or several numeric columns (``feature_cols``), one feature each.
Sparse vectors are refused with a clear error.

Every error is an ``InputError`` whose one-line message names the column, the partition and row
(``where`` says which partition) and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError

__all__ = ["FeatureSpec", "features_to_numpy", "labels_to_python", "weights_to_numpy"]


@dataclass(frozen=True)
class FeatureSpec:
    """Where the features are: one vector/array column, or a tuple of numeric columns."""

    features_col: str | None = "features"
    feature_cols: tuple[str, ...] | None = None

    def __post_init__(self):
        if (self.features_col is None) == (not self.feature_cols):
            raise InputError("give exactly one of --features-col or --feature-cols")

    @property
    def columns(self) -> list[str]:
        return list(self.feature_cols) if self.feature_cols else [self.features_col]

    def describe(self) -> str:
        return ",".join(self.feature_cols) if self.feature_cols else self.features_col

    def to_dict(self) -> dict:
        return {"features_col": self.features_col, "feature_cols": list(self.feature_cols or []) or None}


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _list_to_matrix(col: pa.Array, name: str, dtype, where: str, row_offset: int) -> np.ndarray:
    """list<float|double> array of equal-length rows → ndarray (n_rows, n_features)."""
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(
            f"column '{name}': null feature array at {where} row {row_offset + bad}, expected an array of numbers"
        )
    n = len(col)
    if isinstance(col, pa.FixedSizeListArray):
        width = col.type.list_size
        values = col.flatten()
    else:
        lengths = np.asarray(pc.list_value_length(col))
        width = int(lengths[0]) if n else 0
        if n and np.any(lengths != width):
            bad = _first_bad_row(lengths != width)
            raise InputError(
                f"column '{name}': feature array of length {int(lengths[bad])} at {where} row "
                f"{row_offset + bad}, expected {width} like the first row of the batch"
            )
        values = col.flatten()
    if values.null_count:
        bad_value = _first_bad_row(np.asarray(values.is_null()))
        raise InputError(
            f"column '{name}': null element inside the feature array at {where} row "
            f"{row_offset + bad_value // max(width, 1)}, expected finite numbers"
        )
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise InputError(f"column '{name}': array of {values.type}, expected array<double> or array<float>")
    flat = values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return flat.reshape(n, width)


def _vector_to_matrix(col: pa.Array, name: str, dtype, where: str, row_offset: int) -> np.ndarray:
    """Spark ML Vector (struct<type,size,indices,values>) → dense matrix; sparse is refused."""
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(
            f"column '{name}': null feature vector at {where} row {row_offset + bad}, expected a dense vector"
        )
    kinds = np.asarray(col.field("type"))
    if np.any(kinds != 1):
        bad = _first_bad_row(kinds != 1)
        raise InputError(
            f"column '{name}': sparse vector at {where} row {row_offset + bad}; sparse features are "
            "not supported yet, expected dense vectors (e.g. pyspark.ml.functions.vector_to_array)"
        )
    return _list_to_matrix(col.field("values"), name, dtype, where, row_offset)


def _is_vector_struct(typ: pa.DataType) -> bool:
    return pa.types.is_struct(typ) and {f.name for f in typ} >= {"type", "values"}


def features_to_numpy(
    batch: pa.RecordBatch | pa.Table,
    spec: FeatureSpec,
    dtype=np.float64,
    where: str = "the input",
    row_offset: int = 0,
    n_features: int | None = None,
) -> np.ndarray:
    """Feature matrix of shape (n_rows, n_features) in ``dtype`` from one Arrow batch.

    Checks: no nulls, equal lengths (and ``n_features`` when given), every value finite.
    ``where`` (e.g. "partition 3") and ``row_offset`` locate rows in error messages.
    """
    if spec.feature_cols:
        columns = []
        for name in spec.feature_cols:
            col = batch.column(name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_boolean(col.type)):
                raise InputError(f"column '{name}' is {col.type}, expected a numeric column")
            if col.null_count:
                bad = _first_bad_row(np.asarray(col.is_null()))
                raise InputError(f"column '{name}': null value at {where} row {row_offset + bad}, expected a number")
            columns.append(col.to_numpy(zero_copy_only=False).astype(dtype, copy=False))
        X = np.column_stack(columns) if columns else np.empty((batch.num_rows, 0), dtype)
        names = list(spec.feature_cols)
    else:
        name = spec.features_col
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if _is_vector_struct(col.type):
            X = _vector_to_matrix(col, name, dtype, where, row_offset)
        elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
            X = _list_to_matrix(col, name, dtype, where, row_offset)
        else:
            raise InputError(
                f"column '{name}' is {col.type}, expected array<double>, array<float> or a dense ml Vector"
            )
        names = None
    if n_features is not None and X.shape[0] and X.shape[1] != n_features:
        raise InputError(
            f"column '{spec.describe()}': {X.shape[1]} features at {where} row {row_offset}, "
            f"expected {n_features}"
        )
    finite = np.isfinite(X)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        column = names[c] if names else f"{spec.features_col}[{c}]"
        raise InputError(
            f"column '{column}': non-finite value {X[r, c]} at {where} row {row_offset + int(r)}, "
            "expected finite numbers"
        )
    return X


def labels_to_python(col: pa.Array, name: str, where: str = "the input", row_offset: int = 0) -> list:
    """Label values as a Python list; a null label is an error naming the row."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(f"column '{name}': null label at {where} row {row_offset + bad}, expected a class label")
    return col.to_pylist()


def weights_to_numpy(col: pa.Array, name: str, where: str = "the input", row_offset: int = 0) -> np.ndarray:
    """Sample weights as float64, each finite and ≥ 0."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise InputError(f"column '{name}' is {col.type}, expected numeric sample weights")
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(f"column '{name}': null weight at {where} row {row_offset + bad}, expected a number ≥ 0")
    w = col.to_numpy(zero_copy_only=False).astype(np.float64)
    bad_mask = ~np.isfinite(w) | (w < 0)
    if bad_mask.any():
        bad = _first_bad_row(bad_mask)
        raise InputError(
            f"column '{name}': weight {w[bad]} at {where} row {row_offset + bad}, expected a finite number ≥ 0"
        )
    return w
