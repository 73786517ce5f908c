"""SoftmaxRegressionCVModel / SoftmaxRegressionCV persistence (softmax_spark.sparkml.cv_io): Spark ML layout, Pipelines."""

import os

import numpy as np
import pytest


@pytest.fixture(scope="module")
def small(spark):
    rng = np.random.default_rng(5)
    n = 300
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.2]
    y = (X @ (rng.normal(size=(3, 3)) / [1.0, 5.0, 0.2]).T + rng.gumbel(size=(n, 3))).argmax(axis=1)
    rows = [(float(a), float(b), float(c), float(k), i % 3) for i, ((a, b, c), k) in enumerate(zip(X, y))]
    return spark.createDataFrame(rows, ["a", "b", "c", "label", "fold"]).cache()


def _probabilities(df):
    return np.array([r[0].toArray() for r in df.select("probability").collect()])


def test_cv_model_save_load_round_trip(spark, small, tmp_path):
    from pyspark.ml.feature import VectorAssembler

    from softmax_spark.core.errors import InputError
    from softmax_spark.ml import SoftmaxRegressionCV
    from softmax_spark.ml import SoftmaxRegressionCVModel

    df = VectorAssembler(inputCols=["a", "b", "c"], outputCol="features").transform(small)
    model = SoftmaxRegressionCV(regParams=[0.1, 1e-3], numFolds=3, foldCol="fold", metric="accuracy").fit(df)
    path = str(tmp_path / "cv_model")
    model.write().save(path)
    assert {"metadata", "bestModel", "foldModels"} <= set(os.listdir(path))
    with pytest.raises(InputError, match="already exists"):
        model.write().save(path)
    model.write().overwrite().save(path)

    loaded = SoftmaxRegressionCVModel.load(path)
    assert loaded.uid == model.uid
    assert loaded.regParams == model.regParams and loaded.bestIndex == model.bestIndex
    assert loaded.bestRegParam == model.bestRegParam
    assert loaded.cvMetrics == model.cvMetrics and loaded.stdMetrics == model.stdMetrics
    assert loaded.avgMetrics == model.avgMetrics
    assert loaded.path == model.path
    assert loaded.getOrDefault(loaded.metric) == "accuracy" and loaded.getOrDefault(loaded.foldCol) == "fold"
    assert sorted(loaded.foldModels) == sorted(model.foldModels)
    for i, folds in model.foldModels.items():
        for (c0, b0), (c1, b1) in zip(folds, loaded.foldModels[i]):
            np.testing.assert_array_equal(c0, c1)
            np.testing.assert_array_equal(b0, b1)
    np.testing.assert_array_equal(loaded.bestModel.softmaxModel.coef, model.bestModel.softmaxModel.coef)
    np.testing.assert_array_equal(_probabilities(loaded.transform(df)), _probabilities(model.transform(df)))
    assert loaded.pathTable(spark).count() == 2


def test_cv_in_a_pipeline_saves_and_loads(spark, small, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import VectorAssembler

    from softmax_spark.ml import SoftmaxRegressionCV
    from softmax_spark.ml import SoftmaxRegressionCVModel

    cv = SoftmaxRegressionCV(regParams=[0.3, 1e-2, 1e-4], numFolds=3, standardization=False, seed=4)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b", "c"], outputCol="features"), cv])
    pipeline.write().save(str(tmp_path / "pipeline"))
    again = Pipeline.load(str(tmp_path / "pipeline"))
    stage = again.getStages()[1]
    assert isinstance(stage, SoftmaxRegressionCV) and stage.uid == cv.uid
    assert stage.getOrDefault(stage.regParams) == [0.3, 1e-2, 1e-4]
    assert stage.getOrDefault(stage.standardization) is False and stage.getSeed() == 4

    fitted = pipeline.fit(small)
    fitted.write().save(str(tmp_path / "pipeline_model"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline_model"))
    cv_model = loaded.stages[1]
    assert isinstance(cv_model, SoftmaxRegressionCVModel)
    assert cv_model.bestRegParam == fitted.stages[1].bestRegParam
    assert cv_model.cvMetrics == fitted.stages[1].cvMetrics
    np.testing.assert_array_equal(_probabilities(loaded.transform(small)), _probabilities(fitted.transform(small)))


def test_loading_something_else_is_one_line_error(spark, small, tmp_path):
    from pyspark.ml.feature import VectorAssembler

    from softmax_spark.core.errors import ModelFormatError
    from softmax_spark.ml import SoftmaxRegressionCVModel

    VectorAssembler(inputCols=["a"], outputCol="f").write().save(str(tmp_path / "va"))
    with pytest.raises(ModelFormatError, match="not a saved SoftmaxRegressionCVModel"):
        SoftmaxRegressionCVModel.load(str(tmp_path / "va"))
