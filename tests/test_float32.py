"""float32 input stays float32 in the cache (issue 14): ``--dtype auto`` picks float32 for
array<float> features; the cache's feature bytes halve; the kernels up-cast each chunk to float64
(``kernels`` module docstring), so the model equals the float64 run on the same values; CSR values
too; scoring reads array<float>."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from helpers import make_data

N, D, C = 300, 6, 3


def _write_arrays(path, X, y, value_type):
    table = pa.table({"features": pa.array(list(X), type=pa.list_(value_type)), "label": pa.array(y)})
    pq.write_table(table, path)
    return str(path)


def _fit(spark, path, **options):
    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.fit.training import fit_dataframe

    # a fixed number of iterations: equal sums give the same steps (see test_sparse)
    cfg = TrainConfig(input=path, l2=1e-2, tol=0.0, gtol=0.0, max_iter=15, optimizer="lbfgs", **options)
    return fit_dataframe(spark, cfg, write=False)


@pytest.fixture(scope="module")
def data32():
    X, y = make_data(n=N, d=D, c=C, seed=3)
    return X.astype(np.float32), y


def test_storage_dtype_rule():
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    from softmax_spark.core.features import FeatureSpec
    from softmax_spark.spark.schema import storage_dtype

    def schema(**cols):
        return T.StructType([T.StructField(k, v) for k, v in cols.items()])

    vec = FeatureSpec()
    assert storage_dtype("auto", schema(features=T.ArrayType(T.FloatType())), vec) == "float32"
    assert storage_dtype("auto", schema(features=T.ArrayType(T.DoubleType())), vec) == "float64"
    assert storage_dtype("auto", schema(features=VectorUDT()), vec) == "float64"  # ml Vectors are double
    cols = FeatureSpec(features_col=None, feature_cols=("a", "b"))
    assert storage_dtype("auto", schema(a=T.FloatType(), b=T.FloatType()), cols) == "float32"
    assert storage_dtype("auto", schema(a=T.FloatType(), b=T.DoubleType()), cols) == "float64"
    assert storage_dtype("auto", schema(a=T.FloatType(), b=T.IntegerType()), cols) == "float64"
    # an explicit dtype overrides
    assert storage_dtype("float64", schema(features=T.ArrayType(T.FloatType())), vec) == "float64"
    assert storage_dtype("float32", schema(features=VectorUDT()), vec) == "float32"
    with pytest.raises(ValueError):
        storage_dtype("float16", schema(features=VectorUDT()), vec)


def test_train_config_dtype_default_is_auto():
    from softmax_spark.fit.config import TrainConfig, parse_config

    assert TrainConfig().dtype == "auto"
    argv = ["--input", "x", "--model-dir", "m"]
    assert parse_config(TrainConfig, argv).dtype == "auto"
    assert parse_config(TrainConfig, argv + ["--dtype", "float32"]).dtype == "float32"


def test_array_float_input_is_cached_float32_and_gives_the_float64_model(spark, tmp_path, data32):
    X, y = data32
    p32 = _write_arrays(tmp_path / "f32.parquet", X, y, pa.float32())
    p64 = _write_arrays(tmp_path / "f64.parquet", X.astype(np.float64), y, pa.float64())  # the same values
    m32, m64 = _fit(spark, p32), _fit(spark, p64)
    s32, s64 = m32.metadata["data_summary"], m64.metadata["data_summary"]
    assert (s32["dtype"], s64["dtype"]) == ("float32", "float64")
    assert m32.metadata["options"]["dtype"] == "float32"  # the resolved dtype, not "auto"
    # X halves; the labels take one byte a row (uint8 class positions) in both
    assert s32["cached_bytes"] == N * (4 * D + 1) and s64["cached_bytes"] == N * (8 * D + 1)
    assert s32["cached_bytes"] - N == (s64["cached_bytes"] - N) / 2
    # chunks up-cast to float64: the same sums, so the same iterates
    np.testing.assert_allclose(m32.coef, m64.coef, rtol=0, atol=1e-10)
    np.testing.assert_allclose(m32.intercept, m64.intercept, rtol=0, atol=1e-10)
    h32, h64 = m32.history[-1]["objective"], m64.history[-1]["objective"]
    assert h32 == pytest.approx(h64, rel=1e-12)
    # an explicit --dtype float64 caches array<float> input as float64
    forced = _fit(spark, p32, dtype="float64")
    assert forced.metadata["data_summary"]["dtype"] == "float64"
    assert forced.metadata["data_summary"]["cached_bytes"] == s64["cached_bytes"]
    np.testing.assert_allclose(forced.coef, m64.coef, rtol=0, atol=1e-10)


def test_sparse_vector_input_with_float32_cache(spark, tmp_path):
    from test_sparse import csr_vectors, write_vectors

    rng = np.random.default_rng(11)
    X = sp.random(N, 40, density=0.1, random_state=11, format="csr", dtype=np.float64)
    X.data = rng.normal(size=X.nnz).astype(np.float32).astype(np.float64)  # float32-exact values
    W = rng.normal(size=(C, 40))
    y = np.asarray(X @ W.T + rng.gumbel(size=(N, C))).argmax(1)
    path = write_vectors(tmp_path / "sparse.parquet", csr_vectors(X), y)
    m32, m64 = _fit(spark, path, dtype="float32"), _fit(spark, path)
    s32, s64 = m32.metadata["data_summary"], m64.metadata["data_summary"]
    assert (s32["dtype"], s64["dtype"]) == ("float32", "float64")  # auto: ml Vectors are double
    # CSR blocks: indptr (rows + 1 per partition) and indices int32 either way, the values halve
    fixed = 4 * (N + s32["partitions"]) + 4 * X.nnz + N
    assert s32["cached_bytes"] == fixed + 4 * X.nnz and s64["cached_bytes"] == fixed + 8 * X.nnz
    np.testing.assert_allclose(m32.coef, m64.coef, rtol=0, atol=1e-10)
    np.testing.assert_allclose(m32.intercept, m64.intercept, rtol=0, atol=1e-10)


def test_scoring_reads_array_float(spark, data32):
    from pyspark.ml.functions import vector_to_array

    from softmax_spark import SoftmaxModel
    from softmax_spark.spark.scoring import score_dataframe

    X, y = data32
    rng = np.random.default_rng(5)
    model = SoftmaxModel(rng.normal(size=(C, D)), rng.normal(size=C), list(range(C)))
    table = pa.table({"id": np.arange(N), "features": pa.array(list(X), type=pa.list_(pa.float32()))})
    frame = spark.createDataFrame(table.to_pandas(), "id long, features array<float>")
    assert frame.schema["features"].dataType.simpleString() == "array<float>"
    rows = sorted(score_dataframe(frame, model).select("id", vector_to_array("probability"), "prediction").collect())
    proba = np.array([r[1] for r in rows])
    expected = model.predict_proba(X.astype(np.float64))
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal([r[2] for r in rows], expected.argmax(1))
