"""jobs/evaluate.py --model-dir also takes a saved softmax_spark.ml.SoftmaxRegressionModel and a
Spark MLlib LogisticRegressionModel (issue 12, last bullet), through ``model_io.load_scoring_model``
(in the job's precheck, without Spark, and in ``evaluation.read``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from softmax_spark.core.errors import InputError
from softmax_spark.io.model_io import load_scoring_model, model_dir_kind
from test_evaluation import _evaluate_main


@pytest.fixture(scope="module")
def data(spark, tmp_path_factory):
    """300 rows (id, features vector, label double 0/1/2, name string) as Parquet, and X, y."""
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    y = (X @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0], [1.0, 1.0, 1.0]])).argmax(axis=1)
    names = np.array(["cat", "dog", "eel"])[y]
    path = tmp_path_factory.mktemp("evaluate_models") / "data.parquet"
    df = spark.createDataFrame([(i, Vectors.dense(x), float(c), str(n)) for i, (x, c, n) in enumerate(zip(X, y, names))],
                               ["id", "features", "label", "name"])
    df.write.parquet(str(path))
    return str(path), X, y


def _run(main, spark, model_dir, input_path, output, *extra):
    code = main(["--model-dir", model_dir, "--input", input_path, "--output", output, "--no-plots", *extra], spark=spark)
    assert code == 0
    return json.loads(Path(output + ".metrics.json").read_text())


def test_evaluate_a_saved_spark_ml_model(spark, data, tmp_path):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    path, X, y = data
    df = spark.read.parquet(path)
    fitted = SoftmaxRegression(regParam=0.01, labelCol="name").fit(df)
    fitted.write().overwrite().save(str(tmp_path / "ml_model"))
    assert model_dir_kind(str(tmp_path / "ml_model")) == "ml"
    model = load_scoring_model(str(tmp_path / "ml_model"))  # no Spark needed for a local path
    assert model.classes == ["cat", "dog", "eel"]
    # the model's labelCol ("name") is the default label column, its featuresCol the features
    metrics = _run(_evaluate_main(), spark, str(tmp_path / "ml_model"), path, str(tmp_path / "scored"))
    assert metrics["rows_scored"] == 300 and metrics["classes"] == ["cat", "dog", "eel"]
    expected = np.mean(np.array(model.classes)[np.argmax(model.predict_proba(X), axis=1)]
                       == np.array(["cat", "dog", "eel"])[y])
    assert metrics["accuracy"] == pytest.approx(expected, abs=1e-12) and metrics["accuracy"] > 0.8


def test_evaluate_an_mllib_model_with_and_without_class_names(spark, data, tmp_path):
    from pyspark.ml.classification import LogisticRegression

    path, X, y = data
    df = spark.read.parquet(path)
    mllib = LogisticRegression(regParam=0.01, maxIter=50).fit(df)
    mllib.write().overwrite().save(str(tmp_path / "mllib_model"))
    main = _evaluate_main()
    assert model_dir_kind(str(tmp_path / "mllib_model")) == "mllib"
    # MLlib labels are 0.0 .. K−1: they match the double label column
    metrics = _run(main, spark, str(tmp_path / "mllib_model"), path, str(tmp_path / "scored"))
    assert metrics["rows_scored"] == 300 and metrics["classes"] == [0.0, 1.0, 2.0]
    predicted = np.array([r["prediction"] for r in mllib.transform(df).orderBy("id").select("prediction").collect()])
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-12)
    scored = spark.read.parquet(str(tmp_path / "scored")).orderBy("id")
    assert np.array([r["prediction"] for r in scored.select("prediction").collect()]).tolist() == predicted.tolist()
    # --model-classes names them (label-index order), matched against a string label column
    named = _run(main, spark, str(tmp_path / "mllib_model"), path, str(tmp_path / "named"),
                 "--model-classes", "cat,dog,eel", "--label-col", "name")
    assert named["classes"] == ["cat", "dog", "eel"] and named["accuracy"] == metrics["accuracy"]
    with pytest.raises(InputError, match="--model-classes cat,dog: 2 labels, the MLlib model .* has 3 classes"):
        load_scoring_model(str(tmp_path / "mllib_model"), model_classes=["cat", "dog"])
    assert main(["--model-dir", str(tmp_path / "mllib_model"), "--input", path, "--output", str(tmp_path / "x"),
                 "--model-classes", "a,b"], spark=spark) == 2
