"""Pure-numpy helpers shared by the core tests (loss, penalty, problem, solvers, preconditioner), and
the references the tests (and bench/) compare the library with: ``objective_and_gradient`` (J and
∇J in one process), the seed's per-example SGD step written out per class, and the L2 penalty's
curvature in θ. They lived in softmax_spark.core.loss / curvature, which only the tests used."""

import warnings

import numpy as np
from scipy.optimize import minimize

from softmax_spark.core.loss import LossAccumulator
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.solvers.lbfgs import lbfgs_init, lbfgs_step


# --------------------------------------------------------------------------- data
# Every synthetic data set of the tests is drawn here, once (the draws' order is part of each
# generator's contract: tests compare against numbers computed from them).
def objective_and_gradient(
    coef, intercept, X, y_index, sample_weight=None, l2: float = 0.0, block_rows: int = 65536
):
    """J(W, b) and (∇_W J, ∇_b J) over all rows in one process (blocks of ``block_rows``), with
    the plain penalty λ‖W‖²_F (``penalty.L2Penalty(l2)``).

    ``intercept=None`` fits no intercept (b ≡ 0) and returns ``None`` for its gradient.
    """
    coef = np.asarray(coef, dtype=np.float64)
    acc = LossAccumulator(*coef.shape)
    for start in range(0, X.shape[0], block_rows):
        stop = start + block_rows
        sw = None if sample_weight is None else sample_weight[start:stop]
        acc.add(coef, intercept, X[start:stop], y_index[start:stop], sw)
    loss, grad_coef, grad_intercept = acc.result()
    if l2:
        penalty = L2Penalty(l2)
        loss, grad_coef = loss + penalty.value(coef), grad_coef + penalty.gradient(coef)
    return loss, grad_coef, (grad_intercept if intercept is not None else None)


def textbook_sgd_step(coef, x, y_index: int, learning_rate: float, l2: float) -> np.ndarray:
    """One per-example SGD step written out per class, no intercept (the textbook derivation).

    For the true class i:  w_i ← w_i − η(−x + p_i x + 2λ w_i);
    for every other j:     w_j ← w_j − η(p_j x + 2λ w_j),
    with p_j = exp(w_j·x) / Σ_k exp(w_k·x). A reference for tests; loops over classes on purpose.
    """
    coef = np.asarray(coef, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    scores = [float(coef[k] @ x) for k in range(coef.shape[0])]
    top = max(scores)
    denom = sum(np.exp(s - top) for s in scores)
    new = coef.copy()
    for j in range(coef.shape[0]):
        p_j = np.exp(scores[j] - top) / denom
        if j == y_index:
            new[j] = coef[j] - learning_rate * (-x + p_j * x + 2.0 * l2 * coef[j])
        else:
            new[j] = coef[j] - learning_rate * (p_j * x + 2.0 * l2 * coef[j])
    return new


def minibatch_sgd_step(
    coef, intercept, X, y_index, learning_rate: float, l2: float, sample_weight=None
):
    """W ← W − η ∇J_batch (and b likewise when ``intercept`` is not None), vectorised.

    With a batch of one row and no intercept this is ``textbook_sgd_step``.
    """
    _, grad_coef, grad_intercept = objective_and_gradient(
        coef, intercept, X, y_index, sample_weight, l2
    )
    new_coef = coef - learning_rate * grad_coef
    new_intercept = None if intercept is None else intercept - learning_rate * grad_intercept
    return new_coef, new_intercept


def l2_curvature_in_theta(precond, l2: float, l2_weights=None) -> np.ndarray:
    """The penalty's Hessian in θ, which is diagonal: 2λ p_j / s_j² on Θ_cj, 0 on β. Shape (size,)."""
    D = precond.n_features
    weights = np.ones(D) if l2_weights is None else np.asarray(l2_weights, dtype=np.float64)
    coef_part = np.tile(2.0 * l2 * weights / precond.scale**2, precond.rows)
    if precond.fit_intercept:
        return np.concatenate([coef_part, np.zeros(precond.rows)])
    return coef_part


def make_data(rng, n=40, d=4, c=3, dtype=np.float64, weights=False):
    """(X (n, d), y (n,) uniform labels with every class present, s (n,) weights or None) from ``rng``."""
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)  # every class present
    s = rng.uniform(0.2, 3.0, size=n) if weights else None
    return X, y, s


def full_objective(coef, intercept, X, y, s=None, l2=0.0, l2_weights=None):
    """J with optional per-feature L2 weights: data term from objective_and_gradient, penalty from
    penalty.L2Penalty."""
    loss, g_coef, g_int = objective_and_gradient(coef, intercept, X, y, s, l2=0.0)
    penalty = L2Penalty(l2, l2_weights)
    coef = np.asarray(coef, dtype=np.float64)
    loss, g_coef = loss + penalty.value(coef), g_coef + penalty.gradient(coef)
    return loss, g_coef, g_int


def pack(coef, intercept):
    return np.concatenate([coef.ravel(), [] if intercept is None else intercept])


def unpack(theta, c, d, fit_intercept):
    coef = theta[: c * d].reshape(c, d)
    return coef, (theta[c * d:] if fit_intercept else None)


def central_fd(fun, theta, h=1e-6):
    g = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        g[k] = (fun(theta + e) - fun(theta - e)) / (2 * h)
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def flat_objective(X, y, s, l2, fit_intercept, c, l2_weights=None):
    """θ = (vec W, b) → (J, ∇J), for scipy."""
    d = X.shape[1]

    def fun(theta):
        coef, intercept = unpack(theta, c, d, fit_intercept)
        loss, g_coef, g_int = full_objective(coef, intercept, X, y, s, l2, l2_weights)
        return loss, pack(g_coef, g_int)

    return fun


def sklearn_probs(X, y, l2, sample_weight=None):
    """scikit-learn's L2 multinomial optimum for our J: C = 1 / (2 λ Σ s_i)."""
    from sklearn.linear_model import LogisticRegression

    total = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    est = LogisticRegression(C=1.0 / (2.0 * l2 * total), tol=1e-12, max_iter=10000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=sample_weight)
    return est


def scipy_fit(X, y, s, l2, C, fit_intercept=True, theta0=None, l2_weights=None):
    fun = flat_objective(X, y, s, l2, fit_intercept, C, l2_weights)
    n = C * X.shape[1] + (C if fit_intercept else 0)
    theta0 = np.zeros(n) if theta0 is None else theta0
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 10000, "maxcor": 20, "gtol": 1e-11, "ftol": 1e-16})
    return res, unpack(res.x, C, X.shape[1], fit_intercept)


def softmax_data(n=400, d=5, c=3, seed=0, scale=1.0, x_first=False):
    """Rows drawn from a softmax model: (X of shape (n, d), y of shape (n,) ints in [0, c)).
    (``helpers.make_data``, the Spark tests' data, is this function; test_inference's draws X
    before W: ``x_first``.)"""
    rng = np.random.default_rng(seed)
    if x_first:
        X = rng.normal(size=(n, d))
        W = rng.normal(size=(c, d)) * scale
    else:
        W = rng.normal(size=(c, d)) * scale
        X = rng.normal(size=(n, d))
    logits = X @ W.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return X, y


def kernel_data(n=120, D=6, C=4, seed=0, weighted=True, sparse=False, dtype=np.float64):
    """(X dense or CSR (n, D) with scaled, shifted columns, y, w or None, coef (C, D), intercept (C,)):
    a point and data for the curvature kernels' tests."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) * np.linspace(0.5, 2.0, D) + np.linspace(-1, 1, D)
    if sparse:
        X[rng.random((n, D)) < 0.6] = 0.0
    y = rng.integers(0, C, size=n)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    X = X.astype(dtype)
    coef = rng.normal(scale=0.3, size=(C, D))
    intercept = rng.normal(scale=0.3, size=C)
    return (sp.csr_matrix(X) if sparse else X), y, w, coef, intercept


def classification_data(rng, n=300, d=5, c=3):
    """(X, y): Gaussian clusters around c random centres (well separated, not separable)."""
    centers = rng.normal(size=(c, d)) * 1.5
    y = rng.integers(0, c, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X, y


def run_project_lbfgs(fun, theta, max_iter=500, gtol=1e-8):
    f, g = fun(theta)
    state = lbfgs_init(f, g)
    for _ in range(max_iter):
        if np.linalg.norm(state.grad) <= gtol:
            break
        theta, state, step = lbfgs_step(fun, theta, state, memory=10)
        if step == 0.0:
            break
    return theta, state

def small_problem_data():
    rng = np.random.default_rng(51)
    X, y = classification_data(rng, n=300, d=5, c=3)
    return X, y, 0.01


def numpy_problem(X, y, l2=0.01, l1=0.0, lower=None, upper=None, C=None, precondition=True, sample_weight=None):
    """A ``NumpyProblem`` with the L2 penalty λ = ``l2`` and, when ``l1`` > 0 or a bound is given,
    the separable part (``problem.nonsmooth``); the preconditioner centres unless there are bounds."""
    from softmax_spark.core.penalties import L1Penalty
    from softmax_spark.core.precondition import Preconditioner
    from softmax_spark.core.problem import NumpyProblem

    C = int(np.max(y)) + 1 if C is None else C
    pen = L2Penalty(l2)
    bounded = lower is not None or upper is not None
    mean = np.zeros(X.shape[1]) if bounded else X.mean(axis=0)
    second = X.var(axis=0) + (X.mean(axis=0) ** 2 if bounded else 0.0)
    pc = Preconditioner(C, X.shape[1], mean, second, pen, True, False, precondition)
    problem = NumpyProblem(X, y, sample_weight, pc, pen, seed=1)
    if l1 > 0 or bounded:
        problem.nonsmooth = L1Penalty(l1, lower=lower, upper=upper).in_theta(pc)
    return problem
