"""Elastic net (L1 + L2) and bounds: the objective (MLlib's), the proximal solvers and their
optimality certificate, the Estimator's Params against MLlib, the CLI config.

The certificate every fit is judged by is the KKT residual computed here in numpy from the fitted
coefficients alone (``_kkt``: the distance of −∇(smooth part) to the subdifferential of the L1 term /
the normal cone of the bounds), so no peer is needed to be right; the peers (scikit-learn's saga,
MLlib run to tol 1e-12, an exact reference) are compared besides.
"""

import numpy as np
import pytest

from softmax_spark import InputError
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.core.penalty import L1Penalty, L2Penalty, feature_weights, l1_feature_weights
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import NumpyProblem, weighted_moments
from softmax_spark.solvers import OWLQN, ProxNewton


def _softmax(Z):
    Z = Z - Z.max(1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(1, keepdims=True)


def _kkt(X, y, W, b, reg, alpha, std, lower=None, upper=None):
    """max KKT residual of MLlib's multinomial objective at (W, b), from the data in numpy."""
    n, D = X.shape
    C = W.shape[0]
    sig = X.std(0, ddof=1) if std else np.ones(D)
    Y = np.eye(C)[y]
    P = _softmax(X @ W.T + b)
    G = (P - Y).T @ X / n + reg * (1 - alpha) * W * sig**2
    gb = (P - Y).sum(0) / n
    l1 = reg * alpha * sig * np.ones_like(W)
    res = np.where(W != 0, np.abs(G + l1 * np.sign(W)), np.maximum(np.abs(G) - l1, 0))
    if lower is not None:
        res = np.where(W <= lower, np.maximum(-G, 0), res)
    if upper is not None:
        res = np.where(W >= upper, np.maximum(G, 0), res)
    return float(max(res.max(), np.abs(gb).max()))


def _fit_numpy(X, y, reg, alpha, std, solver, lower=None, C=None, max_iter=2000):
    n, D = X.shape
    C = C or int(y.max()) + 1
    sig = X.std(0, ddof=1)
    l2 = L2Penalty(reg * (1 - alpha) / 2, feature_weights(D, std, sig), standardize=std)
    _, mean, var = weighted_moments(X)
    pre = Preconditioner(C, D, mean, var, l2, True)
    problem = NumpyProblem(X, y, None, pre, l2)
    term = L1Penalty(reg * alpha, l1_feature_weights(D, std, sig), lower=lower)
    problem.nonsmooth = term.in_theta(pre)
    result = TrainingLoop(solver, problem, max_iter).run(np.zeros(pre.size))
    W, b = pre.to_model(result.theta)
    W, b = problem.nonsmooth.snap(result.theta, W, b)
    return W, b, result, problem


@pytest.fixture(scope="module")
def wine_xy():
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


@pytest.fixture(scope="module")
def digits_xy():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


@pytest.mark.parametrize("std", [True, False])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_prox_newton_certifies_the_elastic_net_optimum(wine_xy, std, alpha):
    X, y = wine_xy
    W, b, result, _ = _fit_numpy(X, y, 0.02, alpha, std, ProxNewton())
    assert result.reason.startswith("KKT residual")
    assert _kkt(X, y, W, b, 0.02, alpha, std) <= 1e-9
    assert result.history[-1]["kkt_residual"] <= 1e-10
    assert 0 < np.count_nonzero(W) < W.size  # the L1 part zeroes some coefficients
    assert len(result.history) <= 15


@pytest.mark.long  # ~6 s in-process
def test_prox_newton_on_digits_same_support_as_an_exact_reference(digits_xy):
    """64 pixel columns (some constant), 10 classes: against an independent exact reference — proximal
    gradient (FISTA) on the same objective run to KKT ≤ 1e-10."""
    X, y = digits_xy
    reg, alpha = 0.01, 0.7
    W, b, result, problem = _fit_numpy(X, y, reg, alpha, False, ProxNewton())
    assert _kkt(X, y, W, b, reg, alpha, False) <= 1e-9
    # reference: FISTA in model coordinates with a fixed step 1/L (L Böhning's bound)
    n, D = X.shape
    C = 10
    Y = np.eye(C)[y]
    Xt = np.hstack([X, np.ones((n, 1))])
    L = 0.5 * np.linalg.eigvalsh(Xt.T @ Xt / n)[-1] + reg * (1 - alpha)
    V = np.zeros((C, D + 1))
    Z, t = V.copy(), 1.0
    for k in range(200000):  # with O'Donoghue & Candès's adaptive restart (linear convergence here)
        P = _softmax(Xt @ Z.T)
        G = (P - Y).T @ Xt / n
        G[:, :D] += reg * (1 - alpha) * Z[:, :D]
        new = Z - G / L
        new[:, :D] = np.sign(new[:, :D]) * np.maximum(np.abs(new[:, :D]) - reg * alpha / L, 0)
        if np.vdot(Z - new, new - V) > 0:  # the momentum points uphill: restart it
            t = 1.0
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Z = new + (t - 1) / t_new * (new - V)
        V, t = new, t_new
        if k % 100 == 0 and _kkt(X, y, V[:, :D], V[:, D], reg, alpha, False) <= 1e-10:
            break
    assert _kkt(X, y, V[:, :D], V[:, D], reg, alpha, False) <= 1e-10
    np.testing.assert_array_equal(W != 0, V[:, :D] != 0)
    P_ours, P_ref = _softmax(X @ W.T + b), _softmax(Xt @ V.T)
    assert np.abs(P_ours - P_ref).max() <= 1e-8


def test_matches_scikit_learn_saga_elasticnet(wine_xy):
    """scikit-learn: min C·Σ loss + ρ‖W‖₁ + (1−ρ)/2‖W‖² = n·C·(ours with regParam 1/(nC), α = ρ)."""
    from sklearn.linear_model import LogisticRegression

    X, y = wine_xy
    X = (X - X.mean(0)) / X.std(0)  # saga converges on scaled data
    n = len(y)
    reg, alpha = 0.05, 0.5
    W, b, _, _ = _fit_numpy(X, y, reg, alpha, False, ProxNewton())
    peer = LogisticRegression(l1_ratio=alpha, C=1.0 / (n * reg), solver="saga", tol=1e-12,
                              max_iter=100000).fit(X, y)
    assert np.abs(_softmax(X @ W.T + b) - peer.predict_proba(X)).max() <= 1e-6
    np.testing.assert_array_equal(W != 0, np.abs(peer.coef_) > 1e-9)


def test_owlqn_reaches_the_same_optimum(wine_xy):
    X, y = wine_xy
    X = (X - X.mean(0)) / X.std(0)
    W1, b1, _, _ = _fit_numpy(X, y, 0.02, 0.5, False, ProxNewton())
    W2, b2, result, _ = _fit_numpy(X, y, 0.02, 0.5, False, OWLQN(kkt_tol=1e-8, tol=0.0))
    assert _kkt(X, y, W2, b2, 0.02, 0.5, False) <= 1e-7
    assert np.abs(_softmax(X @ W1.T + b1) - _softmax(X @ W2.T + b2)).max() <= 1e-6
    np.testing.assert_array_equal(W1 != 0, W2 != 0)


def test_bounds_are_respected_and_certified(wine_xy):
    X, y = wine_xy
    W, b, result, _ = _fit_numpy(X, y, 0.02, 0.0, True, ProxNewton(), lower=0.0)
    assert (W >= 0).all() and (W == 0).any()
    assert _kkt(X, y, W, b, 0.02, 0.0, True, lower=0.0) <= 1e-9


def test_penalty_kkt_residual_rules():
    """The residual is the distance to the subdifferential: zero inside it, the gap outside."""
    term = L1Penalty(1.0)
    W = np.array([[0.0, 2.0, -1.0]])
    G = np.array([[0.5, -1.0, 1.5]])  # 0 ∈ 0.5 + [−1, 1]; −1 + 1 = 0; 1.5 − 1 = 0.5
    r, rc, _ = term.kkt(W, np.zeros(1), G, np.zeros(1))
    np.testing.assert_allclose(rc, [[0.0, 0.0, 0.5]])
    bounded = L1Penalty(0.0, lower=0.0)
    _, rc, _ = bounded.kkt(np.array([[0.0, 1.0]]), np.zeros(1), np.array([[2.0, 2.0]]), np.zeros(1))
    np.testing.assert_allclose(rc, [[0.0, 2.0]])  # at the bound pushing outward is fine


def test_config_validation():
    from softmax_spark.fit.config import TrainConfig

    base = dict(input="x", model_dir="y")
    with pytest.raises(InputError, match="--l1"):
        TrainConfig(l1=-1.0, **base).validate()
    with pytest.raises(InputError, match="intercept"):
        TrainConfig(lower_bounds_intercept=0.0, fit_intercept=False, **base).validate()
    with pytest.raises(InputError, match="newton-cg"):
        TrainConfig(l1=0.1, optimizer="newton-cg", **base).validate()
    with pytest.raises(InputError, match="parametrization full"):
        TrainConfig(l1=0.1, parametrization="reference", **base).validate()
    cfg = TrainConfig(lower_bounds="0", **base).validate()  # a flag's text
    assert cfg.lower_bounds == 0.0 and cfg.nonsmooth
    from softmax_spark.fit.config import parse_config

    cfg = parse_config(TrainConfig, ["--input", "x", "--model-dir", "y", "--l1", "0.01", "--lower-bounds", "-1",
                                     "--upper-bounds-intercept", "2.5"])
    assert (cfg.l1, cfg.lower_bounds, cfg.upper_bounds_intercept) == (0.01, -1.0, 2.5)


def test_auto_picks_prox_newton_or_owlqn():
    from softmax_spark.solvers.auto import choose_nonsmooth_solver

    assert choose_nonsmooth_solver(10_000, 3, 13, True)[0] == "prox-newton"
    assert choose_nonsmooth_solver(500_000, 20, 2**17, True, density=1e-3)[0] == "qn-newton-cg"


# -- Spark: the Estimator against MLlib, and the CLI path --------------------------------------------


@pytest.fixture(scope="module")
def wine_df(spark, wine_xy):
    from pyspark.ml.feature import VectorAssembler

    X, y = wine_xy
    cols = [f"f{j}" for j in range(X.shape[1])]
    rows = [tuple(map(float, r)) + (float(k),) for r, k in zip(X, y)]
    return VectorAssembler(inputCols=cols, outputCol="features").transform(
        spark.createDataFrame(rows, cols + ["label"])).select("features", "label").cache()


def _proba(model, df):
    from pyspark.ml.functions import vector_to_array

    return np.array([r[0] for r in model.transform(df).select(vector_to_array("probability")).collect()])


@pytest.mark.parametrize("std", [True, False])
def test_estimator_elastic_net_matches_mllib(wine_df, wine_xy, std):
    from pyspark.ml.classification import LogisticRegression

    from softmax_spark.sparkml.classification import SoftmaxRegression

    X, y = wine_xy
    kw = dict(regParam=0.02, elasticNetParam=0.5, standardization=std)
    ours = SoftmaxRegression(**kw).fit(wine_df)
    peer = LogisticRegression(family="multinomial", maxIter=10000, tol=1e-12, **kw).fit(wine_df)
    W, b = ours.coefficientMatrix.toArray(), ours.interceptVector.toArray()
    assert _kkt(X, y, W, b, 0.02, 0.5, std) <= 1e-8
    assert np.abs(_proba(ours, wine_df) - _proba(peer, wine_df)).max() <= 1e-4
    assert abs(b.sum()) <= 1e-12  # intercepts centred, as MLlib's
    meta = ours.softmaxModel.metadata
    assert meta["kkt_residual"] <= 1e-9 and sum(meta["nonzeros_per_class"]) == np.count_nonzero(W)


def test_estimator_binomial_elastic_net_and_bounds(spark):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.linalg import DenseMatrix, Vectors
    from sklearn.datasets import load_breast_cancer

    from softmax_spark.sparkml.classification import SoftmaxRegression

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:, :8], y
    df = spark.createDataFrame([(Vectors.dense(r), float(k)) for r, k in zip(X, y)], ["features", "label"]).cache()
    kw = dict(regParam=0.01, elasticNetParam=0.5)
    ours = SoftmaxRegression(**kw).fit(df)
    peer = LogisticRegression(maxIter=10000, tol=1e-12, **kw).fit(df)
    assert ours.isBinomial
    assert np.abs(_proba(ours, df) - _proba(peer, df)).max() <= 1e-4
    np.testing.assert_array_equal(ours.coefficients.toArray() != 0, np.abs(peer.coefficients.toArray()) > 1e-7)
    # bounds on v (1 × D) and c: every coefficient inside, and the fit certified in v's own terms
    lower = DenseMatrix(1, 8, [0.0] * 8)
    fit = SoftmaxRegression(regParam=0.01, lowerBoundsOnCoefficients=lower,
                            upperBoundsOnIntercepts=Vectors.dense([5.0])).fit(df)
    v, c = fit.coefficients.toArray(), fit.intercept
    assert (v >= 0).all() and c <= 5.0
    sig = X.std(0, ddof=1)
    p = 1 / (1 + np.exp(-(X @ v + c)))
    G = (p - y) @ X / len(y) + 0.01 * v * sig**2
    gc = (p - y).mean()
    res = np.where(v <= 0, np.maximum(-G, 0), np.abs(G))
    assert max(res.max(), 0.0 if c >= 5.0 else abs(gc)) <= 1e-8


def test_estimator_bounds_rules_are_mllibs(wine_df):
    from pyspark.ml.linalg import DenseMatrix, Vectors

    from softmax_spark.sparkml.classification import SoftmaxRegression

    with pytest.raises(InputError, match="shape of LowerBoundsOnCoefficients"):
        SoftmaxRegression(lowerBoundsOnCoefficients=DenseMatrix(2, 13, [0.0] * 26)).fit(wine_df)
    with pytest.raises(InputError, match="less than or equal"):
        SoftmaxRegression(lowerBoundsOnIntercepts=Vectors.dense([1.0] * 3),
                          upperBoundsOnIntercepts=Vectors.dense([0.0] * 3)).fit(wine_df)
    with pytest.raises(InputError, match="fitting without intercept"):
        SoftmaxRegression(fitIntercept=False, lowerBoundsOnIntercepts=Vectors.dense([0.0] * 3)).fit(wine_df)
    SoftmaxRegression(maxBlockSizeInMB=4.0)  # accepted (a documented no-op)


def test_bounds_params_save_and_load(wine_df, tmp_path):
    from pyspark.ml.linalg import DenseMatrix, Vectors

    from softmax_spark.sparkml.classification import SoftmaxRegression, SoftmaxRegressionModel

    lower = DenseMatrix(3, 13, [float(k) * 0.0 - 1.0 for k in range(39)])
    est = SoftmaxRegression(regParam=0.05, lowerBoundsOnCoefficients=lower,
                            upperBoundsOnIntercepts=Vectors.dense([1.0, 2.0, 3.0]), maxIter=200)
    est.write().save(str(tmp_path / "est"))
    again = SoftmaxRegression.load(str(tmp_path / "est"))
    np.testing.assert_array_equal(again.getLowerBoundsOnCoefficients().toArray(), lower.toArray())
    model = est.fit(wine_df)
    assert (model.coefficientMatrix.toArray() >= -1.0).all()
    assert (model.interceptVector.toArray() <= [1.0, 2.0, 3.0]).all()
    model.write().save(str(tmp_path / "model"))
    loaded = SoftmaxRegressionModel.load(str(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.getUpperBoundsOnIntercepts().toArray(), [1.0, 2.0, 3.0])
    assert loaded.softmaxModel.metadata is not None


def test_cli_config_l1_records_the_certificate(spark, tmp_path, wine_xy):
    import json

    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.fit.training import train

    X, y = wine_xy
    X = (X - X.mean(0)) / X.std(0)
    path = str(tmp_path / "in.parquet")
    spark.createDataFrame([([float(v) for v in r], int(k)) for r, k in zip(X, y)], ["features", "label"]) \
        .write.parquet(path)
    cfg = TrainConfig(input=path, model_dir=str(tmp_path / "m"), l1=0.01, l2=0.005, write_mllib=False,
                      lower_bounds_intercept=-0.5)
    model = train(spark, cfg)
    meta = model.metadata
    assert meta["solver"] == "prox-newton" and meta["kkt_residual"] <= 1e-10
    assert (model.intercept >= -0.5).all()
    assert json.loads(json.dumps(meta["nonsmooth_penalty"]))["l1"] == 0.01


@pytest.mark.parametrize("solver", [ProxNewton, OWLQN])
def test_resume_from_checkpoint_takes_the_same_steps(wine_xy, tmp_path, solver):
    X, y = wine_xy
    X = (X - X.mean(0)) / X.std(0)

    def run(max_iter, ckpt):
        n, D = X.shape
        l2 = L2Penalty(0.005)
        _, mean, var = weighted_moments(X)
        pre = Preconditioner(3, D, mean, var, l2, True)
        problem = NumpyProblem(X, y, None, pre, l2)
        problem.nonsmooth = L1Penalty(0.01, lower=-0.5).in_theta(pre)
        loop = TrainingLoop(solver(), problem, max_iter, checkpoint_dir=ckpt, checkpoint_every=1, run_fingerprint="t")
        return loop.run(np.zeros(pre.size))

    whole = run(40, None)
    ckpt = str(tmp_path / "ckpt")
    run(3, ckpt)
    resumed = run(40, ckpt)
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    assert len(resumed.history) == len(whole.history)
