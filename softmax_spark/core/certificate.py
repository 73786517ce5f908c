"""Optimality certificate: a rigorous upper bound on J(θ̂) − min J for the returned model.

Pure numpy (no Spark); the one data pass is ``CertificateKernel`` (the exact Hessian of
``curvature.HessianKernel`` plus the largest row norm), run through the problem's own pass.

Derivation (our own; the approach is Bach 2010, "Self-concordant analysis for logistic
regression", Electron. J. Statist. 4, §2). Work in the optimizer's θ coordinates, where the
logits are Θ z̃ + β with z̃ = ((x − μ)/s, 1) (``precondition``), restricted to the complement of
the null space (the class-sum shifts along which J is constant, ``problem.null_space``), so J* is
the same minimum.

1. Third derivative. Per row, the log-sum-exp term has D³[u, v, v] = E_p[(U − EU)(V − EV)²] (the
   third cumulant of the logit directions u = Uz̃, v = Vz̃ under p), so
   |D³[u, v, v]| ≤ (max_c u_c − min_c u_c)·D²[v, v] ≤ √2‖U‖_F ‖z̃‖·D²[v, v]. The L2 penalty is
   quadratic. Hence |D³J(θ)[u, v, v]| ≤ R‖u‖ D²J(θ)[v, v] with R = √2·max_i ‖z̃_i‖ (rows of
   positive weight), and along any segment H(θ + s) ⪰ e^{−R‖s‖} H(θ).
2. Lower model. With g = ∇J(θ), H = ∇²J(θ), μ = λ_min(H) > 0 on the complement, δ = √(gᵀH⁻¹g)
   (the Newton decrement), h = ‖s‖_H ≥ √μ‖s‖ and κ = R/√μ, Taylor with the integral remainder and
   step 1 give J(θ + s) ≥ J(θ) − δh + (e^{−κh} + κh − 1)/κ² for every s.
3. Minimising the right side over h ≥ 0 (x = κδ < 1; the minimiser is h = −log(1 − x)/κ):

       J(θ) − J*  ≤  [x + (1 − x)·log(1 − x)] / κ²  =  δ²/2·(1 + x/3 + x²/6 + …).

   So near convergence (x → 0) the bound is δ²/2, the quadratic model's gap — within a factor
   1 + O(x) of the true gap. When x ≥ 1 the lower model is unbounded below and no bound is given
   (``status`` says so): far from the optimum, or μ tiny (an unpenalised fit on separable data).

4. A sharper constant in H's own norm (used when smaller; one more light data pass). The logit
   range of a direction u on row i is max_{c,c'} (u_c − u_c')·z̃_i ≤ K‖u‖_H with
   K = max_i max_{c<c'} ‖(e_c − e_c') ⊗ z̃_i‖_{H⁻¹} (Cauchy–Schwarz in the H metric), so steps 1–3
   hold with ‖·‖ replaced by ‖·‖_H, R by K and √μ by 1: J(θ) − J* ≤ [x + (1 − x) log(1 − x)]/K²,
   x = Kδ. K is affine invariant (a leverage), so it does not suffer from badly scaled data the way
   R/√λ_min(H) does (on the test sets K·δ is 10²–10⁵ times smaller than κ·δ). The recorded
   bound is the smaller of the two.

The bound is for exact arithmetic; the J the solver reports carries float64 rounding of order
1e-16·|J|, so a measured gap below that is noise. It needs the exact Hessian: above the Newton
bound (C·D̃ > ``MAX_PARAMS``) no certificate is computed (status "not computed").
"""

from __future__ import annotations

import math

import numpy as np

from softmax_spark.core.curvature import HessianAccumulator, HessianKernel, hessian_in_theta
from softmax_spark.core.loss import is_sparse

__all__ = ["CertificateKernel", "gap_bound", "certify", "MAX_PARAMS", "describe"]

MAX_PARAMS = 4096  # the exact Hessian's size limit (solvers/auto.py's Newton bound)


class _CertAccumulator(HessianAccumulator):
    __slots__ = ("max_sq",)

    def __init__(self, n_classes: int, n_features: int, fit_intercept: bool):
        super().__init__(n_classes, n_features, fit_intercept)
        self.max_sq = 0.0

    def merge(self, other):
        super().merge(other)
        self.max_sq = max(self.max_sq, other.max_sq)
        return self

    def result(self):
        return (*super().result(), self.max_sq)


class CertificateKernel:
    """``HessianKernel``'s sums plus max_i ‖z̃_i‖², z̃ = ((x − μ)/s, 1) (rows of positive weight).
    Payload (coef, intercept, μ (D,), s (D,))."""

    def __init__(self, fit_intercept: bool):
        self.fit_intercept = bool(fit_intercept)
        self._hessian = HessianKernel(fit_intercept)

    def zero(self, n_classes: int, n_features: int):
        return _CertAccumulator(n_classes, n_features, self.fit_intercept)

    def add(self, acc, payload, X, y_index, sample_weight):
        if X.shape[0] == 0:
            return acc
        coef, intercept, mean, scale = payload
        self._hessian.add(acc, (coef, intercept), X, y_index, sample_weight)
        Z = X.toarray() if is_sparse(X) else np.asarray(X, dtype=np.float64)
        Z = (Z - mean) / scale
        sq = np.einsum("ij,ij->i", Z, Z) + (1.0 if self.fit_intercept else 0.0)
        if sample_weight is not None:
            sq = sq[np.asarray(sample_weight) > 0]
        if sq.size:
            acc.max_sq = max(acc.max_sq, float(sq.max()))
        return acc


class LeverageKernel:
    """max over rows (of positive weight) and class pairs c < c' of the squared H-dual norm of the
    logit difference's gradient, ‖(e_c − e_c') ⊗ z̃_i‖²_{H⁻¹} = z̃_iᵀ N_cc' z̃_i (``certify``).
    Payload (μ (D,), s (D,), N of shape (pairs, D̃, D̃)). The accumulator is a one-element list."""

    def __init__(self, fit_intercept: bool):
        self.fit_intercept = bool(fit_intercept)

    def zero(self, n_classes: int, n_features: int):
        return _MaxAccumulator()

    def add(self, acc, payload, X, y_index, sample_weight):
        if X.shape[0] == 0:
            return acc
        mean, scale, N = payload
        Z = X.toarray() if is_sparse(X) else np.asarray(X, dtype=np.float64)
        Z = (Z - mean) / scale
        if self.fit_intercept:
            Z = np.hstack([Z, np.ones((Z.shape[0], 1))])
        if sample_weight is not None:
            Z = Z[np.asarray(sample_weight) > 0]
        if Z.shape[0]:
            q = np.einsum("ij,pjk,ik->ip", Z, N, Z, optimize=True)
            acc.value = max(acc.value, float(q.max()))
        return acc


class _MaxAccumulator:
    __slots__ = ("value", "count")

    def __init__(self):
        self.value, self.count = 0.0, 0

    def merge(self, other):
        self.value = max(self.value, other.value)
        return self

    def result(self):
        return self.value


def _pair_matrices(precond, M) -> np.ndarray:
    """N_cc' = M_cc + M_c'c' − M_cc' − M_c'c (D̃ × D̃ each, c < c') from M = H⁻¹ on the complement
    (θ layout: Θ row-major, then β); a pinned class (reference parameterisation) is a zero block."""
    C, D, rows = precond.n_classes, precond.n_features, precond.rows
    width = D + (1 if precond.fit_intercept else 0)
    index = np.full((C, width), -1)
    for c in range(rows):
        index[c, :D] = c * D + np.arange(D)
        if precond.fit_intercept:
            index[c, D] = rows * D + c
    blocks = np.zeros((C, width, C, width))
    for c in range(rows):
        for k in range(rows):
            blocks[c, :, k, :] = M[np.ix_(index[c], index[k])]
    pairs = [(c, k) for c in range(C) for k in range(c + 1, C)]
    return np.stack([blocks[c, :, c] + blocks[k, :, k] - blocks[c, :, k] - blocks[k, :, c] for c, k in pairs])


def _bound(delta: float, K: float):
    """[x + (1 − x) log(1 − x)] / K², x = Kδ (None when x ≥ 1)."""
    x = K * delta
    if x >= 1.0:
        return None, x
    if x < 1e-4:  # the series avoids cancellation in x + (1 − x)·log(1 − x)
        return delta * delta / 2.0 * (1.0 + x / 3.0 + x * x / 6.0 + x**3 / 10.0 * 1.01), x
    return (x + (1.0 - x) * math.log1p(-x)) / (K * K), x


def gap_bound(grad, hessian, max_row_norm: float, null_basis=None) -> dict:
    """The bound of the module docstring from ∇J (n,), ∇²J (n, n) in θ, max_i ‖z̃_i‖ and an
    orthonormal basis (n, k) of J's null directions (or None).

    Returns a dict: bound (float or None), newton_decrement δ, mu, R, kappa, x = κδ, grad_norm,
    status ("certified", or why not). (``certify`` adds K and x_local = Kδ of step 4.)"""
    g = np.asarray(grad, dtype=np.float64)
    H = np.asarray(hessian, dtype=np.float64)
    H = (H + H.T) / 2
    if null_basis is not None and np.size(null_basis):
        from scipy.linalg import null_space

        Q = null_space(np.asarray(null_basis).T)  # orthonormal complement of the null directions
        H = Q.T @ H @ Q
        g = Q.T @ g
    R = math.sqrt(2.0) * float(max_row_norm)
    out = {"bound": None, "newton_decrement": None, "mu": None, "R": R, "kappa": None, "x": None,
           "grad_norm": float(np.linalg.norm(g))}
    if g.size == 0:
        out.update(bound=0.0, newton_decrement=0.0, status="certified")
        return out
    eig, vec = np.linalg.eigh(H)
    mu = float(eig[0])
    out["mu"] = mu
    if not mu > 0:
        out["status"] = "no bound: the Hessian is singular at the fit (J is not strongly convex there)"
        return out
    coords = vec.T @ g
    delta = float(math.sqrt(max(float(np.sum(coords**2 / eig)), 0.0)))
    kappa = R / math.sqrt(mu)
    x = kappa * delta
    out.update(newton_decrement=delta, kappa=kappa, x=x)
    bound, _ = _bound(delta, kappa)
    if bound is None:
        out["status"] = (f"no bound: κ·δ = {x:.3g} ≥ 1 (far from the optimum, or a nearly flat direction: "
                         f"λ_min(H) = {mu:.3g})")
        return out
    out.update(bound=float(bound), status="certified")
    return out


def certify(problem, theta) -> dict:
    """The certificate of ``theta`` for ``problem`` (``problem.Problem`` / ``NumpyProblem``): one
    data pass (Hessian + row norms), then ``gap_bound``. Adds objective (J at θ). P above
    ``MAX_PARAMS``: status "not computed", no pass."""
    precond = problem.precond
    C, D = precond.n_classes, precond.n_features
    width = D + (1 if problem.fit_intercept else 0)
    if C * width > MAX_PARAMS:
        return {"bound": None, "status": f"not computed: C·D̃ = {C * width} > {MAX_PARAMS} (needs the exact Hessian)"}
    coef, intercept = precond.to_model(theta)
    payload = (coef, intercept, np.asarray(precond.mean, dtype=np.float64), np.asarray(precond.scale, dtype=np.float64))
    loss, grad_coef, grad_intercept, H, max_sq = problem._curvature_pass(CertificateKernel(problem.fit_intercept),
                                                                         payload)
    if not problem.penalty.is_zero():  # the smooth penalty's Hessian terms
        H = H.reshape(C, width, C, width)
        H[:, :D, :, :D] += problem.penalty.hessian(C, D).reshape(C, D, C, D)
        H = H.reshape(C * width, C * width)
    J, g = problem._finish(coef, loss, grad_coef, grad_intercept)
    H_theta = hessian_in_theta(precond, H)
    out = gap_bound(g, H_theta, math.sqrt(max_sq), problem.null_space)
    out["objective"] = float(J)
    # the sharper constant in H's own norm (a second, light pass): K = max_i,c<c' ‖(e_c − e_c')⊗z̃_i‖_{H⁻¹}
    if out.get("newton_decrement") is not None and out["mu"] > 0:
        M = _complement_inverse(H_theta, problem.null_space)
        N = _pair_matrices(precond, M)
        lev = problem._curvature_pass(LeverageKernel(problem.fit_intercept), (payload[2], payload[3], N))
        K = math.sqrt(max(float(lev), 0.0))
        local, x_local = _bound(out["newton_decrement"], K)
        out.update(K=K, x_local=x_local)
        if local is not None and (out["bound"] is None or local < out["bound"]):
            out.update(bound=float(local), status="certified")
    return out


def _complement_inverse(H, null_basis) -> np.ndarray:
    """H⁻¹ on the complement of the null directions (zero along them), symmetric."""
    H = (H + H.T) / 2
    if null_basis is not None and np.size(null_basis):
        from scipy.linalg import null_space

        Q = null_space(np.asarray(null_basis).T)
        return Q @ np.linalg.solve(Q.T @ H @ Q, Q.T)
    return np.linalg.inv(H)


def describe(cert: dict | None) -> str:
    """One phrase for a log line: "J − J* ≤ 1.2e-14 (Newton decrement 1.5e-07)" or the status."""
    if not cert:
        return "no optimality certificate"
    if cert.get("bound") is None:
        return f"optimality certificate: {cert.get('status')}"
    return f"J − J* ≤ {cert['bound']:.3g} (Newton decrement {cert['newton_decrement']:.3g}, κ = {cert['kappa']:.3g})"
