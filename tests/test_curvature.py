"""Curvature kernels (exact Hessian, HVP, Hessian diagonal) and their map to θ: pure numpy, no Spark."""

import numpy as np
import pytest
import scipy.sparse as sp

from softmax_spark.core import curvature
from softmax_spark.core.curvature import (
    HessianDiagKernel,
    HessianKernel,
    HvpKernel,
    hessian_diag_in_theta,
    hessian_in_theta,
    null_directions,
)
from core_helpers import l2_curvature_in_theta, objective_and_gradient
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.core.precondition import Preconditioner

from core_helpers import kernel_data


def run(kernel, payload, X, y, w, C, D, pieces=3):
    """Apply a kernel over ``pieces`` chunks, split across two accumulators that are then merged."""
    bounds = np.linspace(0, X.shape[0], pieces + 1).astype(int)
    accs = [kernel.zero(C, D), kernel.zero(C, D)]
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        accs[k % 2] = kernel.add(accs[k % 2], payload, X[a:b], y[a:b], None if w is None else w[a:b])
    return accs[0].merge(accs[1]).result()


def dense64(X):
    return (X.toarray() if sp.issparse(X) else X).astype(np.float64)


def data_grad(coef, intercept, X, y, w, fit_intercept):
    """Flattened class-major (W, b) gradient of the data term (reference implementation)."""
    _, gW, gb = objective_and_gradient(coef, intercept if fit_intercept else None, dense64(X), y, w)
    if fit_intercept:
        return np.hstack([gW, gb[:, None]]).ravel()
    return gW.ravel()


def fd_hessian(coef, intercept, X, y, w, fit_intercept, h=1e-3):
    """Jacobian of the gradient by Richardson-extrapolated central differences (error O(h⁴))."""
    C, D = coef.shape
    width = D + (1 if fit_intercept else 0)
    base = np.hstack([coef, intercept[:, None]]) if fit_intercept else coef.copy()

    def grad_at(flat):
        m = flat.reshape(C, width)
        return data_grad(m[:, :D], m[:, D] if fit_intercept else intercept, X, y, w, fit_intercept)

    x0 = base.ravel()
    H = np.empty((x0.size, x0.size))
    for k in range(x0.size):
        e = np.zeros_like(x0)
        e[k] = 1.0

        def central(step):
            return (grad_at(x0 + step * e) - grad_at(x0 - step * e)) / (2 * step)

        H[:, k] = (4 * central(h / 2) - central(h)) / 3
    return H


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hessian_kernel_matches_finite_differences(fit_intercept, sparse, weighted, dtype):
    X, y, w, coef, intercept = kernel_data(weighted=weighted, sparse=sparse, dtype=dtype)
    C, D = coef.shape
    loss, gW, gb, H = run(HessianKernel(fit_intercept), (coef, intercept), X, y, w, C, D)
    ref_loss, ref_gW, ref_gb = objective_and_gradient(coef, intercept if fit_intercept else None, dense64(X), y, w)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(gW, ref_gW, rtol=0, atol=1e-13)
    if fit_intercept:
        np.testing.assert_allclose(gb, ref_gb, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(H, H.T)
    fd = fd_hessian(coef, intercept, X, y, w, fit_intercept)
    np.testing.assert_allclose(H, fd, rtol=0, atol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_dense_and_csr_hessians_agree(fit_intercept):
    X, y, w, coef, intercept = kernel_data(n=300, D=9, C=3, sparse=True, seed=3)
    C, D = coef.shape
    *_, H_sparse = run(HessianKernel(fit_intercept), (coef, intercept), X, y, w, C, D)
    *_, H_dense = run(HessianKernel(fit_intercept), (coef, intercept), X.toarray(), y, w, C, D)
    np.testing.assert_allclose(H_sparse, H_dense, rtol=0, atol=1e-13)


@pytest.mark.parametrize("D,C", [(5, 4), (30, 3)])  # x̃⊗x̃ GEMM path and per-class syrk path
def test_hessian_sub_chunks(monkeypatch, D, C):
    """Tiny work buffers force many sub-chunks; the result must not change."""
    X, y, w, coef, intercept = kernel_data(n=200, D=D, C=C, seed=5)
    *_, H_big = run(HessianKernel(True), (coef, intercept), X, y, w, C, D, pieces=1)
    monkeypatch.setattr(curvature, "BUFFER_BYTES", 8 * C * (D + 1) * 7)  # 7 rows per sub-chunk
    *_, H_small = run(HessianKernel(True), (coef, intercept), X, y, w, C, D, pieces=1)
    np.testing.assert_allclose(H_small, H_big, rtol=0, atol=1e-14)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_hvp_equals_hessian_times_vector(fit_intercept, sparse):
    X, y, w, coef, intercept = kernel_data(sparse=sparse, dtype=np.float32, seed=1)
    C, D = coef.shape
    rng = np.random.default_rng(7)
    V, c = rng.normal(size=(C, D)), rng.normal(size=C)
    hv_coef, hv_intercept = run(HvpKernel(fit_intercept), (coef, intercept, V, c), X, y, w, C, D)
    *_, H = run(HessianKernel(fit_intercept), (coef, intercept), X, y, w, C, D)
    if fit_intercept:
        expected = (H @ np.hstack([V, c[:, None]]).ravel()).reshape(C, D + 1)
        np.testing.assert_allclose(hv_coef, expected[:, :D], rtol=0, atol=1e-12)
        np.testing.assert_allclose(hv_intercept, expected[:, D], rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(hv_coef, (H @ V.ravel()).reshape(C, D), rtol=0, atol=1e-12)


def make_precond(X, w, C, l2, fit_intercept, reference, l2_weights=None):
    Xd = dense64(X)
    s = np.ones(Xd.shape[0]) if w is None else w
    mean = s @ Xd / s.sum()
    second = s @ (Xd - mean) ** 2 / s.sum() if fit_intercept else s @ Xd**2 / s.sum()
    weights = np.ones(Xd.shape[1]) if l2_weights is None else l2_weights
    return Preconditioner(C, Xd.shape[1], mean, second, L2Penalty(l2, weights), fit_intercept, reference)


def theta_grad(precond, theta, X, y, w, l2, l2_weights=None):
    coef, intercept = precond.to_model(theta)
    loss, gW, gb = objective_and_gradient(coef, intercept if precond.fit_intercept else None, dense64(X), y, w)
    gW = gW + L2Penalty(l2, l2_weights).gradient(coef)
    return precond.gradient(gW, gb if precond.fit_intercept else np.zeros(precond.n_classes))


def theta_hessian(precond, theta, X, y, w, l2, l2_weights=None):
    coef, intercept = precond.to_model(theta)
    C, D = coef.shape
    *_, H = run(HessianKernel(precond.fit_intercept), (coef, intercept), X, y, w, C, D)
    return hessian_in_theta(precond, H) + np.diag(l2_curvature_in_theta(precond, l2, l2_weights))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("reference", [False, True])
def test_hessian_in_theta_matches_finite_differences(fit_intercept, reference):
    X, y, w, _, _ = kernel_data(n=150, D=5, C=3, seed=2)
    l2, weights = 1e-2, np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    precond = make_precond(X, w, 3, l2, fit_intercept, reference, weights)
    theta = np.random.default_rng(4).normal(scale=0.5, size=precond.size)
    H = theta_hessian(precond, theta, X, y, w, l2, weights)
    fd = np.empty_like(H)
    h = 1e-3
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = 1.0

        def central(step):
            return (theta_grad(precond, theta + step * e, X, y, w, l2, weights)
                    - theta_grad(precond, theta - step * e, X, y, w, l2, weights)) / (2 * step)

        fd[:, k] = (4 * central(h / 2) - central(h)) / 3
    np.testing.assert_allclose(H, fd, rtol=0, atol=1e-10)
    # the Hessian diagonal from the (cheaper) diagonal kernel is the same diagonal
    coef, intercept = precond.to_model(theta)
    loss, gW, gb, sums = run(HessianDiagKernel(fit_intercept), (coef, intercept), X, y, w, 3, 5)
    diag = hessian_diag_in_theta(precond, sums) + l2_curvature_in_theta(precond, l2, weights)
    np.testing.assert_allclose(diag, np.diag(H), rtol=0, atol=1e-14)


@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_null_directions_are_flat(l2):
    X, y, w, _, _ = kernel_data(n=100, D=4, C=3, seed=8)
    precond = make_precond(X, w, 3, l2, True, False)
    theta = np.random.default_rng(1).normal(size=precond.size)
    N = null_directions(precond, l2)
    assert N.shape == (precond.size, 5 if l2 == 0 else 1)
    np.testing.assert_allclose(N.T @ N, np.eye(N.shape[1]), atol=1e-15)
    H = theta_hessian(precond, theta, X, y, w, l2)
    np.testing.assert_allclose(H @ N, 0.0, atol=1e-14)
    np.testing.assert_allclose(N.T @ theta_grad(precond, theta, X, y, w, l2), 0.0, atol=1e-14)
    # H is positive definite on the complement of N
    Q = np.linalg.qr(np.hstack([N, np.eye(precond.size)]))[0][:, N.shape[1]:]
    assert np.linalg.eigvalsh(Q.T @ H @ Q).min() > 0
    assert null_directions(make_precond(X, w, 3, l2, True, True), l2).shape[1] == 0


@pytest.mark.parametrize("sparse", [False, True])
def test_a_strided_hessian_is_the_mean_over_every_kth_row_of_each_block(sparse):
    """HessianKernel(stride=k): loss and gradient over every row, the Hessian the weighted mean over
    rows 0, k, 2k, … of each block (chunk) it is given — fixed by the blocks, so a retry sums the same rows."""
    X, y, w, coef, intercept = kernel_data(weighted=True, sparse=sparse)
    C, D = coef.shape
    k = 3
    loss, gW, gb, H = run(HessianKernel(True, stride=k), (coef, intercept), X, y, w, C, D, pieces=2)
    ref_loss, ref_gW, ref_gb, _ = run(HessianKernel(True), (coef, intercept), X, y, w, C, D, pieces=2)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(gW, ref_gW, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gb, ref_gb, rtol=1e-10, atol=1e-13)
    bounds = np.linspace(0, X.shape[0], 3).astype(int)
    rows = np.concatenate([np.arange(a, b)[::k] for a, b in zip(bounds[:-1], bounds[1:])])
    *_, H_rows = run(HessianKernel(True), (coef, intercept), X[rows], y[rows], w[rows], C, D, pieces=1)
    np.testing.assert_allclose(H, H_rows, rtol=1e-10, atol=1e-13)
