"""MLlib's summary API on SoftmaxRegressionModel (issue 27): every field equals MLlib's
LogisticRegressionSummary on the same fitted probabilities (1e-9), multinomial (weighted) and
binomial, training summary and evaluate(); the Connect fallback's formulas equal MLlib's."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.classification import (
    BinaryLogisticRegressionSummary, BinaryLogisticRegressionTrainingSummary, LogisticRegression,
    LogisticRegressionSummary, LogisticRegressionTrainingSummary,
)
from pyspark.ml.linalg import Vectors
from sklearn import datasets

from softmax_spark.sparkml.classification import SoftmaxRegression
from softmax_spark.sparkml.summary import _ConfusionMetrics

MULTI = ["accuracy", "weightedPrecision", "weightedRecall", "weightedTruePositiveRate",
         "weightedFalsePositiveRate", "labels", "precisionByLabel", "recallByLabel", "truePositiveRateByLabel",
         "falsePositiveRateByLabel"]


def _frame(spark, X, y, w=None):
    rows = [(Vectors.dense(r.tolist()), float(k), float(1.0 if w is None else w[i])) for i, (r, k) in
            enumerate(zip(X, y))]
    return spark.createDataFrame(rows, ["features", "label", "w"])


def _close(a, b, tol=1e-9):
    assert np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=tol, equal_nan=True), (a, b)


def _compare(ours, theirs):
    for name in MULTI:
        _close(getattr(ours, name), getattr(theirs, name))
    for beta in (0.5, 1.0, 2.0):
        _close(ours.fMeasureByLabel(beta), theirs.fMeasureByLabel(beta))
        _close(ours.weightedFMeasure(beta), theirs.weightedFMeasure(beta))
    for name in ("predictionCol", "probabilityCol", "labelCol", "featuresCol", "weightCol"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.predictions.count() == theirs.predictions.count()


@pytest.fixture(scope="module")
def wine_fits(spark):
    X, y = datasets.load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    k = 140
    tr, te = _frame(spark, X[:k], y[:k], w[:k]), _frame(spark, X[k:], y[k:], w[k:])
    kw = dict(regParam=0.05, family="multinomial", tol=1e-12, maxIter=500, weightCol="w")
    return SoftmaxRegression(**kw).fit(tr), LogisticRegression(**kw).fit(tr), te


def test_multinomial_weighted_summary_and_evaluate_equal_mllib(wine_fits):
    ours, mllib, te = wine_fits
    assert isinstance(ours.summary, LogisticRegressionTrainingSummary)
    assert not isinstance(ours.summary, BinaryLogisticRegressionSummary)
    _compare(ours.summary, mllib.summary)
    ev = ours.evaluate(te)
    assert isinstance(ev, LogisticRegressionSummary) and not isinstance(ev, LogisticRegressionTrainingSummary)
    _compare(ev, mllib.evaluate(te))
    assert ours.summary.totalIterations == len(ours.summary.objectiveHistory) > 0


def test_connect_fallback_formulas_equal_mllib(wine_fits):
    """``_ConfusionMetrics`` (what a Spark Connect session computes) on the same predictions."""
    ours, mllib, te = wine_fits
    for summary in (ours.summary, ours.evaluate(te)):
        local = _ConfusionMetrics.from_predictions(summary._source)
        for name in MULTI:
            _close(local.value(name), getattr(summary, name))
        _close(local.value("fMeasureByLabel", 0.5), summary.fMeasureByLabel(0.5))
        _close(local.value("weightedFMeasure", 2.0), summary.weightedFMeasure(2.0))


def test_binomial_summary_and_evaluate_equal_mllib(spark):
    X, y = datasets.load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    k = 455
    tr, te = _frame(spark, X[:k], y[:k]), _frame(spark, X[k:], y[k:])
    kw = dict(regParam=0.01, family="binomial", tol=1e-12, maxIter=500)
    ours, mllib = SoftmaxRegression(**kw).fit(tr), LogisticRegression(**kw).fit(tr)
    assert isinstance(ours.summary, BinaryLogisticRegressionTrainingSummary)
    for so, sm in ((ours.summary, mllib.summary), (ours.evaluate(te), mllib.evaluate(te))):
        _compare(so, sm)
        assert so.scoreCol == sm.scoreCol
        _close(so.areaUnderROC, sm.areaUnderROC)
        for curve in ("roc", "pr", "fMeasureByThreshold", "precisionByThreshold", "recallByThreshold"):
            a = np.array(getattr(so, curve).toPandas().to_numpy(), dtype=float)
            b = np.array(getattr(sm, curve).toPandas().to_numpy(), dtype=float)
            assert a.shape == b.shape and a.shape[0] > 2, curve
            if curve.endswith("ByThreshold"):  # the thresholds are the two fits' probabilities (same optimum,
                assert np.allclose(a[:, 0], b[:, 0], rtol=1e-4, atol=1e-12), curve  # to the solvers' tolerances)
                a, b = a[:, 1:], b[:, 1:]
            _close(a, b)


def test_string_labels_use_class_indices(spark):
    X, y = datasets.load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    df = spark.createDataFrame([(Vectors.dense(r.tolist()), str(k)) for r, k in zip(X, names)], ["features", "label"])
    model = SoftmaxRegression(regParam=0.1).fit(df)
    s = model.summary
    assert s.labelCol == "label_index" and s.labels == [0.0, 1.0, 2.0]
    assert 0.9 < s.accuracy <= 1.0
