"""The Estimator speaks Params: fit errors name Params, not job flags; initialModel takes an MLlib
LogisticRegressionModel directory; one-class data diagnosed; prediction metadata as MLlib's."""

import numpy as np
import pytest

from softmax_spark import InputError


@pytest.fixture(scope="module")
def three(spark):
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 3))
    y = (X @ rng.normal(size=(3, 3)) + 0.5 * rng.normal(size=(90, 3))).argmax(axis=1).astype(float)
    return spark.createDataFrame([(i, Vectors.dense(x), float(c)) for i, (x, c) in enumerate(zip(X, y))],
                                 ["id", "features", "label"]).cache()


def test_to_params_rewrites_flags():
    from softmax_spark.sparkml.diagnostics import to_params

    assert to_params("set --l2 > 0 (λ = 0)") == "set regParam > 0 (regParam = 0)"
    assert to_params("give --init-model-classes a,b; --no-fit-intercept") == \
        "give initModelClasses a,b; fitIntercept=False"
    assert to_params("--input and --write-mllib stay") == "--input and --write-mllib stay"


def test_mllib_initial_model_identity_and_init_model_classes(spark, three, tmp_path):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    path = str(tmp_path / "lr")
    LogisticRegression(regParam=0.02, maxIter=200, tol=1e-10).fit(three).write().save(path)
    warm = SoftmaxRegression(regParam=0.02, initialModel=path).fit(three)
    cold = SoftmaxRegression(regParam=0.02).fit(three)
    assert warm.summary.totalIterations < cold.summary.totalIterations
    same = SoftmaxRegression(regParam=0.02, initialModel=path, initModelClasses=["0", "1", "2"]).fit(three)
    assert same.summary.totalIterations == warm.summary.totalIterations
    with pytest.raises(InputError, match=r"^initModelClasses \['0', '1'\]: 2 labels, the MLlib model"):
        SoftmaxRegression(initialModel=path, initModelClasses=["0", "1"]).fit(three)


def test_mllib_initial_model_with_other_labels_asks_for_init_model_classes(spark, three, tmp_path):
    from pyspark.sql import functions as F
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    path = str(tmp_path / "lr")
    LogisticRegression(maxIter=20).fit(three).write().save(path)
    named = three.withColumn("label", F.concat(F.lit("c"), F.col("label").cast("int").cast("string")))
    with pytest.raises(InputError) as info:
        SoftmaxRegression(initialModel=path).fit(named)
    message = str(info.value)
    assert "initModelClasses" in message and "--" not in message
    fitted = SoftmaxRegression(initialModel=path, initModelClasses=["c0", "c1", "c2"], maxIter=5).fit(named)
    assert fitted.classes == ["c0", "c1", "c2"]


def test_one_class_cases(spark, three):
    from pyspark.sql import functions as F

    from softmax_spark.sparkml.classification import SoftmaxRegression

    with pytest.raises(InputError, match=r"holds the one label 1.0, so class\(es\) 0.0 .* no finite optimum "
                                         r"at any regParam"):
        SoftmaxRegression(regParam=10.0).fit(three.withColumn("label", F.lit(1.0)))
    with pytest.raises(InputError, match=r"holds one class \(0.0\) only, and a softmax model needs at least 2"):
        SoftmaxRegression().fit(three.withColumn("label", F.lit(0.0)))
    # without an intercept the penalised problem has an optimum: no refusal
    model = SoftmaxRegression(regParam=1.0, fitIntercept=False, maxIter=20).fit(three.withColumn("label", F.lit(1.0)))
    assert model.numClasses == 2


def test_fit_errors_name_params(spark, three):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    with pytest.raises(InputError, match=r"^maxIter must be ≥ 1, got 0$"):
        SoftmaxRegression(maxIter=0).fit(three)
    with pytest.raises(InputError, match=r"^lbfgsMemory must be ≥ 1"):
        SoftmaxRegression(lbfgsMemory=0).fit(three)


def test_prediction_metadata_as_mllib(spark, three):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    ours = SoftmaxRegression(maxIter=20).fit(three).transform(three).schema["prediction"].metadata
    theirs = LogisticRegression(maxIter=20).fit(three).transform(three).schema["prediction"].metadata
    assert ours == theirs == {"ml_attr": {"type": "nominal", "num_vals": 3}}
