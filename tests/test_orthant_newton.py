"""The second-order finish above the Newton bound (``solvers/orthant_newton.py``, ``qn-newton-cg``):
L-BFGS / OWL-QN, then (orthant-wise, projected) Newton-CG over Hessian-vector passes.

Judged on a synthetic bag-of-words set (``bow_data.make_bow``: Zipf word counts with class topics,
CSR) against exact references that share no code with it: the dense-Hessian ``newton`` (L2) and
``prox-newton`` (L1 / bounds; coordinate descent on the exact quadratic model) solved to KKT ≤ 1e-10,
on a problem small enough for them (P ≤ 4096); the KKT residual is recomputed here in numpy.
"""

import numpy as np
import pytest

from bow_data import SparseNumpyProblem, make_bow, sparse_moments
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.core.penalty import L1Penalty, L2Penalty, feature_weights, l1_feature_weights
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.solvers import LBFGS, Newton, OrthantNewtonCG, ProxNewton
from softmax_spark.solvers.auto import choose_nonsmooth_solver, choose_solver

C, D = 3, 200  # P = 3 · 201 = 603: within the Newton bound, so the exact solvers can be the reference


@pytest.fixture(scope="module")
def bow():
    X, y = make_bow(1000, D, C, seed=3, mean_length=30, topic_words=30)
    Xte, _ = make_bow(500, D, C, seed=4, mean_length=30, topic_words=30)
    return X, y, Xte


def _softmax(Z):
    Z = Z - Z.max(1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(1, keepdims=True)


def _fit(X, y, solver, l2, l1=0.0, std=False, lower=None, max_iter=500):
    n = X.shape[0]
    mean, var = sparse_moments(X)
    sig = np.sqrt(var * n / (n - 1))
    pen = L2Penalty(l2, feature_weights(D, std, sig), standardize=std)
    pre = Preconditioner(C, D, mean, var, pen, True)
    problem = SparseNumpyProblem(X, y, pre, pen)
    if l1 or lower is not None:
        problem.nonsmooth = L1Penalty(l1, l1_feature_weights(D, std, sig), lower=lower).in_theta(pre)
    result = TrainingLoop(solver, problem, max_iter).run(np.zeros(pre.size))
    W, b = pre.to_model(result.theta)
    if problem.nonsmooth is not None:
        W, b = problem.nonsmooth.snap(result.theta, W, b)
    return W, b, result, problem


def _kkt(X, y, W, b, l2, l1, std, lower=None):
    """max KKT residual of mean log-loss + l1 Σ ω|w| + l2 Σ p w² (model coordinates), in numpy."""
    n = X.shape[0]
    sig = np.sqrt(sparse_moments(X)[1] * n / (n - 1)) if std else np.ones(D)
    R = _softmax(X @ W.T + b) - np.eye(C)[y]
    G = np.asarray(X.T @ R).T / n + 2 * l2 * W * sig**2
    gam = l1 * sig * np.ones_like(W)
    res = np.where(W != 0, np.abs(G + gam * np.sign(W)), np.maximum(np.abs(G) - gam, 0))
    if lower is not None:
        res = np.where(W <= lower, np.maximum(-G, 0), res)
    return float(max(res.max(), np.abs(R.mean(0)).max()))


@pytest.mark.parametrize("std", [False, True])
def test_l2_finish_reaches_the_exact_optimum(bow, std):
    X, y, Xte = bow
    Wr, br, ref, _ = _fit(X, y, Newton(tol=1e-30), 1e-3, std=std)
    W, b, res, problem = _fit(X, y, OrthantNewtonCG(), 1e-3, std=std)
    assert res.reason.startswith("KKT residual")
    assert {h["phase"] for h in res.history} == {1, 2}
    assert _kkt(X, y, W, b, 1e-3, 0.0, std) <= 1e-8
    assert np.abs(_softmax(Xte @ W.T + b) - _softmax(Xte @ Wr.T + br)).max() <= 1e-6


@pytest.mark.parametrize("std", [False, True])
def test_elastic_net_finish_same_support_as_prox_newton(bow, std):
    X, y, Xte = bow
    l1, l2 = 5e-4, 2.5e-4  # MLlib's regParam 1e-3, α = 0.5
    Wr, br, _, _ = _fit(X, y, ProxNewton(kkt_tol=1e-11), l2, l1, std)
    assert _kkt(X, y, Wr, br, l2, l1, std) <= 1e-10
    W, b, res, _ = _fit(X, y, OrthantNewtonCG(), l2, l1, std)
    assert res.reason.startswith("KKT residual")
    assert res.history[-1]["kkt_residual"] <= 1e-6 and _kkt(X, y, W, b, l2, l1, std) <= 1e-6
    np.testing.assert_array_equal(W != 0, Wr != 0)
    assert 0 < np.count_nonzero(W) < W.size
    assert np.abs(_softmax(Xte @ W.T + b) - _softmax(Xte @ Wr.T + br)).max() <= 1e-6


def test_bounds_finish_stays_inside_and_is_certified(bow):
    X, y, Xte = bow
    Wr, br, _, _ = _fit(X, y, ProxNewton(kkt_tol=1e-11), 1e-3, lower=0.0)
    W, b, res, _ = _fit(X, y, OrthantNewtonCG(), 1e-3, lower=0.0)
    assert (W >= 0).all() and (W == 0).any()
    assert _kkt(X, y, W, b, 1e-3, 0.0, False, lower=0.0) <= 1e-6
    np.testing.assert_array_equal(W == 0, Wr == 0)
    assert np.abs(_softmax(Xte @ W.T + b) - _softmax(Xte @ Wr.T + br)).max() <= 1e-6


def test_lbfgs_alone_stops_further_away(bow):
    """Why the finish exists: L-BFGS at its default tol 1e-9 is further from the optimum."""
    X, y, Xte = bow
    Wr, br, _, _ = _fit(X, y, Newton(tol=1e-30), 1e-4)
    W1, b1, _, _ = _fit(X, y, LBFGS(), 1e-4)
    W2, b2, _, _ = _fit(X, y, OrthantNewtonCG(), 1e-4)
    P = _softmax(Xte @ Wr.T + br)
    far, near = np.abs(_softmax(Xte @ W1.T + b1) - P).max(), np.abs(_softmax(Xte @ W2.T + b2) - P).max()
    assert near <= 1e-6 and near < far


def test_auto_picks_the_finish_above_the_newton_bound():
    assert choose_solver(9751, 6, 8700, True, density=4e-3)[0] == "qn-newton-cg"
    assert choose_nonsmooth_solver(500_000, 20, 2**17, True, density=1e-3)[0] == "qn-newton-cg"
    assert choose_solver(1_000_000, 10, 64, True)[0] == "lbfgs"  # many rows, modest P: unchanged


def test_one_hot_with_constant_columns_under_standardization():
    """digits' pixel intensities one-hot encoded: some columns are constant in the rows (σ_j = 0, unpenalised,
    their centred values rounding noise). The finish leaves those flat coordinates alone; before, its line
    search stalled at a KKT residual of 6.7e-8 on this set (bench/onehot_l2.py)."""
    from sklearn.datasets import load_digits

    from softmax_spark.core.problem import NumpyProblem, weighted_moments

    X, y = load_digits(return_X_y=True)
    X, y = X[:700], y[:700]
    A = np.array([(X[:, j] == v).astype(float) for j in range(64) for v in np.unique(X[:, j])]).T
    assert (A.std(0) == 0).any()
    n, d = A.shape
    sig = A.std(0, ddof=1)
    pen = L2Penalty(0.005, feature_weights(d, True, sig), standardize=True)
    _, mean, var = weighted_moments(A)
    pre = Preconditioner(10, d, mean, var, pen, True)
    result = TrainingLoop(OrthantNewtonCG(), NumpyProblem(A, y, None, pre, pen), 300).run(np.zeros(pre.size))
    assert result.reason.startswith("KKT residual")
    W, b = pre.to_model(result.theta)
    R = _softmax(A @ W.T + b) - np.eye(10)[y]
    assert max(np.abs(R.T @ A / n + 0.01 * W * sig**2).max(), np.abs(R.mean(0)).max()) <= 1e-8


def test_estimator_auto_never_ends_on_plain_lbfgs():
    """At MLlib's tol the Estimator promises the optimum: where auto would pick lbfgs (a Hessian pass too
    dear: 2,548 one-hot rows × 540 × 3, issue 26), it runs the Newton-CG finish; the CLI keeps lbfgs."""
    from types import SimpleNamespace

    from softmax_spark.solvers import resolve_optimizer

    cli = SimpleNamespace(optimizer="auto", fit_intercept=True, nonsmooth=False, mllib_tol=None)
    est = SimpleNamespace(optimizer="auto", fit_intercept=True, nonsmooth=False, mllib_tol=1e-6)
    assert resolve_optimizer(cli, 2548, 3, 540)[0] == "lbfgs"
    assert resolve_optimizer(est, 2548, 3, 540)[0] == "qn-newton-cg"
    assert resolve_optimizer(est, 1797, 10, 64)[0] == "newton"


def test_resume_takes_the_same_steps(bow, tmp_path):
    X, y, _ = bow

    def run(max_iter, ckpt):
        mean, var = sparse_moments(X)
        pen = L2Penalty(2.5e-4)
        pre = Preconditioner(C, D, mean, var, pen, True)
        problem = SparseNumpyProblem(X, y, pre, pen)
        problem.nonsmooth = L1Penalty(5e-4).in_theta(pre)
        loop = TrainingLoop(OrthantNewtonCG(), problem, max_iter, checkpoint_dir=ckpt, checkpoint_every=1,
                            run_fingerprint="t")
        return loop.run(np.zeros(pre.size))

    whole = run(200, None)
    ckpt = str(tmp_path / "ckpt")
    run(whole.history.index(next(h for h in whole.history if h["phase"] == 2)) + 2, ckpt)  # stop inside phase 2
    resumed = run(200, ckpt)
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    assert len(resumed.history) == len(whole.history)


# -- Spark: the CLI's defaults above the Newton bound, and bounds against MLlib's L-BFGS-B ---------------


def _wide_bow():
    X, y = make_bow(1500, 1200, 4, seed=5, mean_length=30, topic_words=60)  # P = 4 · 1201 = 4804 > 4096
    Xte, _ = make_bow(600, 1200, 4, seed=6, mean_length=30, topic_words=60)
    return X, y, Xte


def _reference(X, y, l2, l1):
    """An exact reference in numpy (no Spark): certified by the KKT residual recomputed here ≤ 1e-10."""
    global C, D
    saved = C, D
    C, D = 4, X.shape[1]
    try:
        W, b, _, _ = _fit(X, y, OrthantNewtonCG(kkt_tol=1e-12, step_tol=1e-10), l2, l1, max_iter=300)
        assert _kkt(X, y, W, b, l2, l1, False) <= 1e-10
    finally:
        C, D = saved
    return W, b


@pytest.mark.spark
@pytest.mark.parametrize("l1", [0.0, 5e-4])
def test_cli_defaults_above_the_newton_bound_reach_the_optimum(spark, tmp_path, l1):
    from test_sparse import csr_vectors, write_vectors

    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.fit.training import train

    X, y, Xte = _wide_bow()
    l2 = 1e-3 if l1 == 0 else 2.5e-4
    path = write_vectors(tmp_path / "bow.parquet", csr_vectors(X), y)
    model = train(spark, TrainConfig(input=path, model_dir=str(tmp_path / "m"), l2=l2, l1=l1, write_mllib=False))
    assert model.metadata["solver"] == "qn-newton-cg"
    W, b = model.coef, model.intercept
    Wr, br = _reference(X, y, l2, l1)
    assert np.abs(_softmax(Xte @ W.T + b) - _softmax(Xte @ Wr.T + br)).max() <= 1e-6
    kkt = max(h["kkt_residual"] for h in model.history[-1:])
    assert kkt <= 1e-6
    if l1:
        assert model.metadata["kkt_residual"] <= 1e-6
        np.testing.assert_array_equal(W != 0, Wr != 0)


@pytest.mark.spark
def test_bounded_finish_against_mllib_lbfgsb(spark):
    """Bounds (non-negative coefficients, wine, standardization on): our qn-newton-cg against MLlib's
    L-BFGS-B run to convergence (maxIter 10000, tol 1e-12) and the exact prox-newton."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import DenseMatrix, Vectors
    from sklearn.datasets import load_wine

    from softmax_spark.ml import SoftmaxRegression

    X, y = load_wine(return_X_y=True)
    df = spark.createDataFrame([(Vectors.dense(r), float(k)) for r, k in zip(X, y)], ["features", "label"]).cache()
    lower = DenseMatrix(3, 13, [0.0] * 39)
    kw = dict(regParam=0.02, lowerBoundsOnCoefficients=lower)
    ours = SoftmaxRegression(solver="qn-newton-cg", **kw).fit(df)
    exact = SoftmaxRegression(solver="prox-newton", **kw).fit(df)
    peer = LogisticRegression(family="multinomial", maxIter=10000, tol=1e-12, **kw).fit(df)

    def proba(m):
        return np.array([r[0] for r in m.transform(df).select(vector_to_array("probability")).collect()])

    def kkt(W, b):  # MLlib's objective: mean log-loss + regParam/2 Σ σ_j² w², W ≥ 0
        sig = X.std(0, ddof=1)
        R = _softmax(X @ W.T + b) - np.eye(3)[y]
        G = R.T @ X / len(y) + 0.02 * W * sig**2
        res = np.where(W <= 0, np.maximum(-G, 0), np.abs(G))
        return float(max(res.max(), np.abs(R.mean(0)).max()))

    W, b = ours.coefficientMatrix.toArray(), ours.interceptVector.toArray()
    Wp, bp = peer.coefficientMatrix.toArray(), peer.interceptVector.toArray()
    assert (W >= 0).all() and (W == 0).any()
    assert kkt(W, b) <= 1e-6 and ours.softmaxModel.metadata["kkt_residual"] <= 1e-6
    assert kkt(W, b) <= kkt(Wp, bp)
    assert np.abs(proba(ours) - proba(exact)).max() <= 1e-6
    assert np.abs(proba(ours) - proba(peer)).max() <= 1e-2  # MLlib's L-BFGS-B stops short (KKT ~1e-3)
