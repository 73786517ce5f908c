"""Arrow record batches → numpy feature matrices and sample weights, with validation.

(Labels → class positions: ``labels.label_positions``; the Spark-schema check: ``schema``.)

Pure pyarrow + numpy (no Spark): runs inside Spark's Python workers (``mapInArrow``) for both
training ingest and scoring, and in tests without Spark.

Accepted feature columns
------------------------
- one column (``features_col``) of array<double>, array<float> (any list of numbers), or a
  Spark ML ``Vector`` holding any mix of ``SparseVector`` and ``DenseVector`` rows (as
  ``VectorAssembler``, ``HashingTF``, ``CountVectorizer``, ``OneHotEncoder`` write them). In Arrow
  the ml Vector UDT is struct<type int8, size int32, indices list<int32>, values list<double>>:
  type 0 = sparse (size, indices, values), type 1 = dense (values only);
- or several numeric columns (``feature_cols``), one feature each: any Spark numeric type
  (byte, short, int, long, float, double, decimal) or boolean (0/1), converted to ``dtype``.

``features_to_numpy(..., sparse=True)`` returns a ``scipy.sparse.csr_matrix`` for an ml Vector
column (never densified; stored zeros of dense rows dropped) and an ndarray otherwise; with
``sparse=False`` (the default) a Vector column is densified, which only suits small widths.

Sparse rows are validated like MLlib's ``SparseVector`` constructor, one line per fault naming
column, partition and row: indices and values of different lengths, a negative index, an index
≥ size, a repeated index, unsorted indices, a size differing between rows (or from
``n_features``: the model's, or the first partition's at ingest), NaN or infinite values.

Every error is an ``InputError`` whose one-line message names the column, the partition and row
(``where`` says which partition) and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from softmax_spark.core.errors import NUMERIC_EXPECTED, VECTOR_EXPECTED, WEIGHT_EXPECTED, InputError, type_error

__all__ = ["FeatureSpec", "features_to_numpy", "weights_to_numpy"]


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

    @classmethod
    def of_model_options(cls, options: dict) -> "FeatureSpec | None":
        """The feature columns a model was trained on, from the training options in its metadata
        (``feature_cols``, else ``features_col``; ``to_dict``'s keys), or None if they name none."""
        if options.get("feature_cols"):
            return cls(features_col=None, feature_cols=tuple(str(c) for c in options["feature_cols"]))
        if options.get("features_col"):
            return cls(features_col=str(options["features_col"]))
        return None


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _is_number_type(typ: pa.DataType) -> bool:
    """Spark's numeric types as Arrow carries them (byte…long, float, double, decimal) and boolean."""
    return (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
            or pa.types.is_boolean(typ))


def _numbers_to_numpy(col: pa.Array) -> np.ndarray:
    """A null-free numeric Arrow array → ndarray (decimals through float64, booleans as 0/1)."""
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64())
    return col.to_numpy(zero_copy_only=False)


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
    if not _is_number_type(values.type):
        raise InputError(f"column '{name}': array of {values.type}, expected array<double> or array<float>")
    flat = _numbers_to_numpy(values).astype(dtype, copy=False)
    return flat.reshape(n, width)



def _row_positions(indptr: np.ndarray):
    """(row of each stored value, its place within the row), both int64 of shape (nnz,)."""
    counts = np.diff(indptr)
    row_of = np.repeat(np.arange(len(counts)), counts)
    return row_of, np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(indptr[:-1], counts)


def _vector_parts(col: pa.Array, name: str, where: str, row_offset: int, n_features: int | None):
    """Validate an ml Vector column; returns (indptr, indices, values, width) of its CSR form.

    ``indptr`` int64 of shape (n + 1,), ``indices`` int64 and ``values`` (float64, as Spark
    stores them) of shape (nnz,); dense rows contribute every stored value with indices 0..D−1.
    ``indices`` is None when no row is sparse (then every row holds ``width`` values).
    Vectorised over the batch (no loop over rows).
    """
    n = len(col)
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(
            f"column '{name}': null feature vector at {where} row {row_offset + bad}, expected an ml Vector"
        )
    parts = dict(zip([f.name for f in col.type], col.flatten()))
    kinds = parts["type"].to_numpy(zero_copy_only=False)
    if np.any((kinds != 0) & (kinds != 1)):
        bad = _first_bad_row((kinds != 0) & (kinds != 1))
        raise InputError(f"column '{name}': vector type {int(kinds[bad])} at {where} row {row_offset + bad}, "
                         "expected 0 (sparse) or 1 (dense)")
    values_list = parts["values"]
    if values_list.null_count:
        bad = _first_bad_row(np.asarray(values_list.is_null()))
        raise InputError(f"column '{name}': vector without values at {where} row {row_offset + bad}")
    voff = np.asarray(values_list.offsets, dtype=np.int64)
    voff = voff - voff[0]
    vlen = np.diff(voff)
    values = values_list.flatten()
    if values.null_count:
        bad = int(np.searchsorted(voff, _first_bad_row(np.asarray(values.is_null())), side="right") - 1)
        raise InputError(f"column '{name}': null value inside the vector at {where} row {row_offset + bad}, "
                         "expected finite numbers")
    values = values.to_numpy(zero_copy_only=False)
    sparse_rows = kinds == 0
    sizes = vlen.copy()
    if sparse_rows.any():
        size_field = parts["size"]
        no_size = sparse_rows & np.asarray(size_field.is_null())
        if no_size.any():
            bad = _first_bad_row(no_size)
            raise InputError(f"column '{name}': sparse vector without a size at {where} row {row_offset + bad}")
        sizes[sparse_rows] = size_field.fill_null(0).to_numpy(zero_copy_only=False)[sparse_rows]
        index_list = parts["indices"]
        ioff = np.asarray(index_list.offsets, dtype=np.int64)
        ioff = ioff - ioff[0]
        ilen = np.diff(ioff)
        mismatch = sparse_rows & (ilen != vlen)
        if mismatch.any():
            bad = _first_bad_row(mismatch)
            raise InputError(
                f"column '{name}': sparse vector with {int(ilen[bad])} indices and {int(vlen[bad])} values at "
                f"{where} row {row_offset + bad}, expected as many indices as values"
            )
        flat_index = index_list.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    width = int(n_features) if n_features is not None else (int(sizes[0]) if n else 0)
    wrong = sizes != width
    if wrong.any():
        bad = _first_bad_row(wrong)
        origin = "" if n_features is not None else " like the first row of the batch"
        raise InputError(f"column '{name}': vector of size {int(sizes[bad])} at {where} row {row_offset + bad}, "
                         f"expected size {width}{origin}")
    any_sparse = bool(sparse_rows.any())
    row_of = indices = None
    if any_sparse:  # dense-only batches need no index arrays (n·D of them)
        row_of, position = _row_positions(voff)
        if sparse_rows.all():
            indices = flat_index  # same layout as the values (lengths checked above)
        else:
            at = sparse_rows[row_of]
            indices = position
            indices[at] = flat_index[ioff[row_of[at]] + position[at]]
        checks = [
            (indices < 0, "negative index {j}"),
            (indices >= width, "index {j} ≥ size " + str(width)),
        ]
        for mask, what in checks:
            if mask.any():
                k = _first_bad_row(mask)
                raise InputError(f"column '{name}': sparse vector with {what.format(j=int(indices[k]))} at {where} "
                                 f"row {row_offset + int(row_of[k])}, expected indices in [0, {width})")
        same_row = row_of[1:] == row_of[:-1]
        step = np.diff(indices)
        for mask, what in ((same_row & (step == 0), "repeated index"), (same_row & (step < 0), "unsorted indices")):
            if mask.any():
                k = _first_bad_row(mask)
                raise InputError(f"column '{name}': sparse vector with {what} ({int(indices[k])}, "
                                 f"{int(indices[k + 1])}) at {where} row {row_offset + int(row_of[k])}, "
                                 "expected strictly increasing indices")
    finite = np.isfinite(values)
    if not finite.all():
        k = _first_bad_row(~finite)
        if row_of is None:
            row_of, indices = _row_positions(voff)
        raise InputError(f"column '{name}[{int(indices[k])}]': non-finite value {values[k]} at {where} row "
                         f"{row_offset + int(row_of[k])}, expected finite numbers")
    return voff, indices, values, width, bool(sparse_rows.any())


def _vector_to_dense(parts, n_rows: int, dtype) -> np.ndarray:
    """The validated parts of ``_vector_parts`` → ndarray (n_rows, size) (numpy only)."""
    indptr, indices, values, width, any_sparse = parts
    if not any_sparse:
        return values.astype(dtype, copy=False).reshape(n_rows, width)
    X = np.zeros((n_rows, width), dtype=dtype)
    X[np.repeat(np.arange(n_rows), np.diff(indptr)), indices] = values
    return X


def _vector_to_csr(parts, n_rows: int, dtype):
    """The validated parts of ``_vector_parts`` → csr_matrix (n_rows, size) of ``dtype``:
    stored zeros dropped, int32 indices (Spark's sizes are int32) and row pointers, int64 both
    when the batch holds ≥ 2³¹ values (scipy wants one index dtype)."""
    import scipy.sparse as sp  # only here: executors need scipy for sparse data only

    indptr, indices, values, width, _ = parts
    if indices is None:
        indices = _row_positions(indptr)[1]
    keep = values != 0
    if not keep.all():  # dense rows carry their zeros: drop them (cached bytes ∝ non-zeros)
        kept_before = np.concatenate([[0], np.cumsum(keep)])  # kept values before each position
        indptr = kept_before[indptr]
        indices, values = indices[keep], values[keep]
    index_dtype = np.int32 if indptr[-1] < 2**31 else np.int64
    return sp.csr_matrix(
        (values.astype(dtype, copy=False), indices.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n_rows, width),
    )


def _is_vector_struct(typ: pa.DataType) -> bool:
    return pa.types.is_struct(typ) and {f.name for f in typ} >= {"type", "size", "indices", "values"}


def features_to_numpy(
    batch: pa.RecordBatch | pa.Table,
    spec: FeatureSpec,
    dtype=np.float64,
    where: str = "the input",
    row_offset: int = 0,
    n_features: int | None = None,
    sparse: bool | str = False,
):
    """Feature matrix of shape (n_rows, n_features) in ``dtype`` from one Arrow batch.

    Returns an ndarray, or for an ml Vector column a ``scipy.sparse.csr_matrix`` (never
    densified) when ``sparse=True``, or when ``sparse="auto"`` and the batch holds at least one
    SparseVector (a batch of DenseVectors, arrays and numeric columns stay ndarrays, and need no
    scipy). Checks: no nulls, equal
    lengths or sizes (and ``n_features`` when given), valid sparse indices, every value finite;
    a fault raises ``InputError`` naming the column, ``where`` (e.g. "partition 3") and the row
    (``row_offset`` + the position in the batch).
    """
    names = None
    if spec.feature_cols:
        columns = []
        for name in spec.feature_cols:
            col = batch.column(name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if not _is_number_type(col.type):
                raise type_error(name, col.type, NUMERIC_EXPECTED)
            if col.null_count:
                bad = _first_bad_row(np.asarray(col.is_null()))
                raise InputError(f"column '{name}': null value at {where} row {row_offset + bad}, expected a number")
            columns.append(_numbers_to_numpy(col).astype(dtype, copy=False))
        X = np.column_stack(columns) if columns else np.empty((batch.num_rows, 0), dtype)
        names = list(spec.feature_cols)
    else:
        name = spec.features_col
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if _is_vector_struct(col.type):
            parts = _vector_parts(col, name, where, row_offset, n_features)  # validated: sizes, indices, values
            if sparse is True or (sparse == "auto" and parts[-1]):
                return _vector_to_csr(parts, len(col), dtype)
            return _vector_to_dense(parts, len(col), dtype)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
            X = _list_to_matrix(col, name, dtype, where, row_offset)
        else:
            raise type_error(name, col.type, VECTOR_EXPECTED)
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


def weights_to_numpy(col: pa.Array, name: str, where: str = "the input", row_offset: int = 0) -> np.ndarray:
    """Sample weights as float64, each finite and ≥ 0."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type)):
        raise type_error(name, col.type, WEIGHT_EXPECTED)
    if col.null_count:
        bad = _first_bad_row(np.asarray(col.is_null()))
        raise InputError(f"column '{name}': null weight at {where} row {row_offset + bad}, expected a number ≥ 0")
    w = _numbers_to_numpy(col).astype(np.float64)
    bad_mask = ~np.isfinite(w) | (w < 0)
    if bad_mask.any():
        bad = _first_bad_row(bad_mask)
        raise InputError(
            f"column '{name}': weight {w[bad]} at {where} row {row_offset + bad}, expected a finite number ≥ 0"
        )
    return w
