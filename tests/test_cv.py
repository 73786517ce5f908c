"""SoftmaxRegressionCV (softmax_spark.core.cv, ml_cv) and SoftmaxRegression.fitMultiple."""

import numpy as np
import pytest

from softmax_spark.core import cv
from softmax_spark.core.kernels import LossGradKernel
from helpers import load_job


def _data(n=600, D=4, C=3, seed=0, scale=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) * (np.logspace(-1, 1, D) if scale else 1.0)
    W = rng.normal(size=(C, D)) / (np.logspace(-1, 1, D) if scale else 1.0)
    Z = X @ W.T
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random((n, 1))).argmax(1)
    return X, y


# -- numpy only ---------------------------------------------------------------------------------
def test_slots_kernel_equals_kernels_on_fold_subsets():
    X, y = _data(300)
    K, C = 3, 3
    fold = np.arange(300) % K
    codes = fold * C + y
    w = np.random.default_rng(1).random(300)
    coefs = [np.random.default_rng(k).normal(size=(C, 4)) for k in range(K)]
    payloads = [(c, np.zeros(C)) for c in coefs] + [(coefs[0], np.ones(C))]
    slots = [(LossGradKernel(), "train", k) for k in range(K)] + [(LossGradKernel(), "valid", 1)]
    kern = cv.SlotsKernel(C, slots)
    acc = kern.zero(C, 4)
    for lo in (0, 128, 256):  # chunks
        sl = slice(lo, lo + 128)
        acc = kern.add(acc, payloads, X[sl], codes[sl], w[sl])
    for i, (_, mode, k) in enumerate(slots):
        rows = fold != k if mode == "train" else fold == k
        ref = LossGradKernel().add(LossGradKernel().zero(C, 4), payloads[i], X[rows], y[rows], w[rows])
        np.testing.assert_allclose(acc.accs[i].result()[1], ref.result()[1], rtol=1e-12)
        assert acc.accs[i].loss_sum == pytest.approx(ref.loss_sum, rel=1e-12)


def test_fold_moments_training_is_total_minus_fold():
    X, y = _data(200)
    K, C = 4, 3
    fold = np.arange(200) % K
    w = np.random.default_rng(2).random(200) + 0.5
    kern = cv.MomentsKernel(K, C)
    shift = X.mean(0)
    acc = kern.add(kern.zero(C, 4), shift, X, fold * C + y, w)
    m = cv.FoldMoments.of(acc, shift, 2, exclude=True)
    rows = fold != 2
    mean = np.average(X[rows], axis=0, weights=w[rows])
    np.testing.assert_allclose(m.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(m.var, np.average((X[rows] - mean) ** 2, axis=0, weights=w[rows]), rtol=1e-10)
    assert m.rows == rows.sum() and m.weight_sum == pytest.approx(w[rows].sum())


def test_metric_kernel_matches_sklearn_metrics():
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    X, y = _data(400)
    w = np.random.default_rng(3).random(400)
    coef, b = np.random.default_rng(4).normal(size=(3, 4)) * 5, np.zeros(3)
    acc = cv.MetricKernel().add(cv.MetricKernel().zero(3, 4), (coef, b), X, y, w)
    z = X @ coef.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pred = p.argmax(1)
    assert cv.metric_value(acc, "accuracy") == pytest.approx(accuracy_score(y, pred, sample_weight=w), rel=1e-12)
    assert cv.metric_value(acc, "f1") == pytest.approx(f1_score(y, pred, average="weighted", sample_weight=w),
                                                       rel=1e-12)
    clipped = np.clip(p[np.arange(400), y], 1e-15, 1 - 1e-15)
    assert cv.metric_value(acc, "logLoss") == pytest.approx(np.average(-np.log(clipped), weights=w), rel=1e-12)
    # sklearn clips at float64 eps, MLlib at 1e-15: equal when no probability is that small
    acc2 = cv.MetricKernel().add(cv.MetricKernel().zero(3, 4), (coef / 50, b), X, y, w)
    z = X @ (coef / 50).T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert cv.metric_value(acc2, "logLoss") == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-9)


def test_grid_and_one_standard_error_rule():
    grid = cv.regparam_grid(1.0, 5, 1e-4)
    np.testing.assert_allclose(grid, [1, 1e-1, 1e-2, 1e-3, 1e-4])
    means = [0.9, 0.61, 0.6, 0.62]
    se = [0.01, 0.02, 0.02, 0.02]
    regs = [1.0, 0.1, 0.01, 0.001]
    assert cv.best_index(means, False) == 2
    assert cv.one_standard_error_index(means, se, regs, False) == 1  # 0.61 ≤ 0.6 + 0.02, larger regParam


def test_lockstep_passes_runs_every_fold_per_round():
    calls = []

    def run_pass(slots, payloads):
        calls.append(len(slots))
        return cv.SlotsAccumulator([p for p in payloads])

    lock = cv.LockstepPasses(run_pass)
    fits = {("train", k): (lambda k=k: [lock.request(("train", k), None, k * 10 + j) for j in range(k + 1)])
            for k in range(3)}
    out = lock.run(fits)
    assert out[("train", 2)] == [20, 21, 22]
    assert calls == [3, 2, 1]  # a converged fold leaves the lockstep


# -- Spark --------------------------------------------------------------------------------------
N, K = 600, 3
GRID = [0.3, 1e-2, 1e-3, 1e-4]


@pytest.fixture(scope="module")
def frame(spark):
    from pyspark.ml.linalg import Vectors

    X, y = _data(N)
    rows = [(Vectors.dense(x.tolist()), float(c), int(i % K)) for i, (x, c) in enumerate(zip(X, y))]
    return spark.createDataFrame(rows, ["features", "label", "fold"]).cache(), X, y


@pytest.fixture(scope="module")
def fitted(frame):
    from softmax_spark.ml import SoftmaxRegressionCV

    df, _, _ = frame
    return SoftmaxRegressionCV(regParams=GRID, foldCol="fold", numFolds=K, standardization=False).fit(df)


def _proba(coef, b, X):
    z = X @ coef.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def test_fold_models_equal_separate_exact_fits(frame, fitted):
    from pyspark.sql import functions as F

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df, X, _ = frame
    for i in (0, 3):
        for k in (0, 2):
            sep = SoftmaxRegression(regParam=GRID[i], standardization=False, tol=1e-16).fit(df.filter(F.col("fold") != k))
            m = sep.softmaxModel
            coef, b = fitted.foldModels[i][k]
            assert np.max(np.abs(_proba(coef, b, X) - _proba(m.coef, m.intercept, X))) < 1e-6


def test_cv_metrics_equal_crossvalidator_over_ours(frame, fitted):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from softmax_spark.sparkml.classification import SoftmaxRegression

    df, X, _ = frame
    est = SoftmaxRegression(standardization=False)
    grid = ParamGridBuilder().addGrid(est.regParam, GRID).build()
    ev = MulticlassClassificationEvaluator(metricName="logLoss")
    m = CrossValidator(estimator=est, estimatorParamMaps=grid, evaluator=ev, foldCol="fold", numFolds=K).fit(df)
    np.testing.assert_allclose(fitted.cvMetrics, m.avgMetrics, atol=1e-6, rtol=0)
    np.testing.assert_allclose(fitted.stdMetrics, m.stdMetrics, atol=1e-6, rtol=0)
    assert fitted.bestRegParam == GRID[int(np.argmin(m.avgMetrics))]
    # bestModel = the chosen regParam refit on all rows; transform delegates to it
    ref = SoftmaxRegression(regParam=fitted.bestRegParam, standardization=False, tol=1e-16).fit(df).softmaxModel
    best = fitted.bestModel.softmaxModel
    assert np.max(np.abs(_proba(best.coef, best.intercept, X) - _proba(ref.coef, ref.intercept, X))) < 1e-6
    out = fitted.transform(df).select("probability").collect()
    assert np.max(np.abs(np.array([r[0].toArray() for r in out]) - _proba(ref.coef, ref.intercept, X))) < 1e-6
    assert [r["regParam"] for r in fitted.path] == GRID and all(r["iterations"] >= 1 for r in fitted.path)
    assert best.metadata["cross_validation"]["path"][0]["regParam"] == GRID[0]


def test_chosen_regparam_equals_sklearn_logistic_regression_cv(frame, fitted):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit

    _, X, y = frame
    n_train = N - N // K  # equal folds: C = 1/(2λN) = 1/(regParam·N_train) (README)
    Cs = [1.0 / (r * n_train) for r in GRID]
    skl = LogisticRegressionCV(Cs=Cs, cv=PredefinedSplit(np.arange(N) % K), scoring="neg_log_loss", tol=1e-12,
                               max_iter=10000).fit(X, y)
    assert 1.0 / (skl.C_[0] * n_train) == pytest.approx(fitted.bestRegParam, rel=1e-9)
    means = skl.scores_[next(iter(skl.scores_))].mean(axis=0)
    np.testing.assert_allclose(-means, fitted.cvMetrics, atol=1e-6)


def test_hash_folds_default_grid_accuracy_and_1se(frame):
    from softmax_spark.ml import SoftmaxRegressionCV

    df, _, _ = frame
    m = SoftmaxRegressionCV(numRegParams=4, numFolds=3, metric="accuracy", oneStandardErrorRule=True,
                            seed=7).fit(df.drop("fold"))
    assert len(m.regParams) == 4 and m.regParams[0] > m.regParams[-1]
    assert m.regParams[-1] == pytest.approx(m.regParams[0] * 1e-4)
    assert all(0 <= v <= 1 for v in m.cvMetrics)
    se = [r["stdErr"] for r in m.path]
    assert m.bestIndex == cv.one_standard_error_index(m.cvMetrics, se, m.regParams, True)


def test_bad_params(frame):
    from softmax_spark.core.errors import InputError
    from softmax_spark.ml import SoftmaxRegressionCV

    df, _, _ = frame
    with pytest.raises(InputError, match="elasticNetParams"):
        SoftmaxRegressionCV(regParams=[0.1], elasticNetParams=[1.5]).fit(df)
    with pytest.raises(InputError, match="foldCol 'fold'"):
        SoftmaxRegressionCV(regParams=[0.1], foldCol="fold", numFolds=2).fit(df)
    with pytest.raises(InputError, match="metric"):
        SoftmaxRegressionCV(metric="auc").fit(df)


def test_fit_multiple_equals_separate_fits(frame):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    df, X, _ = frame
    est = SoftmaxRegression(standardization=True)
    maps = [{est.regParam: r} for r in (1e-3, 0.3, 1e-2)] + [{est.regParam: 1e-2, est.fitIntercept: False}]
    got = dict(est.fitMultiple(df, maps))
    for i, pm in enumerate(maps):
        # a map alone in its group (fitIntercept differs) is a plain fit; path maps run to the exact rule
        alone = est.fitIntercept in pm
        sep = (est.copy(pm) if alone else est.copy(pm).setTol(1e-16)).fit(df).softmaxModel
        m = got[i].softmaxModel
        assert got[i].getRegParam() == pm[est.regParam]
        assert np.max(np.abs(_proba(m.coef, m.intercept, X) - _proba(sep.coef, sep.intercept, X))) < 1e-6


def test_train_job_cv_folds_writes_path_table_plot_and_model(spark, tmp_path, frame):
    import csv
    import json
    import os

    df, X, _ = frame
    data = str(tmp_path / "data.parquet")
    df.write.parquet(data)
    job = load_job("train")
    out = str(tmp_path / "model")
    rc = job.main(["--input", data, "--model-dir", out, "--cv-folds", "3", "--cv-fold-col", "fold",
                   "--l2-path", ",".join(str(r / 2) for r in GRID)], spark=spark)
    assert rc == 0
    for name in ("cv_path.csv", "cv_path.parquet", "cv_path.txt", "cv_curve.png", "mllib"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "cv_path.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["l2"]) for r in rows] == pytest.approx([r / 2 for r in GRID])
    assert sum(r["chosen"] == "True" for r in rows) == 1
    from softmax_spark.io.model_io import load_model

    model = load_model(out)
    chosen = next(float(r["l2"]) for r in rows if r["chosen"] == "True")
    assert model.metadata["l2"] == pytest.approx(chosen)
    assert len(model.metadata["cross_validation"]["path"]) == len(GRID)
    json.dumps(model.metadata)  # the path in the metadata is plain JSON
    bad = job.main(["--input", data, "--model-dir", str(tmp_path / "m2"), "--cv-folds", "3",
                    "--optimizer", "sgd"], spark=spark)
    assert bad == 2
