"""The optimisation problem the solvers see: θ → J(θ), ∇J(θ), over distributed or in-memory data.

    J(θ) = Σ_i s_i·(−log p(y_i | x_i; W, b)) / Σ_i s_i  +  P(W),      (W, b) = to_model(θ)

A problem is three parts: the data term's kernel (``DistributedLoss`` over the ingested blocks,
or the numpy kernel over arrays in ``NumpyProblem``), the penalty P (``penalties.L2Penalty``) and
the preconditioner (``precondition.Preconditioner``: the affine map θ ↔ (W, b)). The penalty is
any ``penalties.SmoothPenalty``; the separable part (L1, bounds) is ``nonsmooth``, a
``penalties.ThetaTerm``, which only the proximal solvers read. Solvers only
call ``value_and_grad`` (and, for second-order solvers, ``hessian`` / ``hvp`` /
``hessian_diag``) and read ``n_params`` and ``passes``; they never see Spark.

Sample weights s_i already include the class weights (folded in by the kernel). An empty
minibatch has no data term: J is the penalty alone there.
"""

from __future__ import annotations

import math

import numpy as np

from softmax_spark.core.curvature import (HessianDiagKernel, HessianKernel, HvpKernel, hessian_diag_in_theta,
                                          hessian_in_theta, null_directions)
from softmax_spark.core.loss import LossAccumulator

__all__ = ["ProblemBase", "Problem", "NumpyProblem", "curvature_bound", "power_iteration_bound"]


class ProblemBase:
    """The penalty and the θ ↔ (W, b) map around a data term ``_data_term``."""

    def __init__(self, precond, penalty, seed: int = 0):
        self.precond = precond
        self.penalty = penalty
        self.seed = seed
        self.n_params = precond.size
        self.fit_intercept = precond.fit_intercept
        self.passes = 0  # data passes so far
        self.rows = 0  # rows that took part in them
        self.last_grad_norm = float("nan")  # ‖∇J‖ in model coordinates at the last evaluation
        self.moments = None  # (covariance or None, col_mean, col_var) of the data, for curvature_bound
        # the non-smooth part (L1 and/or bounds, ``penalty.ThetaTerm``) that the proximal solvers add to
        # J; None for a smooth problem. value_and_grad / hessian always return the smooth part only.
        self.nonsmooth = None
        # the data's shape for solvers that plan their passes by it (``ProxNewton.plan``); None: unknown
        self.n_rows = None
        self.density = 1.0

    def curvature_bound(self) -> float:
        """L ≥ the largest Hessian eigenvalue of J in θ (see ``curvature_bound``); 1/L is the default
        SGD step."""
        if self.moments is None:
            raise ValueError("this problem has no data moments; give them to compute the curvature bound")
        return curvature_bound(self, *self.moments)

    def to_model(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """θ → (coef of shape (C, D), intercept of shape (C,))."""
        return self.precond.to_model(theta)

    def from_model(self, coef, intercept) -> np.ndarray:
        return self.precond.from_model(coef, intercept)

    def _data_term(self, coef, intercept, iteration, batch_fraction):
        """(mean loss, ∇_W, ∇_b, rows used) of the data term; (0, 0, 0, 0) for an empty batch."""
        raise NotImplementedError

    def value_and_grad(self, theta, iteration: int = 0, batch_fraction: float = 1.0) -> tuple[float, np.ndarray]:
        """(J, ∇_θ J) at θ over all rows (``batch_fraction`` 1) or the minibatch of ``iteration``
        (the same rows for the same iteration and seed). One data pass."""
        coef, intercept = self.precond.to_model(theta)
        loss, grad_coef, grad_intercept, n_rows = self._data_term(coef, intercept, iteration, batch_fraction)
        self.passes += 1
        self.rows += n_rows
        return self._finish(coef, loss, grad_coef, grad_intercept)

    # -- second order (``curvature``'s block kernels; one data pass each) ------------------------
    def _curvature_pass(self, kernel, payload, iteration: int = 0):
        """The merged accumulator's ``result()`` of ``kernel`` over all rows (one data pass)."""
        raise NotImplementedError

    def _finish(self, coef, loss, grad_coef, grad_intercept) -> tuple[float, np.ndarray]:
        """(J, ∇_θ J) from the data term's means at (coef, ·): the penalty added, mapped to θ."""
        loss = loss + self.penalty.value(coef)
        grad_coef = grad_coef + self.penalty.gradient(coef)
        if not self.fit_intercept:
            grad_intercept = np.zeros_like(grad_intercept)
        self.last_grad_norm = float(math.sqrt(np.vdot(grad_coef, grad_coef) + np.vdot(grad_intercept, grad_intercept)))
        return float(loss), self.precond.gradient(grad_coef, grad_intercept)

    @property
    def unpenalised(self) -> bool:
        """True when nothing bounds W: the smooth penalty is zero and there is no separable part
        (J may then have no minimiser, e.g. on separable classes)."""
        return bool(self.penalty.is_zero()) and self.nonsmooth is None

    @property
    def null_space(self) -> np.ndarray:
        """Orthonormal basis (n_params, k) of the directions J is constant along in θ (the class-sum
        shifts of the intercept, and of a feature's coefficients when it is unpenalised): the
        Hessian is singular there and Newton steps are taken in the complement."""
        return null_directions(self.precond, self.penalty)

    def hessian(self, theta, iteration: int = 0, stride: int = 1) -> tuple[float, np.ndarray, np.ndarray]:
        """(J, ∇J, ∇²J) in θ, ∇²J dense of shape (n_params, n_params); one pass.

        The data term's exact Hessian Σ_i s_i (diag(p_i) − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ / Σ s_i comes from
        ``curvature.HessianKernel`` in (W, b) coordinates; the penalty's (``L2Penalty.hessian``) is
        added there and the sum mapped to θ by ``curvature.hessian_in_theta`` (θ → (W, b) is linear).
        ``stride`` k > 1: the data term's Hessian is the mean over every k-th row of each block
        (``HessianKernel``); J and ∇J stay exact."""
        coef, intercept = self.precond.to_model(theta)
        kernel = HessianKernel(self.fit_intercept, stride)
        loss, grad_coef, grad_intercept, H = self._curvature_pass(kernel, (coef, intercept), iteration)
        C, D = coef.shape
        width = D + (1 if self.fit_intercept else 0)
        if not self.penalty.is_zero():
            H = H.reshape(C, width, C, width)
            H[:, :D, :, :D] += self.penalty.hessian(C, D).reshape(C, D, C, D)
            H = H.reshape(C * width, C * width)
        f, g = self._finish(coef, loss, grad_coef, grad_intercept)
        return f, g, hessian_in_theta(self.precond, H)

    def hvp(self, theta, v, iteration: int = 0) -> np.ndarray:
        """∇²J(θ)·v of shape (n_params,); one pass (``curvature.HvpKernel``). θ → (W, b) is linear,
        so the direction in model coordinates is ``to_model(v)`` and the product maps back with
        the gradient's map (its transpose)."""
        coef, intercept = self.precond.to_model(theta)
        V, c = self.precond.to_model(v)
        hv_coef, hv_intercept = self._curvature_pass(HvpKernel(self.fit_intercept), (coef, intercept, V, c), iteration)
        if not self.fit_intercept:
            hv_intercept = np.zeros_like(hv_intercept)
        return self.precond.gradient(hv_coef + self.penalty.hvp(V), hv_intercept)

    def hessian_diag(self, theta, iteration: int = 0) -> np.ndarray:
        """diag ∇²J(θ) of shape (n_params,), for a Jacobi preconditioner of CG; one pass
        (``curvature.HessianDiagKernel``)."""
        coef, intercept = self.precond.to_model(theta)
        *_, sums = self._curvature_pass(HessianDiagKernel(self.fit_intercept), (coef, intercept), iteration)
        pen = self.penalty.hessian_diag(self.precond.n_classes, self.precond.n_features)[: self.precond.rows]
        parts = [(pen / self.precond.scale**2).ravel()]
        if self.fit_intercept:
            parts.append(np.zeros(self.precond.rows))
        return hessian_diag_in_theta(self.precond, sums) + np.concatenate(parts)


class Problem(ProblemBase):
    """J over the ingested blocks: one ``DistributedLoss`` pass per evaluation.

    Parameters
    ----------
    dist : ``distributed.DistributedLoss`` (class weights already set on it)
    precond : ``precondition.Preconditioner``
    penalty : the smooth penalty, a ``penalties.SmoothPenalty`` (``penalties.L2Penalty``)
    seed : seed of the minibatch draws
    moments : (covariance of shape (D, D) or None, col_mean, col_var of shape (D,)) — the
        ingest summary's weighted moments, for ``curvature_bound``
    """

    def __init__(self, dist, precond, penalty, seed: int = 0, moments=None):
        super().__init__(precond, penalty, seed)
        self.dist = dist
        self.moments = moments

    def _data_term(self, coef, intercept, iteration, batch_fraction):
        r = self.dist(coef, intercept, iteration=iteration, batch_fraction=batch_fraction, seed=self.seed)
        return r.loss, r.grad_coef, r.grad_intercept, r.n_rows

    def _curvature_pass(self, kernel, payload, iteration: int = 0):
        acc = self.dist.run(kernel, payload, iteration=iteration, label=f"{type(kernel).__name__} pass")
        self.passes += 1
        self.rows += acc.count if hasattr(acc, "count") else 0
        return acc.result()


class NumpyProblem(ProblemBase):
    """The same J over in-memory arrays (tests, benchmarks, small data); no Spark.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y_index : int ndarray of shape (n_samples,), in [0, C)
    sample_weight : ndarray of shape (n_samples,) or None
    precond, penalty, seed : as ``Problem``
    class_weight : ndarray of shape (C,) or None — multiplies each row's weight by class_weight[y_i]
    keep_covariance : bool — give ``curvature_bound`` the covariance (exact), or only the
        diagonal moments (power iteration, as the distributed problem above D = 512)

    Notes
    -----
    Minibatches keep each row with probability ``batch_fraction`` from a generator seeded by
    (seed, iteration, 0): the draw ``distributed.minibatch_rows`` makes for a single partition.
    """

    def __init__(self, X, y_index, sample_weight, precond, penalty, seed: int = 0, class_weight=None,
                 block_rows: int = 32768, keep_covariance: bool = True):
        super().__init__(precond, penalty, seed)
        self.X = X
        self.y_index = np.asarray(y_index)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if class_weight is not None:
            cw = np.asarray(class_weight, dtype=np.float64)[self.y_index]
            w = cw if w is None else w * cw
        self.sample_weight = w
        self.n_classes = precond.n_classes
        self.block_rows = block_rows
        self.moments = weighted_moments(np.asarray(X, dtype=np.float64), sample_weight, keep_covariance)
        self.n_rows = int(X.shape[0])
        if getattr(X, "nnz", None) is not None:
            self.density = X.nnz / max(1, X.shape[0] * X.shape[1])

    def _data_term(self, coef, intercept, iteration, batch_fraction):
        n = self.X.shape[0]
        rows = None
        if batch_fraction < 1.0:
            rng = np.random.default_rng([self.seed, iteration, 0])
            rows = np.flatnonzero(rng.random(n) < batch_fraction)
        acc = LossAccumulator(*coef.shape)
        b = intercept if self.fit_intercept else None
        index = np.arange(n) if rows is None else rows
        for start in range(0, len(index), self.block_rows):
            idx = index[start:start + self.block_rows]
            sl = slice(start, start + self.block_rows) if rows is None else idx
            w = None if self.sample_weight is None else self.sample_weight[sl]
            acc.add(coef, b, self.X[sl], self.y_index[sl], w)
        if acc.weight_sum <= 0:
            return 0.0, np.zeros_like(coef), np.zeros(coef.shape[0]), 0
        loss, grad_coef, grad_intercept = acc.result()
        return loss, grad_coef, grad_intercept, acc.count

    def _curvature_pass(self, kernel, payload, iteration: int = 0):
        C = self.precond.n_classes
        acc = kernel.zero(C, self.X.shape[1])
        for start in range(0, self.X.shape[0], self.block_rows):
            sl = slice(start, start + self.block_rows)
            w = None if self.sample_weight is None else self.sample_weight[sl]
            acc = kernel.add(acc, payload, self.X[sl], self.y_index[sl], w)
        self.passes += 1
        self.rows += self.X.shape[0]
        return acc.result()


def weighted_moments(X, sample_weight=None, keep_covariance=True):
    """(covariance or None, mean, variance) of the columns of X, weighted by the sample weights
    (population moments, as the ingest summary's)."""
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mean = (w @ X) / w.sum()
    centred = X - mean
    if not keep_covariance:  # wide X: the D × D product would not fit (D = 2¹⁶ is 32 GiB)
        return None, mean, np.asarray(w @ np.square(centred)).ravel() / w.sum()
    cov = (centred * w[:, None]).T @ centred / w.sum()
    return cov, mean, np.diag(cov).copy()


# -- the SGD step bound --------------------------------------------------------------------------
def curvature_bound(problem, covariance, col_mean, col_var, max_iter: int = 15, rtol: float = 1e-2) -> float:
    """An upper bound L on the Hessian of J in θ (so 1/L is a safe gradient step), for any D.

    Böhning's bound ½ (I − 11ᵀ/C) ⊗ M, M = E[z̃ z̃ᵀ] the second moment of the scaled inputs (see
    ``Preconditioner.curvature_bound``), plus the penalty's largest curvature. λ_max(M) comes
    from the covariance when the ingest kept it (D ≤ 512: an eigen-decomposition, no pass), else
    from ``power_iteration_bound`` (2 passes per iteration). Both give the same L, so the
    default SGD step does not change character at D = 512.
    """
    precond = problem.precond
    if covariance is not None:
        return precond.curvature_bound(covariance, col_mean, problem.penalty)
    return power_iteration_bound(problem, col_mean, col_var, max_iter, rtol) + precond.penalty_bound(problem.penalty)


def power_iteration_bound(problem, col_mean, col_var, max_iter: int = 15, rtol: float = 1e-2) -> float:
    """½ λ_max(M) (the data part of Böhning's bound in θ) by power iteration, without M.

    At θ = 0 every class has probability 1/C and the data term's Hessian is
    H₀ = (1/C)(I − 11ᵀ/C) ⊗ M, so Böhning's bound is (C/2)·H₀ and ½λ_max(M) = (C/2)·λ_max(H₀)
    (under the reference parameterisation, the same identity holds for the free rows). H₀·v is
    the central difference (∇J(εv) − ∇J(−εv)) / 2ε minus the penalty's (linear) part, exact
    to O(ε²); ε keeps the logit change ε·|v·z̃| near 1e-3. The Rayleigh quotient is a lower
    estimate of λ_max(H₀) that converges from below; it stops when it changes by ≤ ``rtol``.
    Costs 2 data passes per iteration (``max_iter`` at most).
    """
    precond, penalty = problem.precond, problem.penalty
    n_classes = precond.n_classes
    # trace of M in θ: Σ_j E[(x_j − m_j)²] / s_j² (+1 for the intercept) bounds vᵀMv for ‖v‖ = 1
    moment = np.asarray(col_var, dtype=np.float64) + (np.asarray(col_mean, dtype=np.float64) - precond.mean) ** 2
    trace = float(np.sum(moment / precond.scale**2)) + (1.0 if precond.fit_intercept else 0.0)
    eps = 1e-3 / math.sqrt(max(trace, 1e-300))
    rng = np.random.default_rng(problem.seed)
    v = rng.normal(size=problem.n_params)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(max_iter):
        _, g_plus = problem.value_and_grad(eps * v)
        _, g_minus = problem.value_and_grad(-eps * v)
        coef_v, _ = precond.to_model(v)  # linear at θ = 0: to_model(0) = (0, 0)
        penalty_part = precond.gradient(penalty.hvp(coef_v), np.zeros(n_classes))
        hv = (g_plus - g_minus) / (2.0 * eps) - penalty_part
        previous, estimate = estimate, float(v @ hv)
        norm = float(np.linalg.norm(hv))
        if norm == 0.0:
            break
        v = hv / norm
        if abs(estimate - previous) <= rtol * abs(estimate):
            break
    # z̃ holds the intercept's constant 1, so H₀ already includes its direction
    return 0.5 * n_classes * max(estimate, 0.0)
