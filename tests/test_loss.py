"""Properties of the loss kernels, the optimizers (optim, lbfgs) and the preconditioner.

Pure numpy/scipy (plus scikit-learn as an independent reference); no Spark here.
"""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from softmax_spark.lbfgs import lbfgs_init, lbfgs_step, two_loop_direction
from softmax_spark.loss import (
    LossAccumulator,
    add_l2,
    loss_and_gradient_sums,
    minibatch_sgd_step,
    objective_and_gradient,
    textbook_sgd_step,
)
from softmax_spark.model import SoftmaxModel
from softmax_spark.optim import (
    AverageState,
    SgdState,
    constant_schedule,
    invscaling_schedule,
    make_schedule,
    polyak_average_init,
    polyak_average_update,
    sgd,
    step_schedule,
)
from softmax_spark.precondition import Preconditioner, l2_feature_weights


# -- helpers --------------------------------------------------------------------------------------
def make_data(rng, n=40, d=4, c=3, dtype=np.float64, weights=False):
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)  # every class present
    s = rng.uniform(0.2, 3.0, size=n) if weights else None
    return X, y, s


def full_objective(coef, intercept, X, y, s=None, l2=0.0, l2_weights=None):
    """J with optional per-feature L2 weights: data term from objective_and_gradient, penalty from add_l2."""
    loss, g_coef, g_int = objective_and_gradient(coef, intercept, X, y, s, l2=0.0)
    loss, g_coef = add_l2(loss, g_coef, np.asarray(coef, dtype=np.float64), l2, l2_weights)
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


# -- gradient = finite differences ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_gradient_matches_central_differences(dtype, fit_intercept, weighted, l2):
    """∇J from objective_and_gradient equals central finite differences of J (relative 1e-6),
    with/without sample weights, with/without intercept, float32 and float64 X (float32 blocks are
    up-cast, so FD in float64 parameters works), with and without L2; several blocks."""
    rng = np.random.default_rng([int(dtype == np.float32), int(fit_intercept), int(weighted), int(l2 > 0)])
    C, D = 3, 4
    X, y, s = make_data(rng, n=37, d=D, c=C, dtype=dtype, weights=weighted)
    coef = rng.normal(size=(C, D))
    intercept = rng.normal(size=C) if fit_intercept else None
    theta = pack(coef, intercept)

    def J(t):
        cf, b = unpack(t, C, D, fit_intercept)
        return objective_and_gradient(cf, b, X, y, s, l2=l2, block_rows=10)[0]

    loss, g_coef, g_int = objective_and_gradient(coef, intercept, X, y, s, l2=l2, block_rows=10)
    assert np.isfinite(loss) and loss > 0
    if fit_intercept:
        assert g_int.shape == (C,)
    else:
        assert g_int is None
    g = pack(g_coef, g_int)
    assert rel_err(g, central_fd(J, theta)) <= 1e-6


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_with_l2_weights_matches_central_differences(fit_intercept):
    """With per-feature L2 weights p (λ Σ p_j w_cj², gradient 2λ W diag(p)) the gradient of the
    data term plus add_l2 equals central finite differences of that J (relative 1e-6)."""
    rng = np.random.default_rng(7)
    C, D = 4, 5
    X, y, s = make_data(rng, n=50, d=D, c=C, weights=True)
    p = rng.uniform(0.01, 5.0, size=D)
    fun = flat_objective(X, y, s, 0.3, fit_intercept, C, l2_weights=p)
    theta = rng.normal(size=C * D + (C if fit_intercept else 0))
    assert rel_err(fun(theta)[1], central_fd(lambda t: fun(t)[0], theta)) <= 1e-6
    # and the penalty really is λ Σ p_j w_cj²
    coef = theta[: C * D].reshape(C, D)
    loss0, g0 = add_l2(1.5, np.zeros((C, D)), coef, 0.3, p)
    assert loss0 == pytest.approx(1.5 + 0.3 * float(np.sum(p * coef**2)), rel=1e-14)
    np.testing.assert_allclose(g0, 2 * 0.3 * coef * p, rtol=1e-15)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_l2_adds_exactly_2_lambda_w(fit_intercept):
    """The regulariser adds exactly λ‖W‖²_F to the loss and 2λW to ∇_W, and leaves ∇_b unchanged."""
    rng = np.random.default_rng(11)
    X, y, s = make_data(rng, n=30, d=3, c=4, weights=True)
    coef = rng.normal(size=(4, 3))
    intercept = rng.normal(size=4) if fit_intercept else None
    lam = 0.37
    l0, gw0, gb0 = objective_and_gradient(coef, intercept, X, y, s, l2=0.0)
    l1, gw1, gb1 = objective_and_gradient(coef, intercept, X, y, s, l2=lam)
    assert l1 - l0 == pytest.approx(lam * float(np.sum(coef**2)), rel=1e-12)
    np.testing.assert_allclose(gw1 - gw0, 2 * lam * coef, rtol=1e-12, atol=1e-15)
    if fit_intercept:
        np.testing.assert_array_equal(gb1, gb0)
    else:
        assert gb0 is None and gb1 is None
    # add_l2 with λ = 0 is the identity
    loss, g = add_l2(0.5, gw0, coef, 0.0)
    assert loss == 0.5 and g is gw0


def test_gradient_closed_form():
    """The block sums are Σ s(−log p_y), Σ s(p − onehot(y)) xᵀ, Σ s(p − onehot(y)), Σ s, written
    here with an explicit per-row loop."""
    rng = np.random.default_rng(5)
    X, y, s = make_data(rng, n=12, d=3, c=3, weights=True)
    coef, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    sums = loss_and_gradient_sums(coef, b, X, y, s)
    loss, gw, gb = 0.0, np.zeros((3, 3)), np.zeros(3)
    for xi, yi, si in zip(X, y, s):
        z = coef @ xi + b
        p = np.exp(z - z.max())
        p /= p.sum()
        loss += -si * np.log(p[yi])
        r = p.copy()
        r[yi] -= 1
        gw += si * np.outer(r, xi)
        gb += si * r
    assert sums.loss_sum == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(sums.grad_coef_sum, gw, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sums.grad_intercept_sum, gb, rtol=1e-12, atol=1e-14)
    assert sums.weight_sum == pytest.approx(s.sum(), rel=1e-15)


def test_unit_weights_equal_no_weights():
    """sample_weight = ones gives the same J and gradient as sample_weight = None."""
    rng = np.random.default_rng(2)
    X, y, _ = make_data(rng, n=25, d=3, c=3)
    coef, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    a = objective_and_gradient(coef, b, X, y, None, l2=0.1)
    w = objective_and_gradient(coef, b, X, y, np.ones(25), l2=0.1)
    assert a[0] == pytest.approx(w[0], rel=1e-14)
    np.testing.assert_allclose(a[1], w[1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(a[2], w[2], rtol=1e-13, atol=1e-15)


# -- numerical robustness -------------------------------------------------------------------------
def test_extreme_logits_give_finite_loss_and_gradient():
    """Logits of ±1e4 give a finite loss and gradient: the correct confident rows cost 0, a wrong
    confident row costs its logit gap (2e4); the gradient is bounded by |x|."""
    coef = np.array([[1.0, 0.0], [-1.0, 0.0]])
    X = np.array([[1e4, 0.0], [-1e4, 0.0], [1e4, 0.0]])
    y = np.array([0, 1, 1])  # the last row is confidently wrong
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        sums = loss_and_gradient_sums(coef, np.zeros(2), X, y)
        loss, gw, gb = objective_and_gradient(coef, np.zeros(2), X, y, l2=1.0)
    assert np.isfinite(sums.loss_sum) and sums.loss_sum == pytest.approx(2e4, rel=1e-12)
    assert np.all(np.isfinite(sums.grad_coef_sum)) and np.all(np.isfinite(sums.grad_intercept_sum))
    np.testing.assert_allclose(sums.grad_coef_sum, [[1e4, 0.0], [-1e4, 0.0]])
    np.testing.assert_allclose(sums.grad_intercept_sum, [1.0, -1.0])
    assert np.isfinite(loss) and np.all(np.isfinite(gw)) and np.all(np.isfinite(gb))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_feature_values_give_finite_loss_and_gradient(dtype):
    """Feature values up to 1e6 (float32 or float64) give a finite loss and gradient."""
    rng = np.random.default_rng(4)
    X = (rng.uniform(-1, 1, size=(50, 3)) * 1e6).astype(dtype)
    y = rng.integers(0, 3, size=50)
    loss, gw, gb = objective_and_gradient(rng.normal(size=(3, 3)), rng.normal(size=3), X, y, l2=0.1)
    assert np.isfinite(loss) and np.all(np.isfinite(gw)) and np.all(np.isfinite(gb))


# -- LossAccumulator ------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulator_blocks_and_merge_equal_one_pass(weighted, dtype):
    """Adding blocks to several accumulators and merging them gives the one-pass result (1e-12),
    whatever the block sizes, the assignment of blocks to accumulators, and the merge order;
    ``count`` is the number of rows."""
    rng = np.random.default_rng(21)
    C, D, N = 5, 6, 203
    X, y, s = make_data(rng, n=N, d=D, c=C, dtype=dtype, weights=weighted)
    coef, b = rng.normal(size=(C, D)), rng.normal(size=C)

    one = LossAccumulator(C, D).add(coef, b, X, y, s)
    ref = one.result()

    cuts = np.sort(rng.choice(np.arange(1, N), size=12, replace=False))
    bounds = list(zip(np.r_[0, cuts], np.r_[cuts, N]))
    bounds.append((N, N))  # an empty block contributes nothing
    for trial in range(4):
        order = rng.permutation(len(bounds))
        parts = [LossAccumulator(C, D) for _ in range(3)]
        for k, i in enumerate(order):
            lo, hi = bounds[i]
            parts[k % 3].add(coef, b, X[lo:hi], y[lo:hi], None if s is None else s[lo:hi])
        merged = LossAccumulator(C, D)
        for j in rng.permutation(3):
            merged.merge(parts[j])
        got = merged.result()
        assert merged.count == N
        assert merged.weight_sum == pytest.approx(one.weight_sum, rel=1e-12)
        assert got[0] == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-12)


def test_objective_block_size_independent():
    """objective_and_gradient gives the same J and gradient for any block_rows (1e-12)."""
    rng = np.random.default_rng(8)
    X, y, s = make_data(rng, n=97, d=4, c=3, weights=True)
    coef, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    ref = objective_and_gradient(coef, b, X, y, s, l2=0.2)
    for rows in (1, 7, 50, 97, 1000):
        got = objective_and_gradient(coef, b, X, y, s, l2=0.2, block_rows=rows)
        assert got[0] == pytest.approx(ref[0], rel=1e-12)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-13)


def test_accumulator_refuses_zero_weight():
    """result() with no rows, or only zero-weight rows, is a ValueError (not a division by zero)."""
    acc = LossAccumulator(2, 2)
    with pytest.raises(ValueError, match="zero"):
        acc.result()
    acc.add(np.zeros((2, 2)), None, np.ones((3, 2)), np.array([0, 1, 0]), np.zeros(3))
    with pytest.raises(ValueError, match="zero"):
        acc.result()


# -- SGD step -----------------------------------------------------------------------------------
def test_minibatch_step_of_one_row_is_textbook_update():
    """minibatch_sgd_step on a batch of one row with intercept=None equals the seed's per-example
    update textbook_sgd_step (λ > 0), for several random rows, applied in sequence."""
    rng = np.random.default_rng(31)
    C, D = 5, 4
    X, y, _ = make_data(rng, n=10, d=D, c=C)
    W_vec = rng.normal(size=(C, D))
    W_txt = W_vec.copy()
    lr, lam = 0.3, 0.07
    for i in range(10):
        new_vec, new_b = minibatch_sgd_step(W_vec, None, X[i : i + 1], y[i : i + 1], lr, lam)
        assert new_b is None
        new_txt = textbook_sgd_step(W_txt, X[i], int(y[i]), lr, lam)
        np.testing.assert_allclose(new_vec, new_txt, rtol=1e-13, atol=1e-14)
        # from the same starting point the single steps agree too
        np.testing.assert_allclose(
            minibatch_sgd_step(W_txt, None, X[i : i + 1], y[i : i + 1], lr, lam)[0], new_txt,
            rtol=1e-13, atol=1e-14)
        W_vec, W_txt = new_vec, new_txt


def test_minibatch_step_is_gradient_step_with_intercept():
    """With an intercept the minibatch step is (W, b) − η ∇J_batch(W, b)."""
    rng = np.random.default_rng(32)
    X, y, s = make_data(rng, n=16, d=3, c=3, weights=True)
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    _, gw, gb = objective_and_gradient(W, b, X, y, s, l2=0.1)
    nw, nb = minibatch_sgd_step(W, b, X, y, 0.5, 0.1, sample_weight=s)
    np.testing.assert_allclose(nw, W - 0.5 * gw, rtol=1e-15)
    np.testing.assert_allclose(nb, b - 0.5 * gb, rtol=1e-15)


# -- optima ---------------------------------------------------------------------------------------
def scipy_fit(X, y, s, l2, C, fit_intercept=True, theta0=None, l2_weights=None):
    fun = flat_objective(X, y, s, l2, fit_intercept, C, l2_weights)
    n = C * X.shape[1] + (C if fit_intercept else 0)
    theta0 = np.zeros(n) if theta0 is None else theta0
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 10000, "maxcor": 20, "gtol": 1e-11, "ftol": 1e-16})
    return res, unpack(res.x, C, X.shape[1], fit_intercept)


def classification_data(rng, n=300, d=5, c=3):
    centers = rng.normal(size=(c, d)) * 1.5
    y = rng.integers(0, c, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X, y


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_l2_optimum_rows_sum_to_zero(fit_intercept):
    """At an L2-regularised optimum (scipy L-BFGS over objective_and_gradient from a non-centred
    start) the rows of W sum to 0: the data gradient's rows sum to 0, so 2λ Σ_c w_c = 0."""
    rng = np.random.default_rng(41)
    X, y = classification_data(rng, n=120, d=4, c=4)
    C, D = 4, 4
    theta0 = pack(rng.normal(size=(C, D)) + 5.0, (rng.normal(size=C) + 3.0) if fit_intercept else None)
    assert np.abs(theta0[: C * D].reshape(C, D).sum(axis=0)).max() > 1.0
    res, (W, b) = scipy_fit(X, y, None, 0.05, C, fit_intercept, theta0)
    assert np.abs(W.sum(axis=0)).max() <= 1e-6
    # the data part of the gradient has rows summing to 0 anywhere
    _, gw, _ = objective_and_gradient(theta0[: C * D].reshape(C, D), None, X, y)
    np.testing.assert_allclose(gw.sum(axis=0), 0.0, atol=1e-12)


@pytest.fixture(scope="module")
def small_problem():
    rng = np.random.default_rng(51)
    X, y = classification_data(rng, n=300, d=5, c=3)
    return X, y, 0.01


def test_scipy_lbfgs_reaches_sklearn_optimum(small_problem):
    """Minimising J with scipy's L-BFGS over the core reaches scikit-learn's
    LogisticRegression(C = 1/(2λN)) optimum: probabilities within 1e-6 (and centred coef within 1e-5)."""
    X, y, lam = small_problem
    res, (W, b) = scipy_fit(X, y, None, lam, 3)
    est = sklearn_probs(X, y, lam)
    ours = SoftmaxModel(W, b, [0, 1, 2])
    np.testing.assert_allclose(ours.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-6)
    cen = ours.centered()
    np.testing.assert_allclose(cen.coef, est.coef_ - est.coef_.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(cen.intercept, est.intercept_ - est.intercept_.mean(), atol=1e-5)


def test_weighted_optimum_matches_sklearn_sample_weight():
    """With sample weights s, J's optimum equals scikit-learn's with sample_weight=s and
    C = 1/(2λ Σ s): probabilities within 1e-6."""
    rng = np.random.default_rng(52)
    X, y = classification_data(rng, n=200, d=4, c=3)
    s = rng.uniform(0.1, 4.0, size=200)
    _, (W, b) = scipy_fit(X, y, s, 0.02, 3)
    est = sklearn_probs(X, y, 0.02, sample_weight=s)
    np.testing.assert_allclose(SoftmaxModel(W, b, [0, 1, 2]).predict_proba(X), est.predict_proba(X), atol=1e-6)


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


def test_project_lbfgs_reaches_sklearn_optimum(small_problem):
    """The project's own L-BFGS (lbfgs_init / lbfgs_step loop) over the core reaches the same
    scikit-learn optimum (probabilities within 1e-6) and decreases J monotonically."""
    X, y, lam = small_problem
    fun = flat_objective(X, y, None, lam, True, 3)
    theta0 = np.zeros(3 * 5 + 3)
    f, g = fun(theta0)
    state = lbfgs_init(f, g)
    theta = theta0
    objectives = [f]
    for _ in range(500):
        if np.linalg.norm(state.grad) <= 1e-8:
            break
        theta, state, step = lbfgs_step(fun, theta, state)
        objectives.append(state.objective)
        if step == 0.0:
            break
    assert np.linalg.norm(state.grad) <= 1e-7
    assert all(b <= a + 1e-15 for a, b in zip(objectives, objectives[1:]))
    W, b = unpack(theta, 3, 5, True)
    est = sklearn_probs(X, y, lam)
    np.testing.assert_allclose(SoftmaxModel(W, b, [0, 1, 2]).predict_proba(X), est.predict_proba(X), atol=1e-6)


def test_two_loop_direction_on_quadratic():
    """With pairs from a quadratic f = ½θᵀAθ (A diagonal, n pairs along the axes), the two-loop
    recursion gives the exact Newton direction −A⁻¹∇f; with no pairs it is −∇f."""
    A = np.diag([1.0, 4.0, 10.0])
    S = np.eye(3)
    Y = S @ A
    g = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(two_loop_direction(g, S, Y), -np.linalg.solve(A, g), rtol=1e-14)
    np.testing.assert_array_equal(two_loop_direction(g, S[:0], Y[:0]), -g)


# -- Preconditioner ------------------------------------------------------------------------------
def make_precond(rng, C, D, fit_intercept, reference, l2=0.1, enabled=True, l2_weights=None):
    mean = rng.normal(size=D) * 3
    second = rng.uniform(0.01, 50.0, size=D)
    p = np.ones(D) if l2_weights is None else l2_weights
    return Preconditioner(C, D, mean, second, l2, p, fit_intercept=fit_intercept, reference=reference,
                          enabled=enabled)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("enabled", [True, False])
def test_preconditioner_round_trip(fit_intercept, reference, enabled):
    """to_model(from_model(W, b)) == (W, b) for models in the parameterisation's form (b = 0
    without intercept; last row 0 under ``reference``); θ has ``size`` entries; a general model
    under ``reference`` comes back as its reference(−1) form, with the same probabilities."""
    rng = np.random.default_rng(61)
    C, D = 4, 3
    pc = make_precond(rng, C, D, fit_intercept, reference, enabled=enabled)
    W = rng.normal(size=(C, D))
    b = rng.normal(size=C) if fit_intercept else np.zeros(C)
    if reference:
        W, b = W - W[-1], b - b[-1]
    theta = pc.from_model(W, b)
    assert theta.shape == (pc.size,)
    W2, b2 = pc.to_model(theta)
    np.testing.assert_allclose(W2, W, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(b2, b, rtol=0, atol=1e-13)
    # θ → model → θ as well
    theta_r = rng.normal(size=pc.size)
    np.testing.assert_allclose(pc.from_model(*pc.to_model(theta_r)), theta_r, rtol=1e-13, atol=1e-13)
    if reference:
        Wg = rng.normal(size=(C, D))
        bg = rng.normal(size=C) if fit_intercept else np.zeros(C)
        W3, b3 = pc.to_model(pc.from_model(Wg, bg))
        expect = SoftmaxModel(Wg, bg, list(range(C))).reference(-1)
        np.testing.assert_allclose(W3, expect.coef, atol=1e-13)
        np.testing.assert_allclose(b3, expect.intercept, atol=1e-13)
    if not fit_intercept:
        np.testing.assert_array_equal(pc.to_model(theta)[1], np.zeros(C))
        # from_model(W, None) is accepted without an intercept
        np.testing.assert_array_equal(pc.from_model(W, None), theta)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("reference", [False, True])
def test_preconditioner_gradient_matches_finite_differences(fit_intercept, reference):
    """precond.gradient(∇_W J, ∇_b J) equals central finite differences of θ ↦ J(to_model(θ))
    (relative 1e-6), with per-feature L2 weights."""
    rng = np.random.default_rng(62)
    C, D = 3, 4
    X, y, s = make_data(rng, n=40, d=D, c=C, weights=True)
    X = X * np.array([5.0, 0.5, 1.0, 2.0]) + np.array([3.0, -1.0, 0.0, 10.0])
    p = rng.uniform(0.5, 2.0, size=D)
    pc = make_precond(rng, C, D, fit_intercept, reference, l2=0.2, l2_weights=p)

    def J(theta):
        W, b = pc.to_model(theta)
        return full_objective(W, b if fit_intercept else None, X, y, s, 0.2, p)

    theta = rng.normal(size=pc.size)
    _, gw, gb = J(theta)
    g = pc.gradient(gw, gb if fit_intercept else np.zeros(C))
    assert g.shape == (pc.size,)
    assert rel_err(g, central_fd(lambda t: J(t)[0], theta)) <= 1e-6


def badly_scaled_problem():
    rng = np.random.default_rng(71)
    n, C = 300, 3
    Z, y = classification_data(rng, n=n, d=4, c=C)
    X = np.column_stack([
        Z[:, 0] * 1e3,
        Z[:, 1] * 1e-1,
        Z[:, 2],
        1000.0 + 1e-4 * Z[:, 3],  # nearly constant column
    ])
    return X, y, C


# The nearly constant column (mean 1000, spread 1e-4) makes the raw-space logits X Wᵀ + b cancel
# ~7 digits, so J is only known to ~1e-9 and the line search may stop (with a LineSearchWarning)
# once ‖∇_θ J‖ ≲ 1e-7 — already far inside the 1e-6 tolerance on the probabilities.
@pytest.mark.filterwarnings("ignore:The line search algorithm did not converge")
@pytest.mark.parametrize("optimizer", ["scipy", "project"])
def test_preconditioned_lbfgs_on_badly_scaled_data_reaches_sklearn(optimizer):
    """L-BFGS in preconditioned coordinates on badly scaled data (columns ×1e3 and ×1e-1, one
    column 1000 + 1e-4·noise) with the standardised penalty λ Σ σ_j² w_cj² reaches scikit-learn's
    optimum on the standardised data (the equivalent problem) within 1e-6 in probabilities."""
    X, y, C = badly_scaled_problem()
    n, D = X.shape
    lam = 0.01
    mu, var = X.mean(axis=0), X.var(axis=0)
    sigma = np.sqrt(var)
    p = l2_feature_weights(D, True, sigma)
    np.testing.assert_allclose(p, var)
    pc = Preconditioner(C, D, mu, var, lam, p, fit_intercept=True)

    def fun(theta):
        W, b = pc.to_model(theta)
        loss, gw, gb = full_objective(W, b, X, y, None, lam, p)
        return loss, pc.gradient(gw, gb)

    theta0 = np.zeros(pc.size)
    if optimizer == "scipy":
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "gtol": 1e-11, "ftol": 1e-16})
        theta = res.x
    else:
        theta, state = run_project_lbfgs(fun, theta0, gtol=1e-8)
        assert np.linalg.norm(state.grad) <= 1e-7
    W, b = pc.to_model(theta)
    ours = SoftmaxModel(W, b, list(range(C))).predict_proba(X)

    Z = (X - mu) / sigma
    est = sklearn_probs(Z, y, lam)
    np.testing.assert_allclose(ours, est.predict_proba(Z), rtol=0, atol=1e-6)


def test_preconditioner_constant_column_is_harmless():
    """A constant column (variance 0) with λ = 0 gets scale 1 (no division by zero) and the round
    trip still holds."""
    pc = Preconditioner(2, 2, np.array([5.0, 1.0]), np.array([0.0, 4.0]), 0.0, np.ones(2))
    np.testing.assert_array_equal(pc.scale, [1.0, 2.0])
    W, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    W2, b2 = pc.to_model(pc.from_model(W, b))
    np.testing.assert_allclose(W2, W)
    np.testing.assert_allclose(b2, b, atol=1e-14)


# -- optim -------------------------------------------------------------------------------------------
def test_schedules():
    """constant: η; invscaling: η/(t+1)^power_t; step: η·rate^⌊t/every⌋; make_schedule by name;
    an unknown name is a ValueError."""
    assert [constant_schedule(0.3)(t) for t in (0, 5, 100)] == [0.3, 0.3, 0.3]
    inv = invscaling_schedule(1.0, 0.5)
    assert inv(0) == 1.0 and inv(3) == pytest.approx(0.5) and inv(99) == pytest.approx(0.1)
    st = step_schedule(0.8, 0.5, 10)
    assert [st(t) for t in (0, 9, 10, 19, 20, 35)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.1]
    assert make_schedule("invscaling", 2.0, power_t=1.0)(3) == pytest.approx(0.5)
    assert make_schedule("step", 1.0, decay_rate=0.1, decay_every=2)(4) == pytest.approx(0.01)
    assert make_schedule("constant", 0.7)(1000) == 0.7
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("cosine", 1.0)


def test_plain_sgd_update():
    """sgd without momentum: update = −η_t g, the step counter advances, params untouched."""
    opt = sgd(step_schedule(1.0, 0.5, 1))
    params = np.array([1.0, 2.0])
    state = opt.init(params)
    assert isinstance(state, SgdState) and state.step == 0
    np.testing.assert_array_equal(state.velocity, [0.0, 0.0])
    g = np.array([2.0, -4.0])
    u, state = opt.update(g, state, params)
    np.testing.assert_array_equal(u, [-2.0, 4.0])
    u, state = opt.update(g, state, params)
    np.testing.assert_array_equal(u, [-1.0, 2.0])
    assert state.step == 2
    np.testing.assert_array_equal(params, [1.0, 2.0])


def test_momentum_closed_form():
    """Heavy-ball momentum μ with a constant gradient g: v_t = g (1 + μ + … + μ^t), update −η v_t."""
    eta, mu = 0.1, 0.5
    opt = sgd(constant_schedule(eta), momentum=mu)
    state = opt.init(np.zeros(1))
    g = np.array([1.0])
    expected_v = 0.0
    for _ in range(5):
        u, state = opt.update(g, state)
        expected_v = mu * expected_v + 1.0
        assert u[0] == pytest.approx(-eta * expected_v, rel=1e-15)
        assert state.velocity[0] == pytest.approx(expected_v, rel=1e-15)
    assert state.step == 5


def test_nesterov_closed_form():
    """Nesterov momentum: v ← μ v + g, update = −η (g + μ v). With g = 1, μ = ½, η = 1 the first
    updates are −1.5, −1.75, −1.875 (v = 1, 1.5, 1.75)."""
    opt = sgd(constant_schedule(1.0), momentum=0.5, nesterov=True)
    state = opt.init(np.zeros(2))
    out = []
    for _ in range(3):
        u, state = opt.update(np.ones(2), state)
        out.append(u[0])
    assert out == [-1.5, -1.75, -1.875]
    np.testing.assert_array_equal(state.velocity, [1.75, 1.75])


def test_sgd_with_momentum_minimises_quadratic():
    """SGD (plain, momentum, Nesterov) on f(θ) = ½‖θ − a‖² with a constant step converges to a."""
    a = np.array([3.0, -1.0])
    for kw in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}):
        opt = sgd(constant_schedule(0.1), **kw)
        theta = np.zeros(2)
        state = opt.init(theta)
        for _ in range(500):
            u, state = opt.update(theta - a, state, theta)
            theta = theta + u
        np.testing.assert_allclose(theta, a, atol=1e-8)


def test_polyak_average_is_the_mean():
    """polyak_average_update keeps the arithmetic mean of the iterates passed to it (the initial
    value is replaced by the first iterate)."""
    rng = np.random.default_rng(81)
    iterates = rng.normal(size=(20, 3, 2))
    state = polyak_average_init(np.full((3, 2), 99.0))
    assert isinstance(state, AverageState) and state.count == 0
    for k, it in enumerate(iterates, start=1):
        state = polyak_average_update(it, state)
        assert state.count == k
        np.testing.assert_allclose(state.mean, iterates[:k].mean(axis=0), rtol=1e-13, atol=1e-15)
