"""SoftmaxRegressionCV along elastic-net paths (elasticNetParams): CrossValidator's avgMetrics, λ_max of L1."""

import numpy as np
import pytest

N, K = 450, 3


@pytest.fixture(scope="module")
def frame(spark):
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(8)
    X = rng.normal(size=(N, 5)) * [1.0, 3.0, 0.3, 1.0, 1.0]
    W = rng.normal(size=(3, 5)) / [1.0, 3.0, 0.3, 1.0, 1.0]
    W[:, 3:] = 0.0  # two features carry nothing: the L1 part zeroes them
    y = (X @ W.T + rng.gumbel(size=(N, 3))).argmax(axis=1)
    rows = [(Vectors.dense(x.tolist()), float(c), i % K) for i, (x, c) in enumerate(zip(X, y))]
    return spark.createDataFrame(rows, ["features", "label", "fold"]).cache()


def test_enet_cv_metrics_equal_crossvalidator_over_ours(frame):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionCV

    grid, alphas = [0.05, 0.005], [0.0, 0.5]
    ours = SoftmaxRegressionCV(regParams=grid, elasticNetParams=alphas, foldCol="fold", numFolds=K).fit(frame)
    est = SoftmaxRegression(tol=1e-10)  # the separate L1 fits to (near) their optimum, as ours
    maps = ParamGridBuilder().addGrid(est.elasticNetParam, alphas).addGrid(est.regParam, grid).build()
    ref = CrossValidator(estimator=est, estimatorParamMaps=maps, evaluator=MulticlassClassificationEvaluator(
        metricName="logLoss"), foldCol="fold", numFolds=K).fit(frame)
    np.testing.assert_allclose(ours.cvMetrics, ref.avgMetrics, atol=1e-6, rtol=0)
    assert [(r["elasticNetParam"], r["regParam"]) for r in ours.path] == [(a, r) for a in alphas for r in grid]
    best = int(np.argmin(ref.avgMetrics))
    assert ours.bestIndex == best
    assert ours.bestElasticNetParam == alphas[best // 2] and ours.bestRegParam == grid[best % 2]
    assert ours.bestModel.getElasticNetParam() == ours.bestElasticNetParam
    # the refit equals a separate fit at the chosen point
    sep = SoftmaxRegression(regParam=ours.bestRegParam, elasticNetParam=ours.bestElasticNetParam,
                            tol=1e-10).fit(frame).softmaxModel
    np.testing.assert_allclose(ours.bestModel.softmaxModel.coef, sep.coef, atol=1e-5)


def test_default_l1_grid_starts_where_every_coefficient_is_zero(frame):
    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionCV

    m = SoftmaxRegressionCV(elasticNetParams=[1.0], numRegParams=3, regParamRatio=0.1, foldCol="fold",
                            numFolds=K, standardization=True).fit(frame)
    top = m.regParams[0]
    assert m.regParams[-1] == pytest.approx(top * 0.1)
    at_top = SoftmaxRegression(regParam=top * (1 + 1e-9), elasticNetParam=1.0).fit(frame).softmaxModel
    below = SoftmaxRegression(regParam=top * 0.95, elasticNetParam=1.0).fit(frame).softmaxModel
    assert np.count_nonzero(at_top.coef) == 0  # λ_max: the exact start of the L1 path
    assert np.count_nonzero(below.coef) > 0
    assert m.path[-1]["nonZeros"] > 0
