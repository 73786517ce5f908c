"""score_dataframe: MLlib's output columns from a SoftmaxModel, vectorised over Arrow batches."""

import numpy as np
import pytest

from softmax_spark import InputError, SoftmaxModel
from softmax_spark.spark.scoring import check_thresholds, score_arrays


def _model(rng, c=3, d=4, classes=None):
    return SoftmaxModel(rng.normal(size=(c, d)), rng.normal(size=c), classes or list(range(c)))


# -- pure numpy ---------------------------------------------------------------------------------
def test_score_arrays_multinomial_and_thresholds(rng):
    m = _model(rng)
    X = rng.normal(size=(50, 4))
    raw, proba, pred = score_arrays(X, m.coef, m.intercept)
    np.testing.assert_allclose(raw, m.decision_function(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba, m.predict_proba(X), rtol=0, atol=1e-15)
    assert np.array_equal(pred, raw.argmax(1))
    t = np.array([0.2, 0.5, 0.3])
    _, _, pred_t = score_arrays(X, m.coef, m.intercept, t)
    assert np.array_equal(pred_t, (proba / t).argmax(1))
    # a zero threshold wins wherever its class has p > 0 (MLlib's rule)
    _, _, pred_0 = score_arrays(X, m.coef, m.intercept, np.array([1.0, 0.0, 1.0]))
    assert np.all(pred_0 == 1)


def test_score_arrays_binomial_is_mllibs_margin_form(rng):
    m = _model(rng, c=2)
    X = rng.normal(size=(40, 4))
    raw, proba, pred = score_arrays(X, m.coef, m.intercept, binomial=True)
    margin = X @ (m.coef[1] - m.coef[0]) + (m.intercept[1] - m.intercept[0])
    np.testing.assert_allclose(raw, np.column_stack([-margin, margin]), atol=1e-12)
    np.testing.assert_allclose(proba, m.predict_proba(X), atol=1e-15)  # same probabilities as the 2-row model
    assert np.array_equal(pred, (margin > 0).astype(int))
    for t in (0.3, 0.8):  # MLlib's binomial rule p_1 > t, via thresholds [1 − t, t]
        _, _, pred_t = score_arrays(X, m.coef, m.intercept, np.array([1 - t, t]), binomial=True)
        assert np.array_equal(pred_t, (proba[:, 1] > t).astype(int))
    # t = 1: never class 1, even where p_1 rounds to 1.0 (MLlib's raw threshold +inf)
    _, _, never = score_arrays(1e3 * X, m.coef, m.intercept, np.array([0.0, 1.0]), binomial=True)
    assert not never.any()


def test_check_thresholds():
    assert check_thresholds(None, 3) is None
    np.testing.assert_array_equal(check_thresholds([0.1, 0.2, 0.7], 3), [0.1, 0.2, 0.7])
    for bad in ([0.5, 0.5], [0.1, -0.1, 0.5], [0.0, 0.0, 1.0], [np.nan, 1, 1]):
        with pytest.raises(InputError):
            check_thresholds(bad, 3)


# -- on Spark -----------------------------------------------------------------------------------
def _frames(spark, X, y):
    import pyarrow as pa
    from pyspark.ml.functions import array_to_vector

    table = pa.table({"id": np.arange(len(y)), "label": y.astype(np.float64),
                      "features": pa.array(list(X), type=pa.list_(pa.float64())),
                      **{f"x{j}": X[:, j] for j in range(X.shape[1])}})
    arrays = spark.createDataFrame(table.to_pandas()).repartition(2)
    vectors = arrays.withColumn("features", array_to_vector("features"))
    return arrays, vectors


def test_score_dataframe_columns_types_and_values(spark, rng):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T

    from softmax_spark.spark.scoring import score_dataframe

    m = _model(rng)
    X = rng.normal(size=(120, 4))
    y = m.predict_proba(X).argmax(1)
    arrays, vectors = _frames(spark, X, y)
    cols = [f"x{j}" for j in range(4)]
    for frame, features in ((arrays, "features"), (vectors, "features"), (arrays, cols)):
        out = score_dataframe(frame, m, featuresCol=features)
        schema = {f.name: f.dataType for f in out.schema.fields}
        assert out.columns == frame.columns + ["rawPrediction", "probability", "prediction"]
        assert isinstance(schema["rawPrediction"], VectorUDT) and isinstance(schema["probability"], VectorUDT)
        assert isinstance(schema["prediction"], T.DoubleType)
        rows = sorted(out.select("id", vector_to_array("rawPrediction"), vector_to_array("probability"),
                                 "prediction").collect())
        ids = np.array([r[0] for r in rows])
        np.testing.assert_allclose(np.array([r[1] for r in rows]), m.decision_function(X[ids]), atol=1e-12)
        np.testing.assert_allclose(np.array([r[2] for r in rows]), m.predict_proba(X[ids]), atol=1e-15)
        assert np.array_equal(np.array([r[3] for r in rows]), m.predict_proba(X[ids]).argmax(1))
    # MLlib's evaluators accept the columns as they are
    out = score_dataframe(vectors, m)
    p = m.predict_proba(X)
    expected = float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, None))))
    got = MulticlassClassificationEvaluator(metricName="logLoss").evaluate(out)
    assert got == pytest.approx(expected, rel=1e-9)
    assert MulticlassClassificationEvaluator(metricName="accuracy").evaluate(out) == 1.0


def test_score_dataframe_predicted_label_thresholds_and_disabled_columns(spark, rng):
    from softmax_spark.spark.scoring import score_dataframe

    X = rng.normal(size=(60, 4))
    arrays, _ = _frames(spark, X, np.zeros(60, dtype=int))
    for classes, spark_type in ((["b", "a", "c"], "string"), ([10, 20, 30], "bigint"), ([0.5, 1.5, 2.5], "double")):
        m = _model(rng, classes=classes)
        t = [0.5, 0.2, 0.3]
        out = score_dataframe(arrays, m, rawPredictionCol="", probabilityCol=None, predictedLabelCol="predictedLabel",
                              thresholds=t)
        assert out.columns == arrays.columns + ["prediction", "predictedLabel"]
        assert dict(out.dtypes)["predictedLabel"] == spark_type
        rows = sorted(out.select("id", "prediction", "predictedLabel").collect())
        expected = (m.predict_proba(X[[r[0] for r in rows]]) / np.array(t)).argmax(1)
        assert [r[1] for r in rows] == expected.astype(float).tolist()
        assert [r[2] for r in rows] == [m.classes[i] for i in expected]


def test_score_dataframe_errors(spark, rng):
    from softmax_spark.spark.scoring import score_dataframe

    m = _model(rng)
    arrays, _ = _frames(spark, rng.normal(size=(10, 4)), np.zeros(10, dtype=int))
    with pytest.raises(InputError, match="already exists"):
        score_dataframe(arrays.withColumnRenamed("label", "Prediction"), m)
    with pytest.raises(InputError, match="'nope' not found"):
        score_dataframe(arrays, m, featuresCol="nope")
    with pytest.raises(InputError, match="thresholds"):
        score_dataframe(arrays, m, thresholds=[1.0, 1.0])
    wide = _model(rng, d=5)
    with pytest.raises(Exception, match="expected 5"):  # a task fails naming the column and row
        score_dataframe(arrays, wide).collect()


def _sparse_ingest_available():
    from softmax_spark.spark.scoring import _SPARSE

    return bool(_SPARSE)


@pytest.mark.skipif(not _sparse_ingest_available(), reason="features_to_numpy has no sparse support on this branch")
def test_score_dataframe_sparse_vectors_equal_dense(spark, rng):
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import Vectors

    from softmax_spark.spark.scoring import score_dataframe

    m = _model(rng, d=6)
    X = rng.normal(size=(40, 6)) * (rng.random((40, 6)) < 0.3)
    rows = [(i, Vectors.sparse(6, {j: float(v) for j, v in enumerate(x) if v}) if i % 2 else Vectors.dense(x))
            for i, x in enumerate(X)]
    out = score_dataframe(spark.createDataFrame(rows, ["id", "features"]), m)
    got = sorted(out.select("id", vector_to_array("probability")).collect())
    np.testing.assert_allclose(np.array([r[1] for r in got]), m.predict_proba(X), atol=1e-15)


def test_score_dataframe_defaults_to_the_models_training_columns(spark, rng):
    from softmax_spark.spark.scoring import score_dataframe

    X = rng.normal(size=(30, 4))
    arrays, _ = _frames(spark, X, np.zeros(30))
    m = _model(rng)
    expected = m.predict_proba(X)
    for options in ({"feature_cols": ["x0", "x1", "x2", "x3"]}, {"features_col": "features"}, None):
        trained = SoftmaxModel(m.coef, m.intercept, m.classes,
                               metadata={} if options is None else {"options": options})
        rows = score_dataframe(arrays, trained).orderBy("id").select("probability").collect()
        np.testing.assert_allclose([r.probability.toArray() for r in rows], expected, atol=1e-12)
    columns_model = SoftmaxModel(m.coef, m.intercept, m.classes, metadata={"options": {"feature_cols": ["x0", "x9"]}})
    with pytest.raises(InputError, match="x9"):
        score_dataframe(arrays, columns_model)
