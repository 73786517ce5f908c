"""Properties of the loss kernels (``loss``): the data term, its gradient, mergeable block sums,
the plain L2 term of ``objective_and_gradient``, and the optima they define.

Pure numpy/scipy (plus scikit-learn as an independent reference); no Spark here. The solvers,
optimizers, penalty and preconditioner have their own test files.
"""

import numpy as np
import pytest

from core_helpers import (
    central_fd,
    classification_data,
    flat_objective,
    make_data,
    minibatch_sgd_step,
    objective_and_gradient,
    pack,
    rel_err,
    scipy_fit,
    sklearn_probs,
    small_problem_data,
    textbook_sgd_step,
    unpack,
)
from softmax_spark.core.loss import (
    LossAccumulator,
    loss_and_gradient_sums,
)
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core.penalty import L2Penalty


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
    data term plus the penalty (``L2Penalty``) equals central finite differences of that J (relative 1e-6)."""
    rng = np.random.default_rng(7)
    C, D = 4, 5
    X, y, s = make_data(rng, n=50, d=D, c=C, weights=True)
    p = rng.uniform(0.01, 5.0, size=D)
    fun = flat_objective(X, y, s, 0.3, fit_intercept, C, l2_weights=p)
    theta = rng.normal(size=C * D + (C if fit_intercept else 0))
    assert rel_err(fun(theta)[1], central_fd(lambda t: fun(t)[0], theta)) <= 1e-6
    # and the penalty really is λ Σ p_j w_cj²
    coef = theta[: C * D].reshape(C, D)
    penalty = L2Penalty(0.3, p)
    loss0, g0 = 1.5 + penalty.value(coef), np.zeros((C, D)) + penalty.gradient(coef)
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
    # the penalty with λ = 0 adds nothing
    zero = L2Penalty(0.0)
    loss, g = 0.5 + zero.value(coef), gw0 + zero.gradient(coef)
    assert loss == 0.5 and np.array_equal(g, gw0)


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
    return small_problem_data()

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



@pytest.mark.parametrize("n_classes", [2, 10, 33, 200])
def test_softmax_nll_matches_log_softmax_and_the_row_helpers_match_numpy(n_classes):
    """The one-exp kernel step equals exp(log_softmax) and −log_softmax[y] to rounding, on both
    sides of the few-classes switch (per-column max, BLAS row and column sums)."""
    from softmax_spark.core.loss import column_sums, log_softmax, row_sums, softmax_nll_

    rng = np.random.default_rng(n_classes)
    logits = rng.normal(scale=30.0, size=(257, n_classes))
    logits[0] = 700.0  # a row of equal huge logits: still finite
    y = rng.integers(0, n_classes, size=257)
    reference = log_softmax(logits)
    p = logits.copy()
    nll = softmax_nll_(p, y)
    np.testing.assert_allclose(p, np.exp(reference), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(nll, -reference[np.arange(257), y], rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(nll))
    np.testing.assert_allclose(row_sums(logits), logits.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(column_sums(logits), logits.sum(axis=0), rtol=1e-12)
