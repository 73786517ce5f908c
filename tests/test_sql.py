"""softmax_spark.spark.sql: SQL scoring functions equal ``transform`` (batch and streaming), and
``transform`` itself on a streaming DataFrame."""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def fitted(spark):
    from pyspark.ml.linalg import Vectors

    from softmax_spark.sparkml.classification import SoftmaxRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4))
    y = (X @ rng.normal(size=(4, 3))).argmax(axis=1).astype(float)
    rows = []
    for i, (x, c) in enumerate(zip(X, y)):
        # every third row sparse: both VectorUDT forms reach the SQL function
        v = Vectors.sparse(4, {j: float(x[j]) for j in range(4) if j != 1}) if i % 3 == 0 else Vectors.dense(x)
        rows.append((i, v, float(c)))
    df = spark.createDataFrame(rows, ["id", "features", "label"]).cache()
    model = SoftmaxRegression(regParam=0.05).fit(df)
    return df, model


def _by_id(rows, k=1):
    return np.array([r[k] for r in sorted(rows, key=lambda r: r[0])])


def test_sql_functions_equal_transform(spark, fitted):
    from pyspark.ml.functions import vector_to_array

    from softmax_spark.spark.sql import register

    df, model = fitted
    names = register(spark, model, name="softmax_predict")
    assert names == ["softmax_predict", "softmax_predict_proba", "softmax_predict_raw"]
    df.createOrReplaceTempView("points")
    got = spark.sql("SELECT id, softmax_predict(features) AS pred, softmax_predict_proba(features) AS p, "
                    "softmax_predict_raw(features) AS raw FROM points").collect()
    want = model.transform(df).select("id", "prediction", vector_to_array("probability"),
                                      vector_to_array("rawPrediction")).collect()
    assert np.array_equal(_by_id(got, 1), _by_id(want, 1))
    assert np.max(np.abs(np.stack(_by_id(got, 2)) - np.stack(_by_id(want, 2)))) <= 1e-12
    assert np.max(np.abs(np.stack(_by_id(got, 3)) - np.stack(_by_id(want, 3)))) <= 1e-12
    assert spark.sql("SELECT typeof(softmax_predict_proba(features)) FROM points LIMIT 1").first()[0] == \
        "array<double>"


def test_sql_array_features_nulls_and_binomial_thresholds(spark):
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import functions as F

    from softmax_spark.sparkml.classification import SoftmaxRegression
    from softmax_spark.spark.sql import register

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(float)
    df = spark.createDataFrame([(i, Vectors.dense(x), float(c)) for i, (x, c) in enumerate(zip(X, y))],
                               ["id", "features", "label"])
    model = SoftmaxRegression(threshold=0.7).fit(df)
    assert model.isBinomial
    register(spark, model, name="bin_score")
    arrays = df.withColumn("arr", vector_to_array("features"))
    arrays = arrays.withColumn("arr", F.when(F.col("id") == 5, F.lit(None)).otherwise(F.col("arr")))
    arrays.createOrReplaceTempView("bin_points")
    got = {r[0]: r[1:] for r in spark.sql("SELECT id, bin_score(arr), bin_score_proba(arr) FROM bin_points")
           .collect()}
    want = {r[0]: r[1:] for r in model.transform(df).select("id", "prediction", vector_to_array("probability"))
            .collect()}
    assert got[5] == (None, None)
    for i in want:
        if i != 5:
            assert got[i][0] == want[i][0]
            assert np.max(np.abs(np.array(got[i][1]) - np.array(want[i][1]))) <= 1e-12


def test_sql_bad_inputs(spark, fitted):
    from softmax_spark.spark.sql import register

    _, model = fitted
    with pytest.raises(ValueError, match="SQL identifier"):
        register(spark, model, name="bad name")
    with pytest.raises(TypeError, match="SoftmaxRegressionModel"):
        register(spark, object())
    register(spark, model, name="short_score")
    with pytest.raises(Exception, match="short_score: an array of 2 features, the model expects 4"):
        spark.sql("SELECT short_score(array(1.0D, 2.0D))").collect()


def test_streaming_sql_and_transform(spark, fitted, tmp_path):
    from pyspark.ml.functions import vector_to_array

    from softmax_spark.spark.sql import register

    df, model = fitted
    register(spark, model, name="stream_score")
    source = str(tmp_path / "in")
    df.select("id", vector_to_array("features").alias("arr"), "features").write.parquet(source)
    stream = spark.readStream.schema(spark.read.parquet(source).schema).parquet(source)
    stream.createOrReplaceTempView("stream_points")
    queries = [
        spark.sql("SELECT id, stream_score(features) AS pred, stream_score_proba(arr) AS p FROM stream_points")
        .writeStream.format("memory").queryName("sql_scores").outputMode("append"),
        model.transform(stream).select("id", "prediction", vector_to_array("probability").alias("p"))
        .writeStream.format("memory").queryName("transform_scores").outputMode("append"),
    ]
    for writer in queries:  # one after the other: two cores
        query = writer.start()
        try:
            query.processAllAvailable()
        finally:
            query.stop()
    got = spark.table("sql_scores").collect()
    streamed = spark.table("transform_scores").collect()
    want = model.transform(df).select("id", "prediction", vector_to_array("probability")).collect()
    assert len(got) == len(streamed) == len(want) == 120
    assert np.array_equal(_by_id(got, 1), _by_id(want, 1))
    assert np.array_equal(_by_id(streamed, 1), _by_id(want, 1))
    assert np.max(np.abs(np.stack(_by_id(got, 2)) - np.stack(_by_id(want, 2)))) <= 1e-12
    assert np.max(np.abs(np.stack(_by_id(streamed, 2)) - np.stack(_by_id(want, 2)))) <= 1e-12
