"""Coefficient inference (issue 27): standard errors and p-values equal statsmodels' MNLogit / Logit
on unpenalised fits where the MLE exists; separable data is refused with a message; the Spark
paths (summary.coefficientTable, fit.coefficients.coefficient_table, train --inference)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn import datasets

from softmax_spark.core.inference import InferenceError, InferenceKernel, coefficient_table
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import NumpyProblem
from softmax_spark.solvers.newton import Newton

import core_helpers

sm = pytest.importorskip("statsmodels.api")


# rows drawn from a softmax model (not separable: the MLE exists); X is drawn before W here
softmax_data = functools.partial(core_helpers.softmax_data, n=3000, seed=11, x_first=True)


def badly_scaled_binary():
    """breast_cancer's raw radius, texture, area, smoothness, symmetry (std 3.5, 4.3, 352, 0.014,
    0.027): not separable (statsmodels converges; all 30 features are separable)."""
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return X[:, [0, 1, 3, 4, 8]], y


def newton_fit(X, y, l2=0.0, iters=100, w=None):
    """(coef, intercept, converged) by our Newton on NumpyProblem (tol 1e-20)."""
    X = np.asarray(X, dtype=np.float64)
    C, D = int(y.max()) + 1, X.shape[1]
    mean = X.mean(0)
    penalty = L2Penalty(l2)
    precond = Preconditioner(C, D, mean, ((X - mean) ** 2).mean(0), penalty, True, False)
    problem = NumpyProblem(X, y, w, precond, penalty)
    solver = Newton(tol=1e-20)
    state = solver.init(np.zeros(problem.n_params), problem)
    for it in range(1, iters + 1):
        try:
            state, _ = solver.step(problem, state, it)
        except Exception:  # noqa: BLE001 — a diverging unpenalised fit may stall; its last θ is what we test
            break
        if solver.stop_reason(state, []):
            return (*problem.to_model(state.theta), True)
    return (*problem.to_model(state.theta), False)


def sums_at(coef, intercept, X, y, w=None):
    kernel = InferenceKernel(True)
    acc = kernel.zero(coef.shape[0], X.shape[1])
    for start in range(0, len(y), 700):  # several chunks and merges, as in a distributed pass
        part = kernel.zero(coef.shape[0], X.shape[1])
        sl = slice(start, start + 700)
        part = kernel.add(part, (coef, intercept), np.asarray(X[sl], dtype=np.float64), y[sl],
                          None if w is None else w[sl])
        acc.merge(part)
    return acc.result()


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))


def test_multinomial_equals_statsmodels_mnlogit():
    X, y = softmax_data()
    coef, intercept, ok = newton_fit(X, y)
    assert ok
    t = coefficient_table(sums_at(coef, intercept, X, y), coef, intercept, [0, 1, 2])
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    # statsmodels: params (1 + D, C − 1), constant first; ours class-major, intercept last
    for c in (1, 2):
        rows = t[t["class"] == c]
        se = np.r_[rows["std_error"].to_numpy()[-1], rows["std_error"].to_numpy()[:-1]]
        pv = np.r_[rows["p_value"].to_numpy()[-1], rows["p_value"].to_numpy()[:-1]]
        coefs = np.r_[rows["coefficient"].to_numpy()[-1], rows["coefficient"].to_numpy()[:-1]]
        assert rel(se, np.asarray(ref.bse)[:, c - 1]) <= 1e-6
        assert rel(pv, np.asarray(ref.pvalues)[:, c - 1]) <= 1e-6
        assert np.allclose(coefs, np.asarray(ref.params)[:, c - 1], rtol=1e-8, atol=1e-10)
    assert list(t.columns) == ["class", "feature", "coefficient", "std_error", "z", "p_value", "ci_low", "ci_high"]


def test_reference_class_choice_and_centred_parameterisation():
    X, y = softmax_data(n=1500)
    coef, intercept, _ = newton_fit(X, y)
    sums = sums_at(coef, intercept, X, y)
    t2 = coefficient_table(sums, coef, intercept, ["a", "b", "c"], reference_class="c")
    relabel = np.array([1, 2, 0])[y]  # class "c" becomes statsmodels' base (0)
    ref = sm.MNLogit(relabel, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    se_a = t2[t2["class"] == "a"]["std_error"].to_numpy()
    assert rel(np.r_[se_a[-1], se_a[:-1]], np.asarray(ref.bse)[:, 0]) <= 1e-6
    # centred: the same covariance mapped linearly, so it does not depend on the reference class
    c0 = coefficient_table(sums, coef, intercept, ["a", "b", "c"], parameterization="centred", reference_class="a")
    c2 = coefficient_table(sums, coef, intercept, ["a", "b", "c"], parameterization="centred", reference_class="c")
    assert len(c0) == 3 * 6 and rel(c0["std_error"], c2["std_error"]) <= 1e-9
    assert np.allclose(c0.groupby("feature")["coefficient"].sum(), 0, atol=1e-10)


def test_binary_badly_scaled_equals_statsmodels_logit_and_hc0():
    X, y = badly_scaled_binary()
    coef, intercept, ok = newton_fit(X, y)
    assert ok
    sums = sums_at(coef, intercept, X, y)
    t = coefficient_table(sums, coef, intercept, [0, 1])
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    order = lambda col: np.r_[t[col].to_numpy()[-1], t[col].to_numpy()[:-1]]  # noqa: E731
    assert rel(order("std_error"), ref.bse) <= 1e-6
    assert rel(order("p_value"), ref.pvalues) <= 1e-6
    lo, hi = np.asarray(ref.conf_int()).T
    assert np.allclose(order("ci_low"), lo, rtol=1e-6) and np.allclose(order("ci_high"), hi, rtol=1e-6)
    # the sandwich H⁻¹BH⁻¹ is statsmodels' HC0 robust covariance
    robust = sm.Logit(y, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0, cov_type="HC0")
    s = coefficient_table(sums, coef, intercept, [0, 1], covariance="sandwich")
    assert rel(np.r_[s["std_error"].to_numpy()[-1], s["std_error"].to_numpy()[:-1]], robust.bse) <= 1e-6


def test_auto_covariance_is_sandwich_for_weighted_or_penalised():
    X, y = softmax_data(n=800)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    coef, intercept, _ = newton_fit(X, y, w=w)
    assert coefficient_table(sums_at(coef, intercept, X, y, w), coef, intercept, [0, 1, 2]).attrs["covariance"] \
        == "sandwich"
    coef, intercept, _ = newton_fit(X, y, l2=1e-2)
    t = coefficient_table(sums_at(coef, intercept, X, y), coef, intercept, [0, 1, 2], l2=1e-2)
    assert t.attrs["covariance"] == "sandwich" and np.all(np.isfinite(t["std_error"]))


@pytest.mark.parametrize("name", ["wine", "iris", "breast_cancer"])
@pytest.mark.parametrize("iters", [12, 100])
def test_separable_data_is_refused(name, iters):
    """Unpenalised fits on separable sets (statsmodels reports standard errors of ~1e6 there) —
    after a few iterations or many — raise InferenceError naming the cause."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    coef, intercept, _ = newton_fit(X, y, iters=iters)
    with pytest.raises(InferenceError, match="separable"):
        coefficient_table(sums_at(coef, intercept, X, y), coef, intercept, list(range(int(y.max()) + 1)))


def test_bad_arguments():
    X, y = softmax_data(n=300)
    coef, intercept, _ = newton_fit(X, y)
    sums = sums_at(coef, intercept, X, y)
    with pytest.raises(ValueError, match="referenceClass"):
        coefficient_table(sums, coef, intercept, [0, 1, 2], reference_class=7)
    with pytest.raises(ValueError, match="parameterization"):
        coefficient_table(sums, coef, intercept, [0, 1, 2], parameterization="odd")


# -- Spark ----------------------------------------------------------------------------------------
def _frame(spark, X, y):
    from pyspark.ml.linalg import Vectors

    return spark.createDataFrame([(Vectors.dense(r.tolist()), float(k)) for r, k in zip(X, y)], ["features", "label"])


def test_summary_coefficient_table_and_loaded_model(spark, tmp_path):
    from softmax_spark.sparkml.classification import SoftmaxRegression, SoftmaxRegressionModel

    X, y = softmax_data(n=2000, d=4)
    df = _frame(spark, X, y)
    model = SoftmaxRegression(regParam=0.0, standardization=False, tol=1e-14, maxIter=200).fit(df)
    t = model.summary.coefficientTable(referenceClass=0)
    assert t.columns == ["class", "feature", "coefficient", "std_error", "z", "p_value", "ci_low", "ci_high"]
    pdf = t.toPandas()
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    assert rel(np.sort(pdf["std_error"].to_numpy()), np.sort(np.asarray(ref.bse).ravel())) <= 1e-6
    assert rel(np.sort(pdf["p_value"].to_numpy()), np.sort(np.asarray(ref.pvalues).ravel())) <= 1e-6
    # the notebook method on the SoftmaxModel: the same table, as pandas
    from softmax_spark.fit.coefficients import coefficient_table as table_on_dataframe

    nb = table_on_dataframe(model.softmaxModel, df, reference_class=0)
    assert rel(nb["std_error"], pdf["std_error"]) <= 1e-9
    path = str(tmp_path / "m")
    model.write().save(path)
    loaded = SoftmaxRegressionModel.load(path)
    assert loaded.hasSummary and loaded.summary.totalIterations == model.summary.totalIterations
    assert loaded.summary.optimalityGapBound == model.summary.optimalityGapBound
    with pytest.raises(RuntimeError, match="evaluate"):
        loaded.summary.accuracy
    with pytest.raises(RuntimeError, match="training data"):
        loaded.summary.coefficientTable()


def test_train_inference_writes_parquet_and_text(spark, tmp_path):
    import pyarrow.parquet as pq

    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.fit.training import fit_dataframe

    X, y = softmax_data(n=1500, d=3)
    cfg = TrainConfig(input="<DataFrame>", model_dir=str(tmp_path / "model"), l2=0.0, inference=True,
                      write_mllib=False, tol=1e-14)
    fit_dataframe(spark, cfg, df=_frame(spark, X, y))
    table = pq.read_table(str(tmp_path / "model" / "inference.parquet")).to_pandas()
    assert len(table) == 2 * 4 and set(table["class"]) == {"1.0", "2.0"}
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    assert rel(np.sort(table["std_error"].to_numpy()), np.sort(np.asarray(ref.bse).ravel())) <= 1e-6
    text = (tmp_path / "model" / "inference.txt").read_text()
    assert "std_err" in text and "intercept" in text
