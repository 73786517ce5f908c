"""Trust-region Newton-CG (Steihaug–Toint CG, diagonally preconditioned): Newton without forming H.

Each iteration approximately minimises the quadratic model m(s) = gᵀs + ½ sᵀHs inside the
trust region ‖s‖_M ≤ Δ (M = the preconditioner, ‖s‖_M = √(sᵀMs)) by preconditioned CG, where every
product H·v is one distributed pass (``problem.hvp``). CG stops when

- the preconditioned residual is small: ‖r‖_{M⁻¹} ≤ η ‖g‖_{M⁻¹}, with the forcing term
  η = min(0.5, (gᵀM⁻¹g / max(|J|, 1))^{1/4}) → 0 near the optimum (superlinear convergence; the
  same √‖g‖ rule as scikit-learn's ``_newton_cg``, made scale-free), or
- the step reaches the boundary, or a direction of non-positive curvature is met (then it goes to
  the boundary along it — Steihaug 1983, Toint 1981), or ``max_cg`` products were spent.

The trial point costs one ``value_and_grad`` pass; acceptance (ρ = actual / predicted decrease >
η₀ = 1e-4) and the radius update follow LIBLINEAR's TRON (Lin, Weng & Keerthi 2008, "Trust region
Newton method for large-scale logistic regression", JMLR 9; preconditioned as in Hsia, Chiang & Lin
2018, ACML): η₁ = 0.25, η₂ = 0.75, σ₁ = 0.25, σ₂ = 0.5, σ₃ = 4, with the quadratic-interpolation
factor α. Δ₀ = ‖g₀‖_{M⁻¹} (the length of the preconditioned steepest-descent step), and after the
first step Δ ← min(Δ, ‖s‖_M). An accepted step costs one more pass for the new preconditioner.

Preconditioner: M = (1 − a)·diag(H) + a·mean(diag H), a = 0.01 (``problem.hessian_diag``; the blend
keeps M positive where a column has no curvature, as TRON's blend with the identity does).
Directions along which J is flat (``problem.null_space``, see ``newton``) are projected out of every
preconditioned residual, so CG works in their complement.

Stopping (scale-free, the analogue of Newton's decrement): after an iteration whose CG step ended
inside the region, the model decrease −m(s) estimates ½ gᵀH⁻¹g ≈ J − J* (within a factor
1/(1 − η²) when CG met its residual test; an underestimate when it ran out of ``max_cg`` products,
which happens on very ill-conditioned problems — κ ≳ 1e10 in θ — where ``newton`` is the better
choice); stop when −m(s) / max(|J|, 1) ≤ tol. That test is out of reach where CG keeps running out of
``max_cg`` products, so the run also stops (default ``gmtol`` 1e-15) when the scale-free gradient in the
preconditioned coordinates gᵀM⁻¹g / max(|J|, 1) ≤ gmtol: measured in-process (NumpyProblem, λ = 1e-4,
tests/test_newton_spark.py's sets) it falls below 1e-15 only where the test probabilities are within
1e-7 of the exact optimum (scaled_corr_7c: iteration 9, max |Δp| 2.9e-8, instead of 29 iterations and
4357 passes; letters_26c: iteration 21, 3.9e-8, where it ran past 100 iterations and 18220 passes
before). Default settings, iterations / passes / max |Δp|: scaled_80pct_5c 10 / 333 / 1.1e-8 (was
13 / 921), bands_6c 18 / 342 / 1.3e-11, digits 18 / 359 / 1.1e-8, wine 13 / 215 / 2.8e-11,
iris 11 / 93 / 4.4e-10, breast_cancer 13 / 159 / 3.3e-9, scaled_corr_7c 9 / 317 / 2.9e-8, letters_26c
21 / 2262 / 3.9e-8 (CG at max_cg from iteration 12: passes there are the open cost). Also max |g| ≤ gtol. No accepted
decrease of J beyond its evaluation noise (NOISE_REL·max(|J|, 1)) in ``max_stalls`` iterations in a
row, or a radius below 1e-12·(1 + ‖θ‖_M), raises ``NoProgressError``. Below that noise ρ is
meaningless: a step predicting less than the noise is accepted when J did not rise by more than it
(and Δ grows, σ₃‖s‖_M); if it was an interior step and J did rise, θ is certified to the noise level
and the run stops.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from softmax_spark.core.errors import NoProgressError

__all__ = ["NewtonCG", "NewtonCGState", "steihaug_cg"]

EPS = np.finfo(np.float64).eps
NOISE_REL = 1e-13  # relative noise of a difference of two evaluations of J
DECREMENT_FLOOR = EPS * EPS  # ½gᵀH⁻¹g is quadratic in g, whose relative rounding error is ~ε

ETA0, ETA1, ETA2 = 1e-4, 0.25, 0.75
SIGMA1, SIGMA2, SIGMA3 = 0.25, 0.5, 4.0


class NewtonCGState(NamedTuple):
    theta: np.ndarray  # of shape (P,)
    objective: float  # J(θ)
    grad: np.ndarray  # of shape (P,)
    precond: np.ndarray  # of shape (P,), M at θ
    radius: float  # Δ, in the M-norm; nan before the first step
    predicted: float  # −m(s)/max(|J|,1) of the last interior CG step; nan otherwise
    iterations: int  # outer iterations done (Δ ← min(Δ, ‖s‖_M) after the first)
    stalls: int  # consecutive iterations without a decrease of J beyond its noise


def _to_boundary(s, d, M, radius):
    """τ ≥ 0 with ‖s + τ d‖_M = Δ (the positive root; ‖s‖_M ≤ Δ)."""
    sMd, sMs, dMd = float(s @ (M * d)), float(s @ (M * s)), float(d @ (M * d))
    gap = max(radius * radius - sMs, 0.0)
    root = math.sqrt(sMd * sMd + dMd * gap)
    return gap / (sMd + root) if sMd >= 0 else (root - sMd) / dMd


def steihaug_cg(hvp, grad, M, radius, eta, max_iter, project=None):
    """Approximately minimise gᵀs + ½ sᵀHs over ‖s‖_M ≤ Δ by preconditioned CG.

    Parameters
    ----------
    hvp : callable v ↦ H v (one distributed pass each)
    grad : ndarray (P,); M : ndarray (P,) positive; radius : Δ > 0; eta : relative residual target
    max_iter : maximum products; project : callable z ↦ z with flat directions removed, or None

    Notes
    -----
    Returns (s, r, n_products, interior) with r = −g − H s; ``interior`` is True when CG ended inside
    the region (residual test met, or ``max_iter`` products spent), False on the boundary.
    """
    s = np.zeros_like(grad)
    r = -grad
    z = r / M
    if project is not None:
        z = project(z)
    d = z.copy()
    rz = float(r @ z)
    target = eta * math.sqrt(max(rz, 0.0))
    products = 0
    while products < max_iter:
        if math.sqrt(max(rz, 0.0)) <= target:
            return s, r, products, True
        Hd = hvp(d)
        products += 1
        curvature = float(d @ Hd)
        if curvature <= 1e-14 * float(d @ (M * d)):
            # non-positive curvature (J is flat or rounding-flat along d): go to the boundary
            tau = _to_boundary(s, d, M, radius)
            return s + tau * d, r - tau * Hd, products, False
        alpha = rz / curvature
        s_next = s + alpha * d
        if float(s_next @ (M * s_next)) >= radius * radius:
            tau = _to_boundary(s, d, M, radius)
            return s + tau * d, r - tau * Hd, products, False
        s = s_next
        r = r - alpha * Hd
        z = r / M
        if project is not None:
            z = project(z)
        rz_next = float(r @ z)
        d = z + (rz_next / rz) * d
        rz = rz_next
    return s, r, products, True


class NewtonCG:
    """Trust-region Newton-CG (see the module docstring for every rule).

    Parameters
    ----------
    tol : stop when the predicted decrease of an interior CG step / max(|J|, 1) ≤ tol
    gtol : stop when max |∇J| ≤ gtol; 0 disables
    max_cg : Hessian-vector products per iteration at most
    blend : a in M = (1 − a) diag H + a mean(diag H)
    gmtol : stop when gᵀM⁻¹g / max(|J|, 1) ≤ gmtol (the preconditioned gradient, scale-free); 0 disables
    max_stalls : consecutive iterations without a decrease of J beyond its noise before ``NoProgressError``
    """

    name = "newton-cg"

    def __init__(self, tol: float = 1e-14, gtol: float = 0.0, max_cg: int = 200, blend: float = 0.01,
                 max_stalls: int = 30, gmtol: float = 1e-15):
        self.tol = float(tol)
        self.gmtol = float(gmtol)
        self.gtol = float(gtol)
        self.max_cg = int(max_cg)
        self.blend = float(blend)
        self.max_stalls = int(max_stalls)

    def _preconditioner(self, problem, theta, iteration: int = 0):
        diag = np.abs(np.asarray(problem.hessian_diag(theta, iteration=iteration), dtype=np.float64))
        mean = float(diag.mean()) if diag.size else 1.0
        if not np.isfinite(mean) or mean <= 0.0:
            mean = 1.0
        return (1.0 - self.blend) * diag + self.blend * mean

    def init(self, theta, problem) -> NewtonCGState:
        """Two passes: J and ∇J at θ₀, then the preconditioner."""
        theta = np.asarray(theta, dtype=np.float64)
        f, g = problem.value_and_grad(theta)
        M = self._preconditioner(problem, theta)
        return NewtonCGState(theta, float(f), np.asarray(g, dtype=np.float64), M, float("nan"), float("nan"), 0, 0)

    def step(self, problem, state: NewtonCGState, iteration: int):
        theta, f0, g, M = state.theta, state.objective, state.grad, state.precond
        scale = max(abs(f0), 1.0)
        gMg = float(g @ (g / M))
        radius = math.sqrt(gMg) if not np.isfinite(state.radius) else state.radius
        N = getattr(problem, "null_space", None)
        project = None
        if N is not None and np.size(N):
            N = np.asarray(N)
            project = lambda z: z - N @ (N.T @ z)  # noqa: E731
        eta = min(0.5, (gMg / scale) ** 0.25)
        s, r, products, interior = steihaug_cg(lambda v: problem.hvp(theta, v, iteration=iteration), g, M, radius, eta,
                                               self.max_cg, project)
        if project is not None:
            s = project(s)
        gs = float(g @ s)
        prered = -0.5 * (gs - float(s @ r))  # −m(s) = −(gᵀs + ½ sᵀHs), with Hs = −g − r
        snorm = math.sqrt(float(s @ (M * s)))
        new_theta = theta + s
        f, g_new = problem.value_and_grad(new_theta, iteration=iteration)
        actred = f0 - f if np.isfinite(f) else -math.inf
        if state.iterations == 0:
            radius = min(radius, snorm)
        # TRON's radius update; α minimises the quadratic interpolating J(0), gᵀs, J(s) along s
        if not np.isfinite(f) or f - f0 - gs <= 0:
            alpha = SIGMA3
        else:
            alpha = max(SIGMA1, -0.5 * gs / (f - f0 - gs))
        if actred < ETA0 * prered:
            radius = min(max(alpha, SIGMA1) * snorm, SIGMA2 * radius)
        elif actred < ETA1 * prered:
            radius = max(SIGMA1 * radius, min(alpha * snorm, SIGMA2 * radius))
        elif actred < ETA2 * prered:
            radius = max(SIGMA1 * radius, min(alpha * snorm, SIGMA3 * radius))
        else:
            radius = max(radius, min(alpha * snorm, SIGMA3 * radius))
        # below J's noise (NOISE_REL·max(|J|,1)) actual and predicted decreases cannot be compared:
        # trust the model (exact to third order for such small steps) and let the radius grow
        noise = NOISE_REL * scale
        at_floor = prered <= noise
        if at_floor and actred >= -noise:
            radius = max(radius, SIGMA3 * snorm)
        accepted = bool(np.isfinite(f) and ((prered > 0 and actred > ETA0 * prered) or (at_floor and actred >= -noise)))
        predicted = prered / scale if interior else float("nan")
        stalls = 0 if (accepted and actred > noise) else state.stalls + 1
        extras = {"cg_iterations": products, "radius": radius, "rho": (actred / prered) if prered > 0 else float("nan"),
                  "accepted": int(accepted), "predicted_decrease": prered / scale}
        if not accepted and at_floor and interior:
            # an interior Newton step predicting less than J's noise certifies θ to that level: stop
            return state._replace(predicted=min(prered / scale, self.tol), iterations=state.iterations + 1), extras
        theta_norm = math.sqrt(float(theta @ (M * theta)))
        if stalls >= self.max_stalls or radius <= 1e-12 * (1.0 + theta_norm):
            raise NoProgressError(
                f"newton-cg: J = {f0:.17g} has not decreased beyond its rounding noise in {stalls} iterations "
                f"(radius {radius:.3g}, predicted relative decrease {prered / scale:.3g}); not at a certified optimum")
        if accepted:
            M_new = self._preconditioner(problem, new_theta, iteration)
            return NewtonCGState(new_theta, float(f), np.asarray(g_new, dtype=np.float64), M_new, float(radius),
                                 predicted, state.iterations + 1, stalls), extras
        return state._replace(radius=float(radius), predicted=float("nan"), iterations=state.iterations + 1,
                              stalls=stalls), extras

    def stop_reason(self, state: NewtonCGState, history) -> str | None:
        limit = max(self.tol, DECREMENT_FLOOR)
        if np.isfinite(state.predicted) and state.predicted <= limit:
            return f"newton-cg predicted decrease −m(s)/max(|J|,1) = {state.predicted:.3g} ≤ {limit:.3g}"
        gMg = float(state.grad @ (state.grad / state.precond)) / max(abs(state.objective), 1.0)
        if state.iterations > 0 and gMg <= self.gmtol:
            return f"newton-cg preconditioned gradient gᵀM⁻¹g/max(|J|,1) = {gMg:.3g} ≤ gmtol {self.gmtol:.3g}"
        gmax = float(np.max(np.abs(state.grad), initial=0.0))
        if gmax <= self.gtol:
            return f"gradient max|∇J| = {gmax:.3g} ≤ gtol {self.gtol:.3g}"
        return None
