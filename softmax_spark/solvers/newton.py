"""Newton's method with the exact Hessian (driver-side Cholesky), Armijo backtracking, and a
scale-free stop on the Newton decrement.

Per iteration, in θ (the optimizer's coordinates, ``precondition.Preconditioner``):

    H d = −g                      (Cholesky of H on the complement of J's flat directions)
    θ⁺ = θ + α d,  α = 1, then backtracking until J(θ⁺) ≤ J(θ) + c₁ α gᵀd       (Armijo, c₁ = 1e-4)

The trial α = 1 is evaluated with ``problem.hessian`` (one distributed pass that returns J, ∇J and
∇²J at θ⁺): when it is accepted — nearly always, and always once in Newton's quadratic phase — the
next iteration needs no further pass, so one iteration costs one pass. Shorter trials use the
cheaper ``problem.value_and_grad``; the next iteration then starts with one Hessian pass.

Singular directions. Adding a constant to every class's logit changes no probability, so with all C
classes free J is flat along the class-sum directions (β + t·1 always, as b is not penalised; Θ_·j
+ t·1 when feature j is not penalised). The gradient is orthogonal to them, the Hessian singular
along them. When the problem says which they are (``problem.null_space``, an orthonormal (P, k)
array, see ``curvature.null_directions``), we factor H + ᾱ NNᵀ (ᾱ = the mean of diag H), which is
positive definite on the whole space and acts as H on the complement of N, and remove N's
component from d. Other (data-made) near-singularities — collinear columns with λ = 0, nearly
separable classes — are handled by a relative ridge τ = P·ε·max(diag H) always added (the size of
the rounding error of the P-term sums in H, so eigenvalues it damps are indistinguishable from
noise; it bounds d along noise directions), raised ×100 whenever Cholesky still reports a
non-positive pivot.

Stopping (``stop_reason``): the Newton decrement ½ gᵀH⁻¹g estimates J(θ) − J* (it equals it for a
quadratic), so ½ gᵀH⁻¹g / max(|J|, 1) ≤ tol means "the objective is within a relative tol of its
minimum" whatever the scale of the data or of J (Boyd & Vandenberghe, Convex Optimization §9.5);
because Newton converges quadratically, the iteration that crosses tol typically lands orders of
magnitude below it. Also: max |g| ≤ gtol. The decrement is an optimality certificate computed from
g and H at θ, not from differences of J, so it stays meaningful far below J's rounding noise (floor ε²).
When it is already below that noise (NOISE_REL·max(|J|, 1)), the full step is accepted if J did not
rise by more than the noise; otherwise the Armijo test is strict, and a line search that finds no
decrease raises ``NoProgressError`` — it never reports an optimum it has not certified.

No minimiser. With λ = 0 and separable classes J → 0 only as ‖W‖ → ∞: the decrement goes below any
tol while the coefficients grow without bound, and there is no optimum to report. Its signature:
the decrement ½gᵀH⁻¹g is a sizeable part of J itself, ≥ J/4 (along a separating direction
J ≈ a·e^(−t) and ½gᵀH⁻¹g = J/2 exactly; near a minimiser with J* > 0 it is ≪ J), and under full steps J falls by a roughly constant factor each iteration (linear
convergence to 0, where Newton near a minimiser converges quadratically). ``stop_reason`` stops
with a reason saying so (``SEPARABLE_REASON``) — when the decrement test would pass in that state,
and, for an unpenalised W (λ = 0), as soon as the last ``SEPARABLE_RUN`` full steps show it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from softmax_spark.core.errors import NoProgressError

__all__ = ["Newton", "NewtonState", "newton_direction"]

EPS = np.finfo(np.float64).eps
NOISE_REL = 1e-13  # relative noise of a difference of two evaluations of J (sums over many rows)
DECREMENT_FLOOR = EPS * EPS  # ½gᵀH⁻¹g is quadratic in g, whose relative rounding error is ~ε
STALL_DECREMENT = 1e-12  # below this, a decrement that no longer falls 10× per step is rounding noise
SEPARABLE_RUN = 5  # full Newton steps with J shrinking linearly toward 0 before "no minimiser"
SEPARABLE_RATIO = (0.02, 0.9)  # J_k / J_{k-1} of a linear run (a quadratic one drops below 0.02)
SEPARABLE_MAX_J = 1e-2  # J ≤ this (mean log-loss: the training rows are nearly all fitted)
SEPARABLE_REASON = ("no minimiser: J = {J:.3g} falls toward 0 (Newton decrement ½gᵀH⁻¹g = {dec:.3g} ≥ J/4): "
                    "the classes are separable and W is not penalised enough to bound it (λ = 0), so the "
                    "coefficients grow without bound — this is not an optimum; set --l2 > 0 for one")


def _looks_separable(state) -> bool:
    """½gᵀH⁻¹g ≥ J/4: the decrement is of the size of J itself (see the module docstring)."""
    J = state.objective
    dec_abs = state.decrement * max(abs(J), 1.0)
    return bool(np.isfinite(dec_abs) and 0.0 < J and dec_abs >= 0.25 * J)


class NewtonState(NamedTuple):
    theta: np.ndarray  # of shape (P,)
    objective: float  # J(θ)
    grad: np.ndarray  # of shape (P,), ∇J(θ)
    hessian: np.ndarray  # of shape (P, P) at θ, or (0, 0) when stale (the next step makes a Hessian pass)
    direction: np.ndarray  # of shape (P,): the Newton direction at θ, or (0,) when stale
    decrement: float  # ½ gᵀH⁻¹g / max(|J|, 1) at θ; nan when unknown
    ridge: float  # the ridge τ used for ``direction``


def newton_direction(grad, hessian, null_space=None, ridge_rel=None):
    """Solve H d = −g on the complement of ``null_space`` by Cholesky.

    Parameters
    ----------
    grad : ndarray (P,)
    hessian : ndarray (P, P), symmetric positive semi-definite
    null_space : ndarray (P, k) with orthonormal columns, or None
    ridge_rel : τ / max(diag H), the initial relative ridge (default P·ε)

    Notes
    -----
    Returns (d of shape (P,), ½ gᵀ(−d) ≥ 0 the absolute decrement, τ). Falls back to d = −g/max(diag H)
    if even τ = max(diag H) fails (a non-finite H).
    """
    grad = np.asarray(grad, dtype=np.float64)
    P = grad.size
    diag = np.diag(hessian)
    scale = float(np.max(np.abs(diag), initial=0.0))
    if not np.isfinite(scale) or scale <= 0.0:
        scale = 1.0
    A = np.array(hessian, dtype=np.float64, order="F")
    N = None if null_space is None or np.size(null_space) == 0 else np.asarray(null_space)
    if N is not None:
        A += float(np.mean(np.abs(diag)) or scale) * (N @ N.T)
    tau = (max(P, 16) * EPS if ridge_rel is None else ridge_rel) * scale
    d = None
    while tau <= scale:
        try:
            factor = cho_factor(A + tau * np.eye(P), lower=True, overwrite_a=True, check_finite=True)
            d = -cho_solve(factor, grad, check_finite=False)
            if np.all(np.isfinite(d)):
                break
            d = None
        except (LinAlgError, ValueError):
            pass
        tau *= 100.0
    if d is None:
        d, tau = -grad / scale, scale
    if N is not None:
        d -= N @ (N.T @ d)
    decrement = max(0.0, -0.5 * float(grad @ d))
    return d, decrement, float(tau)


class Newton:
    """Exact-Hessian Newton with Armijo backtracking (see the module docstring).

    Parameters
    ----------
    tol : stop when ½ gᵀH⁻¹g / max(|J|, 1) ≤ tol (floored at ε²). Default 1e-16: on the demo (digits,
        λ = 1e-4) 1e-14 stops one iteration earlier with test-set probabilities 1.05e-6 from the
        optimum (training rows 3e-8); the extra iteration (one pass) lands at 4.6e-25, exact to rounding.
    gtol : stop when max |∇J| ≤ gtol (in θ); 0 disables
    c1 : Armijo's sufficient-decrease constant
    max_backtracks : trial step lengths per iteration before ``NoProgressError``
    """

    name = "newton"

    def __init__(self, tol: float = 1e-16, gtol: float = 0.0, c1: float = 1e-4, max_backtracks: int = 30):
        self.tol = float(tol)
        self.gtol = float(gtol)
        self.c1 = float(c1)
        self.max_backtracks = int(max_backtracks)
        self._unpenalised = False  # set by ``step``: the problem's smooth penalty is zero (``is_zero``)

    # -- helpers
    def _solved_state(self, problem, theta, objective, grad, hessian) -> NewtonState:
        d, dec, tau = newton_direction(grad, hessian, getattr(problem, "null_space", None))
        return NewtonState(np.asarray(theta, dtype=np.float64), float(objective), np.asarray(grad, dtype=np.float64),
                           hessian, d, dec / max(abs(objective), 1.0), tau)

    def _fresh(self, problem, theta, iteration: int = 0) -> NewtonState:
        objective, grad, hessian = problem.hessian(theta, iteration=iteration)
        return self._solved_state(problem, theta, objective, grad, hessian)

    # -- protocol
    def init(self, theta, problem) -> NewtonState:
        """One Hessian pass at θ₀ and the first Newton direction."""
        return self._fresh(problem, np.asarray(theta, dtype=np.float64))

    def step(self, problem, state: NewtonState, iteration: int):
        penalty = getattr(problem, "penalty", None)
        self._unpenalised = bool(penalty is not None and penalty.is_zero())
        if state.hessian.size == 0 or state.direction.size == 0:
            state = self._fresh(problem, state.theta, iteration)
        theta, f0, g0, d = state.theta, state.objective, state.grad, state.direction
        slope = float(g0 @ d)
        if not slope < 0.0:  # H not positive definite numerically: fall back to steepest descent
            d = -g0 / max(float(np.max(np.abs(np.diag(state.hessian)), initial=0.0)), 1e-300)
            slope = float(g0 @ d)
        # at J's noise floor a step that does not raise J beyond the noise is accepted; else Armijo
        noise = NOISE_REL * max(abs(f0), 1.0)
        allowance = noise if -0.5 * slope <= noise else 0.0
        extras = {"newton_decrement": state.decrement, "ridge": state.ridge}
        alpha = 1.0
        new_theta = theta + d
        f, g, h = problem.hessian(new_theta, iteration=iteration)
        if np.isfinite(f) and f <= f0 + self.c1 * slope + allowance:
            extras["step"] = alpha
            return self._solved_state(problem, new_theta, f, g, h), extras
        for _ in range(self.max_backtracks):
            alpha = self._shorter(alpha, f0, slope, f)
            new_theta = theta + alpha * d
            f, g = problem.value_and_grad(new_theta, iteration=iteration)
            if np.isfinite(f) and f < f0 + self.c1 * alpha * slope:
                extras["step"] = alpha
                empty = np.zeros((0, 0))
                return NewtonState(new_theta, float(f), np.asarray(g, dtype=np.float64), empty, np.zeros(0),
                                   float("nan"), state.ridge), extras
        raise NoProgressError(
            f"newton: no decrease of J = {f0:.17g} along the Newton direction after {self.max_backtracks} "
            f"backtracking steps (Newton decrement {state.decrement:.3g} relative)")

    @staticmethod
    def _linear_run(history) -> bool:
        """The last ``SEPARABLE_RUN`` records are full steps with J ≤ ``SEPARABLE_MAX_J`` shrinking by a
        factor in ``SEPARABLE_RATIO`` each time."""
        last = history[-(SEPARABLE_RUN + 1):]
        if len(last) < SEPARABLE_RUN + 1 or any(h.get("step") != 1.0 for h in last[1:]):
            return False
        J = [float(h.get("objective", np.nan)) for h in last]
        low, high = SEPARABLE_RATIO
        return J[-1] <= SEPARABLE_MAX_J and all(0 < b and low <= b / a <= high for a, b in zip(J, J[1:]))

    @staticmethod
    def _shorter(alpha, f0, slope, f):
        """Minimiser of the quadratic through J(0), J'(0) and J(α), kept in [0.1 α, 0.5 α]."""
        if not np.isfinite(f):
            return 0.1 * alpha
        curvature = f - f0 - slope * alpha
        trial = -slope * alpha * alpha / (2.0 * curvature) if curvature > 0 else 0.5 * alpha
        return float(min(max(trial, 0.1 * alpha), 0.5 * alpha))

    def stop_reason(self, state: NewtonState, history) -> str | None:
        limit = max(self.tol, DECREMENT_FLOOR)
        separable = _looks_separable(state)
        if separable and (state.decrement <= limit or (self._unpenalised and self._linear_run(history))):
            J = state.objective
            return SEPARABLE_REASON.format(J=J, dec=state.decrement * max(abs(J), 1.0))
        if np.isfinite(state.decrement) and state.decrement <= limit:
            return f"newton decrement ½gᵀH⁻¹g/max(|J|,1) = {state.decrement:.3g} ≤ {limit:.3g}"
        previous = history[-1].get("newton_decrement", np.nan) if history else np.nan
        if (np.isfinite(state.decrement) and state.decrement <= STALL_DECREMENT and np.isfinite(previous)
                and state.decrement >= 0.1 * previous):
            # quadratic convergence would have cut it by orders of magnitude: rounding noise of J's sums
            return (f"newton decrement ½gᵀH⁻¹g/max(|J|,1) = {state.decrement:.3g} stalls at the rounding floor "
                    f"of J's sums (was {previous:.3g}); the objective is within that of its minimum")
        gmax = float(np.max(np.abs(state.grad), initial=0.0))
        if gmax <= self.gtol:
            return f"gradient max|∇J| = {gmax:.3g} ≤ gtol {self.gtol:.3g}"
        return None
