"""The penalty object (``penalty.L2Penalty``): value, gradient, curvature, MLlib mapping, and the
centred form that makes the reference parameterisation reach the full model's probabilities."""

import numpy as np
import pytest

from core_helpers import central_fd, classification_data, rel_err
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core.penalty import L2Penalty, feature_weights
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import NumpyProblem
from softmax_spark.solvers import LBFGS


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_value_gradient_and_curvature_agree(centred, weighted):
    """∇P equals central differences of P (1e-8); hvp, hessian_diag and the dense hessian are
    those of the quadratic P (P(W) = ½ vec(W)ᵀ ∇²P vec(W)); the value is the closed form."""
    rng = np.random.default_rng(3)
    C, D = 4, 5
    p = rng.uniform(0.1, 3.0, size=D) if weighted else None
    pen = L2Penalty(0.37, p, centred=centred)
    W = rng.normal(size=(C, D))
    pw = np.ones(D) if p is None else p
    V = W - W.mean(axis=0) if centred else W
    assert pen.value(W) == pytest.approx(0.37 * float(np.sum(pw * V**2)), rel=1e-14)
    g = pen.gradient(W)
    fd = central_fd(lambda t: pen.value(t.reshape(C, D)), W.ravel()).reshape(C, D)
    assert rel_err(g, fd) <= 1e-8
    H = pen.hessian(C, D)
    np.testing.assert_allclose(H @ W.ravel(), g.ravel(), rtol=1e-13, atol=1e-14)
    assert 0.5 * W.ravel() @ H @ W.ravel() == pytest.approx(pen.value(W), rel=1e-13)
    np.testing.assert_allclose(pen.hvp(W), g, rtol=0, atol=0)
    np.testing.assert_allclose(pen.hessian_diag(C, D).ravel(), np.diag(H), rtol=1e-14)
    np.testing.assert_allclose(pen.feature_curvature(D), 2 * 0.37 * pw, rtol=1e-15)


def test_centred_penalty_is_shift_invariant_and_minimal():
    """The centred penalty does not change when a vector is added to every row; it equals the
    plain penalty at the centred representative, which has the least plain penalty of all shifts."""
    rng = np.random.default_rng(4)
    W = rng.normal(size=(3, 5))
    centred, plain = L2Penalty(0.2, centred=True), L2Penalty(0.2)
    shift = rng.normal(size=5)
    assert centred.value(W + shift) == pytest.approx(centred.value(W), rel=1e-12)
    assert centred.value(W) == pytest.approx(plain.value(W - W.mean(axis=0)), rel=1e-14)
    assert plain.value(W) >= centred.value(W)
    np.testing.assert_allclose(centred.gradient(W).sum(axis=0), 0.0, atol=1e-14)


def test_zero_penalty_and_validation():
    """λ = 0 adds nothing (value 0, zero gradient); λ < 0 is refused."""
    W = np.ones((2, 3))
    assert L2Penalty(0.0).value(W) == 0.0
    np.testing.assert_array_equal(L2Penalty(0.0).gradient(W), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="≥ 0"):
        L2Penalty(-1.0)


def test_mllib_mapping_and_metadata():
    """regParam = 2λ, elasticNetParam = 0, standardization as trained; from_metadata reads a
    trained model's λ and options (None when no λ is recorded)."""
    assert L2Penalty(1e-3).mllib_params() == {"regParam": 2e-3, "elasticNetParam": 0.0, "standardization": False}
    assert L2Penalty(0.5, standardize=True).mllib_params()["standardization"] is True
    pen = L2Penalty.from_metadata({"l2": 0.25, "options": {"standardize": True, "parametrization": "reference"}})
    assert (pen.l2, pen.standardize, pen.centred) == (0.25, True, True)
    assert L2Penalty.from_metadata({"l2": None}) is None
    np.testing.assert_array_equal(feature_weights(3, False), np.ones(3))
    np.testing.assert_allclose(feature_weights(2, True, np.array([2.0, 0.5])), [4.0, 0.25])


def _fit(X, y, lam, reference, C=3):
    D = X.shape[1]
    pen = L2Penalty(lam, centred=reference)
    pc = Preconditioner(C, D, X.mean(axis=0), X.var(axis=0), pen, True, reference)
    problem = NumpyProblem(X, y, None, pc, pen)
    result = TrainingLoop(LBFGS(tol=0.0, gtol=1e-11), problem, 2000).run(np.zeros(pc.size))
    coef, intercept = problem.to_model(result.theta)
    return SoftmaxModel(coef, intercept, list(range(C)))


@pytest.mark.parametrize("lam", [0.0, 1e-4, 1e-3, 1e-2, 1e-1])
def test_reference_and_full_parameterisations_agree_for_every_lambda(lam):
    """Issue 16 item 8: on a 3-class, 5-feature set, --parametrization reference (last row pinned
    to 0, centred penalty) gives the full model's probabilities within 1e-6 for every λ
    (the pinned-row penalty was 8.6e-2 away at λ = 1e-3)."""
    rng = np.random.default_rng(8)
    X, y = classification_data(rng, n=300, d=5, c=3)
    full, ref = _fit(X, y, lam, False), _fit(X, y, lam, True)
    np.testing.assert_array_equal(ref.coef[-1], 0.0)
    np.testing.assert_allclose(ref.predict_proba(X), full.predict_proba(X), rtol=0, atol=1e-6)
