"""softmax_spark.sparkml.classification: the Spark ML Estimator against MLlib's LogisticRegression, in Pipelines,
CrossValidator and saved PipelineModels."""

import os
import re
import uuid

import numpy as np
import pytest

from softmax_spark import InputError

TIGHT = dict(maxIter=1000, tol=1e-10)


@pytest.fixture(scope="module")
def wine(spark):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    cols = [f"f{j}" for j in range(X.shape[1])]
    df = spark.createDataFrame([tuple(map(float, r)) + (f"cultivar-{k}",) for r, k in zip(X, y)], cols + ["kind"])
    return df.cache(), cols


def _pipe(est, cols):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    return Pipeline(stages=[StringIndexer(inputCol="kind", outputCol="y"),
                            VectorAssembler(inputCols=cols, outputCol="features"), est])


def _proba(model, df, col="probability", order="id"):
    from pyspark.ml.functions import vector_to_array

    rows = model.transform(df).select(order, vector_to_array(col)).collect()
    return np.array([r[1] for r in sorted(rows, key=lambda r: r[0])])


def _small(spark, labels, n=150, seed=3, d=3):
    """A small DataFrame (id, features vector, label) whose labels are ``labels[class]``."""
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(seed)
    k = len(labels)
    W = rng.normal(size=(k, d)) * 2
    X = rng.normal(size=(n, d))
    y = np.array([rng.choice(k, p=np.exp(z - z.max()) / np.exp(z - z.max()).sum()) for z in X @ W.T])
    return spark.createDataFrame([(i, Vectors.dense(x), labels[c]) for i, (x, c) in enumerate(zip(X, y))],
                                 ["id", "features", "label"])


def test_pipeline_matches_mllib_with_and_without_standardization(spark, wine):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.sql import functions as F

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df, cols = wine
    df = df.withColumn("id", F.monotonically_increasing_id())
    for standardization in (False, True):
        kw = dict(labelCol="y", regParam=0.02, standardization=standardization, **TIGHT)
        ours = _pipe(SoftmaxRegression(**kw), cols).fit(df)
        peer = _pipe(LogisticRegression(family="multinomial", **kw), cols).fit(df)
        assert np.abs(_proba(ours, df) - _proba(peer, df)).max() <= 1e-5
        m, p = ours.stages[-1], peer.stages[-1]
        assert (m.numClasses, m.numFeatures) == (p.numClasses, p.numFeatures) == (3, 13)
        # MLlib's centred parameters: the same coefficients, not only the same probabilities
        np.testing.assert_allclose(m.coefficientMatrix.toArray(), p.coefficientMatrix.toArray(), atol=1e-4)
        np.testing.assert_allclose(m.interceptVector.toArray(), p.interceptVector.toArray(), atol=1e-3)
        assert m.classes == [0.0, 1.0, 2.0]
        assert m.summary.totalIterations == len(m.summary.objectiveHistory) > 0
        assert np.all(np.diff(m.summary.objectiveHistory) <= 1e-12)


def test_cross_validator_picks_a_regparam_and_saves(spark, wine, tmp_path):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, CrossValidatorModel, ParamGridBuilder, TrainValidationSplit

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df, cols = wine
    sm = SoftmaxRegression(labelCol="y", maxIter=100)
    grid = ParamGridBuilder().addGrid(sm.regParam, [0.001, 0.01, 0.1]).build()
    cv = CrossValidator(estimator=_pipe(sm, cols), estimatorParamMaps=grid, numFolds=2, seed=1, parallelism=2,
                        evaluator=MulticlassClassificationEvaluator(labelCol="y", metricName="logLoss"))
    cv_model = cv.fit(df)
    assert len(cv_model.avgMetrics) == 3 and np.all(np.isfinite(cv_model.avgMetrics))
    best_reg = cv_model.bestModel.stages[-1].getRegParam()
    assert best_reg == [0.001, 0.01, 0.1][int(np.argmin(cv_model.avgMetrics))]
    scored = cv_model.transform(df)
    for metric in ("accuracy", "f1"):
        assert MulticlassClassificationEvaluator(labelCol="y", metricName=metric).evaluate(scored) > 0.9
    path = str(tmp_path / "cv")
    cv_model.write().overwrite().save(path)
    back = CrossValidatorModel.load(path)
    assert back.avgMetrics == cv_model.avgMetrics
    assert back.bestModel.stages[-1].getRegParam() == best_reg
    a = np.array([r[0].toArray() for r in cv_model.transform(df).select("probability").collect()])
    b = np.array([r[0].toArray() for r in back.transform(df).select("probability").collect()])
    assert np.abs(a - b).max() <= 1e-12
    # TrainValidationSplit uses the same fitMultiple
    tvs = TrainValidationSplit(estimator=_pipe(sm, cols), estimatorParamMaps=grid[:2], trainRatio=0.7, seed=2,
                               evaluator=MulticlassClassificationEvaluator(labelCol="y", metricName="f1"))
    assert len(tvs.fit(df).validationMetrics) == 2


def test_pipeline_model_save_load_local_and_viewfs(spark, wine, tmp_path):
    from pyspark.ml import PipelineModel
    from pyspark.sql import functions as F

    from softmax_spark.sparkml.classification import SoftmaxRegression, SoftmaxRegressionModel, read_model_dir

    df, cols = wine
    df = df.withColumn("id", F.monotonically_increasing_id())
    fitted = _pipe(SoftmaxRegression(labelCol="y", regParam=0.05, maxIter=50, predictedLabelCol="p_y"), cols).fit(df)
    expected = _proba(fitted, df)
    mount = f"ml{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"
    store.mkdir()
    spark.sparkContext._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{mount}.link./store", f"file://{store}")
    for uri in (str(tmp_path / "local" / "pm"), f"viewfs://{mount}/store/pm"):
        fitted.write().overwrite().save(uri)
        back = PipelineModel.load(uri)
        assert np.abs(_proba(back, df) - expected).max() <= 1e-12
        stage = back.stages[-1]
        assert isinstance(stage, SoftmaxRegressionModel) and stage.getPredictedLabelCol() == "p_y"
        assert stage.summary.totalIterations == fitted.stages[-1].summary.totalIterations
        # the stage alone, and as a plain SoftmaxModel
        stage_uri = uri + "-stage"
        fitted.stages[-1].write().overwrite().save(stage_uri)
        with pytest.raises(InputError, match="already exists"):
            fitted.stages[-1].write().save(stage_uri)
        alone = SoftmaxRegressionModel.load(stage_uri)
        np.testing.assert_array_equal(alone.coefficientMatrix.toArray(), stage.coefficientMatrix.toArray())
        plain = read_model_dir(stage_uri)
        np.testing.assert_array_equal(plain.coef, fitted.stages[-1].softmaxModel.coef)
        assert plain.classes == [0.0, 1.0, 2.0]
    # no session needed for a local directory
    from softmax_spark.sparkml.classification import _read_saved_local, _softmax_model

    meta, row = _read_saved_local(str(tmp_path / "local" / "pm-stage"))
    np.testing.assert_array_equal(_softmax_model(meta, row, "x").coef, fitted.stages[-1].softmaxModel.coef)


def test_string_labels_with_predicted_label_col(spark):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _small(spark, ["setosa", "versicolor", "virginica"])
    model = SoftmaxRegression(regParam=0.01, predictedLabelCol="predictedLabel").fit(df)
    assert model.classes == ["setosa", "versicolor", "virginica"]
    rows = model.transform(df).select("label", "prediction", "predictedLabel").collect()
    assert all(r["predictedLabel"] == model.classes[int(r["prediction"])] for r in rows)
    assert np.mean([r["label"] == r["predictedLabel"] for r in rows]) > 0.6
    # integer codes that are not 0..K−1 are classes in sorted order, too
    coded = SoftmaxRegression(regParam=0.01, predictedLabelCol="code").fit(_small(spark, [30, 10, 20]))
    assert coded.classes == [10, 20, 30] and coded.numClasses == 3
    assert {r["code"] for r in coded.transform(_small(spark, [30, 10, 20])).select("code").collect()} <= {10, 20, 30}


def test_mllib_labels_with_an_absent_class_match_mllib(spark):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _small(spark, [0.0, 1.0, 3.0])  # class 2 absent: K = max + 1 = 4, as in MLlib
    kw = dict(regParam=0.1, standardization=False, **TIGHT)
    ours = SoftmaxRegression(**kw).fit(df)
    peer = LogisticRegression(family="multinomial", **kw).fit(df)
    assert ours.numClasses == peer.numClasses == 4 and ours.classes == [0.0, 1.0, 2.0, 3.0]
    assert np.abs(_proba(ours, df) - _proba(peer, df)).max() <= 1e-5
    pred = {r[0]: r[1] for r in ours.transform(df).select("id", "prediction").collect()}
    assert pred == {r[0]: r[1] for r in peer.transform(df).select("id", "prediction").collect()}


def test_thresholds_as_mllib(spark):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _small(spark, [0.0, 1.0, 2.0])
    kw = dict(regParam=0.05, thresholds=[0.6, 0.1, 0.3], **TIGHT)
    ours = SoftmaxRegression(**kw).fit(df)
    peer = LogisticRegression(family="multinomial", **kw).fit(df)
    rows = ours.transform(df).select("id", "probability", "prediction").collect()
    for r in rows:
        assert r["prediction"] == float(np.argmax(r["probability"].toArray() / np.array([0.6, 0.1, 0.3])))
    peer_pred = {r[0]: r[1] for r in peer.transform(df).select("id", "prediction").collect()}
    assert sum(peer_pred[r["id"]] != r["prediction"] for r in rows) == 0
    # set on the model later, as in MLlib; a wrong length is refused
    plain = ours.copy().setThresholds([1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="thresholds"):
        SoftmaxRegression(thresholds=[0.5, 0.5]).fit(df)
    assert plain.transform(df).count() == df.count()


def test_binomial_family_matches_mllib(spark):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _small(spark, [0.0, 1.0], seed=5)
    for family, standardization in (("binomial", False), ("auto", True)):
        kw = dict(regParam=0.05, standardization=standardization, **TIGHT)
        ours = SoftmaxRegression(family=family, **kw).fit(df)
        peer = LogisticRegression(family=family, **kw).fit(df)
        assert ours.isBinomial and ours.coefficientMatrix.numRows == 1
        np.testing.assert_allclose(ours.coefficients.toArray(), peer.coefficients.toArray(), atol=1e-5)
        assert ours.intercept == pytest.approx(peer.intercept, abs=1e-5)
        assert np.abs(_proba(ours, df) - _proba(peer, df)).max() <= 1e-6
        assert np.abs(_proba(ours, df, "rawPrediction") - _proba(peer, df, "rawPrediction")).max() <= 1e-4
        for model in (ours, peer):
            model.setThreshold(0.3)
        a = {r[0]: r[1] for r in ours.transform(df).select("id", "prediction").collect()}
        assert a == {r[0]: r[1] for r in peer.transform(df).select("id", "prediction").collect()}
        v = df.first()["features"]
        np.testing.assert_allclose(ours.predictProbability(v).toArray(), peer.predictProbability(v).toArray(),
                                   atol=1e-6)


def test_bad_params_are_clear_errors(spark):
    from pyspark.ml.linalg import Vectors

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _small(spark, [0.0, 1.0, 2.0], n=30)
    with pytest.raises(TypeError, match="l2 is an option of the plain Python API softmax_spark.SoftmaxTrainer"):
        SoftmaxRegression(l2=0.1)
    with pytest.raises(InputError, match="only supports L2"):
        SoftmaxRegression(regParam=0.1, elasticNetParam=0.5, lowerBoundsOnIntercepts=Vectors.dense([0.0] * 3)).fit(df)
    with pytest.raises(InputError, match="binomial"):
        SoftmaxRegression(family="binomial").fit(df)
    with pytest.raises(InputError, match="solver"):
        SoftmaxRegression(solver="adam").fit(df)
    with pytest.raises(InputError, match="not found"):
        SoftmaxRegression(labelCol="nope").fit(df)


def test_estimator_params_persist_and_extras_reach_training(spark, tmp_path):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    est = SoftmaxRegression(regParam=0.1, solver="sgd", batchFraction=0.5, learningRate=0.5, maxIter=5,
                            classWeight="balanced", seed=3)
    est.write().overwrite().save(str(tmp_path / "est"))
    back = SoftmaxRegression.load(str(tmp_path / "est"))
    assert back.uid == est.uid
    for name in ("regParam", "solver", "batchFraction", "learningRate", "classWeight", "seed", "standardization"):
        assert back.getOrDefault(name) == est.getOrDefault(name)
    model = back.fit(_small(spark, [0.0, 1.0, 2.0], n=60))
    assert model.summary.totalIterations == 5
    assert all("learning_rate" in h for h in model.summary.history)
    # warm start from the fitted model: already at its optimum region, so few iterations
    warm = SoftmaxRegression(regParam=0.1, initialModel=model, maxIter=3).fit(_small(spark, [0.0, 1.0, 2.0], n=60))
    assert warm.summary.objectiveHistory[0] <= model.summary.objectiveHistory[0]
