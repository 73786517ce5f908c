"""SoftmaxRegressionCV along elastic-net paths (elasticNetParams): CrossValidator's avgMetrics, λ_max of L1."""

import os

import numpy as np
import pytest
from helpers import load_job

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


def test_train_job_cv_elastic_net_path_and_l1_refused(spark, tmp_path, frame):
    import csv

    data = str(tmp_path / "data.parquet")
    frame.write.parquet(data)
    job = load_job("train")
    out = str(tmp_path / "model")
    rc = job.main(["--input", data, "--model-dir", out, "--cv-folds", "3", "--cv-fold-col", "fold",
                   "--l2-path", "0.02,0.002", "--cv-elastic-net", "0,0.5", "--no-write-mllib"], spark=spark)
    assert rc == 0
    with open(os.path.join(out, "cv_path.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [(float(r["elasticNetParam"]), float(r["regParam"])) for r in rows] == \
        [(0.0, 0.04), (0.0, 0.004), (0.5, 0.04), (0.5, 0.004)]
    for r in rows:  # λ₂ = (1 − α)·regParam/2, λ₁ = α·regParam
        a, reg = float(r["elasticNetParam"]), float(r["regParam"])
        assert float(r["l2"]) == pytest.approx((1 - a) * reg / 2) and float(r["l1"]) == pytest.approx(a * reg)
    from softmax_spark.io.model_io import load_model

    chosen = next(r for r in rows if r["chosen"] == "True")
    model = load_model(out)
    assert model.metadata["l2"] == pytest.approx(float(chosen["l2"]))
    assert model.metadata["options"]["l1"] == pytest.approx(float(chosen["l1"]))
    bad = job.main(["--input", data, "--model-dir", str(tmp_path / "m2"), "--cv-folds", "3", "--l1", "0.01"],
                   spark=spark)
    assert bad == 2
