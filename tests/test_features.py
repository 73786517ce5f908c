"""Feature conversion (``softmax_spark.core.features``), Spark-free: Arrow batches of every accepted
column kind → ndarray / CSR, and one clear line for every bad input."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec, features_to_numpy, weights_to_numpy

# the ml Vector UDT as Spark hands it to Arrow: type 0 = sparse (size, indices, values), 1 = dense
VECTOR_TYPE = pa.struct([("type", pa.int8()), ("size", pa.int32()),
                         ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float64()))])


def sparse_row(size, indices, values):
    return {"type": 0, "size": size, "indices": list(indices), "values": [float(v) for v in values]}


def dense_row(values):
    return {"type": 1, "size": None, "indices": None, "values": [float(v) for v in values]}


def vector_array(X, sparse_rows=None) -> pa.Array:
    """Rows of X as ml Vectors: SparseVector where ``sparse_rows`` (default all), else DenseVector."""
    X = np.asarray(X, dtype=np.float64)
    sparse_rows = np.ones(len(X), bool) if sparse_rows is None else sparse_rows
    rows = []
    for x, is_sparse in zip(X, sparse_rows):
        nz = np.flatnonzero(x)
        rows.append(sparse_row(len(x), nz, x[nz]) if is_sparse else dense_row(x))
    return pa.array(rows, type=VECTOR_TYPE)


def _batch(column, name="features"):
    return pa.record_batch([column], names=[name])


@pytest.fixture
def X():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 7))
    X[rng.random(X.shape) < 0.6] = 0.0
    X[4] = 0.0  # an all-zero row
    return X


@pytest.mark.parametrize("mix", ["sparse", "dense", "mixed"])
def test_vector_column_to_csr_and_dense(X, mix):
    """Any mix of SparseVector and DenseVector rows: CSR (sparse=True) and ndarray (default)
    hold the same values; stored zeros of dense rows are dropped from the CSR form."""
    mask = {"sparse": np.ones(12, bool), "dense": np.zeros(12, bool), "mixed": np.arange(12) % 3 != 0}[mix]
    batch = _batch(vector_array(X, mask))
    csr = features_to_numpy(batch, FeatureSpec(), sparse=True)
    assert sp.issparse(csr) and csr.format == "csr" and csr.shape == X.shape
    assert csr.nnz == np.count_nonzero(X) and csr.indices.dtype == np.int32
    np.testing.assert_array_equal(csr.toarray(), X)
    dense = features_to_numpy(batch, FeatureSpec())
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, X)
    auto = features_to_numpy(batch, FeatureSpec(), sparse="auto")
    assert sp.issparse(auto) == (mix != "dense")  # DenseVector-only batches stay ndarrays
    f32 = features_to_numpy(batch, FeatureSpec(), dtype=np.float32, sparse=True)
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32.toarray(), X.astype(np.float32))


def test_sliced_batch_keeps_its_rows(X):
    """Batches cut from a larger table (the direct Parquet path slices row groups) keep their rows."""
    batch = _batch(vector_array(X, np.arange(12) % 2 == 0)).slice(5, 6)
    np.testing.assert_array_equal(features_to_numpy(batch, FeatureSpec(), sparse=True).toarray(), X[5:11])
    np.testing.assert_array_equal(features_to_numpy(batch, FeatureSpec()), X[5:11])


def test_list_columns(X):
    for typ in (pa.list_(pa.float64()), pa.list_(pa.float32()), pa.large_list(pa.float64())):
        batch = _batch(pa.array([list(r) for r in X], type=typ))
        np.testing.assert_allclose(features_to_numpy(batch, FeatureSpec(), sparse="auto"), X, rtol=1e-6)


@pytest.mark.parametrize("arrow_type", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.float32(), pa.float64(),
                                        pa.decimal128(12, 4), pa.decimal128(38, 10), pa.bool_()],
                         ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_spark_numeric_type_in_feature_cols(arrow_type, dtype):
    """--feature-cols accepts byte…long, float, double, decimal and boolean (as 0/1), converted
    to the cache dtype (issue 16 item 10: decimal was refused)."""
    raw = [1, 0, 3, 1] if not pa.types.is_boolean(arrow_type) else [True, False, True, True]
    if pa.types.is_decimal(arrow_type):
        values = pa.array([Decimal(v) + Decimal("0.25") for v in raw], type=arrow_type)
        expected = np.array(raw) + 0.25
    else:
        values = pa.array(raw, type=arrow_type)
        expected = np.array(raw, dtype=np.float64)
    batch = pa.record_batch([values, pa.array([2.0, 1.0, 0.0, -1.0])], names=["a", "b"])
    out = features_to_numpy(batch, FeatureSpec(features_col=None, feature_cols=("a", "b")), dtype=dtype)
    assert out.dtype == dtype and out.shape == (4, 2)
    np.testing.assert_array_equal(out[:, 0], expected.astype(dtype))


def test_decimal_weights():
    w = weights_to_numpy(pa.array([Decimal("1.5"), Decimal("0")], type=pa.decimal128(5, 2)), "w")
    np.testing.assert_array_equal(w, [1.5, 0.0])


def test_non_numeric_feature_column_is_refused():
    batch = pa.record_batch([pa.array(["x", "y"])], names=["a"])
    with pytest.raises(InputError, match="column 'a' is string, expected a numeric column"):
        features_to_numpy(batch, FeatureSpec(features_col=None, feature_cols=("a",)))


GOOD = sparse_row(5, [1, 3], [1.0, 2.0])
BAD_VECTORS = {
    "index ≥ size": (sparse_row(5, [1, 5], [1, 2]), "sparse vector with index 5 ≥ size 5 at partition 3 row 11"),
    "negative index": (sparse_row(5, [-1, 3], [1, 2]), "sparse vector with negative index -1 at partition 3 row 11"),
    "repeated index": (sparse_row(5, [3, 3], [1, 2]), "sparse vector with repeated index (3, 3) at partition 3 row 11"),
    "unsorted indices": (sparse_row(5, [3, 1], [1, 2]),
                         "sparse vector with unsorted indices (3, 1) at partition 3 row 11"),
    "size differs between rows": (sparse_row(6, [1, 3], [1, 2]),
                                  "vector of size 6 at partition 3 row 11, expected size 5"),
    "dense row of another size": (dense_row([1, 0, 3, 0, 5, 6]),
                                  "vector of size 6 at partition 3 row 11, expected size 5"),
    "nan": (sparse_row(5, [1, 3], [1, float("nan")]), "column 'features[3]': non-finite value nan at partition 3 row 11"),
    "inf": (sparse_row(5, [1, 3], [float("inf"), 1]), "column 'features[1]': non-finite value inf at partition 3 row 11"),
    "-inf in a dense row": (dense_row([0, 0, float("-inf"), 0, 0]),
                            "column 'features[2]': non-finite value -inf at partition 3 row 11"),
    "indices and values differ": (sparse_row(5, [1], [1, 2]),
                                  "sparse vector with 1 indices and 2 values at partition 3 row 11"),
    "null vector": (None, "null feature vector at partition 3 row 11"),
}


@pytest.mark.parametrize("case", list(BAD_VECTORS))
@pytest.mark.parametrize("sparse", [True, False])
def test_bad_sparse_vector_is_one_clear_line(case, sparse):
    """Each fault: an InputError naming the column, the partition and the row (row_offset + 1)."""
    row, expected = BAD_VECTORS[case]
    batch = _batch(pa.array([GOOD, row], type=VECTOR_TYPE))
    with pytest.raises(InputError) as info:
        features_to_numpy(batch, FeatureSpec(), where="partition 3", row_offset=10, sparse=sparse)
    message = str(info.value)
    assert expected in message, message
    assert message.startswith("column 'features") and "\n" not in message


def test_size_differing_from_the_model():
    batch = _batch(pa.array([GOOD], type=VECTOR_TYPE))
    with pytest.raises(InputError, match="vector of size 5 at partition 0 row 7, expected size 8$"):
        features_to_numpy(batch, FeatureSpec(), where="partition 0", row_offset=7, n_features=8, sparse=True)


def test_empty_sparse_rows_and_batches():
    batch = _batch(pa.array([sparse_row(4, [], []), sparse_row(4, [], [])], type=VECTOR_TYPE))
    X = features_to_numpy(batch, FeatureSpec(), sparse=True)
    assert X.shape == (2, 4) and X.nnz == 0
    empty = _batch(pa.array([], type=VECTOR_TYPE))
    assert features_to_numpy(empty, FeatureSpec(), sparse=True).shape[0] == 0
