"""Proximal Newton for the non-smooth objectives (L1 / elastic net, bounds): ``--optimizer prox-newton``.

    J(θ) = F(θ) + R(θ),   F = mean log-loss + L2 (smooth, ``problem.Problem``),
    R(θ) = Σ_k γ_k |θ_k| + indicator(lo ≤ θ ≤ hi)         (``penalty.ThetaTerm``, separable)

Per iteration (Lee, Sun & Saunders, "Proximal Newton-type methods for minimizing composite
functions", SIAM J. Optim. 24, 2014; the L1 case is newGLMNET, Yuan, Ho & Lin, "An improved GLMNET
for L1-regularized logistic regression", JMLR 13, 2012):

1. F, ∇F and ∇²F at θ from one distributed pass (``problem.hessian``, as ``newton``); on many rows
   ∇²F is the mean over every k-th row and may be kept for later steps (``hessian_stride``,
   ``reuse_ratio``, planned by ``auto.hessian_plan``) — F and ∇F always cover every row;
2. on the driver, the quadratic model  q(z) = ∇Fᵀ(z−θ) + ½(z−θ)ᵀ∇²F(z−θ) + R(z)  is minimised by
   cyclic coordinate descent (each coordinate's minimiser is a soft-threshold then a clip, exact),
   alternated with a Newton solve on the coordinates that are off zero and off their bounds (with
   the signs fixed q is a smooth quadratic there; the step is cut at the first sign change or
   bound, so q never rises). CD finds which coordinates are zero / at a bound, the solve gives the
   others exactly, so the subproblem is solved to its own KKT residual ≤ η·min(1, r)·r (r the
   outer residual in θ, η = 0.1): the inexact-Newton condition of superlinear convergence;
3. line search on the true J along d = z − θ: α = 1 (the trial point's pass is a Hessian pass, or a
   gradient pass while the Hessian is reused, so an accepted full step costs one pass per
   iteration), else backtracking until
   J(θ + αd) ≤ J(θ) + c₁ α Δ,  Δ = ∇Fᵀd + R(z) − R(θ) < 0 (θ + αd stays inside the box);
4. after each accepted step and each coordinate-descent sweep, the exact class-shift step
   (``core.class_shift``) along the directions where only the penalty moves J.

Stopping (``stop_reason``): the KKT residual in model coordinates (``penalty.kkt_residual``: the
largest distance of −∇F to the subdifferential of R / normal cone of the bounds, over every
coefficient and intercept) ≤ ``kkt_tol``; it is recorded in every history record
(``kkt_residual``) and in the model's metadata, an optimality certificate computed from the
gradient, not from differences of J. Also stops when the model's predicted decrease −Δ/max(|J|,1)
≤ ``tol`` (default ε²), or when it is ≤ 1e-12 and no longer falls tenfold per iteration (J's rounding
floor, as ``newton``'s stall rule): then the reason gives the KKT residual reached.

Driver cost per iteration: one CD sweep is O(P²) (a column of ∇²F per changed coordinate), a
Newton solve O(|free|³); P ≤ 4096 (the Newton bound of ``auto``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from softmax_spark.core.class_shift import ShiftStep
from softmax_spark.core.errors import NoProgressError
from softmax_spark.solvers.auto import hessian_plan
from softmax_spark.solvers.newton import EPS, NOISE_REL, STALL_DECREMENT, newton_direction

__all__ = ["ProxNewton", "ProxNewtonState", "solve_quadratic_model"]

C1 = 1e-4
INNER_ETA = 0.1


class ProxNewtonState(NamedTuple):
    theta: np.ndarray  # (P,)
    objective: float  # J = F + R at θ
    smooth: float  # F at θ
    grad: np.ndarray  # (P,) ∇F at θ
    hessian: np.ndarray  # (P, P) ∇²F at θ, or (0, 0) when stale
    kkt: float  # model-space KKT residual at θ (nan when unknown)
    decrement: float  # −Δ / max(|J|, 1) of the last subproblem (nan before the first)


def _cd_sweep(H, diag, r, z, gamma, lo, hi, order):
    """One cyclic pass of exact coordinate minimisation of q over ``order`` (in place on z, r)."""
    for k in order:
        a = diag[k]
        zk = z[k]
        v = zk - r[k] / a
        t = gamma[k] / a
        new = v - t if v > t else (v + t if v < -t else 0.0)
        if new < lo[k]:
            new = lo[k]
        elif new > hi[k]:
            new = hi[k]
        delta = new - zk
        if delta != 0.0:
            z[k] = new
            r += delta * H[k]


def _polish(H, r, z, gamma, lo, hi, null_space):
    """Newton step of q on the coordinates off zero (or unpenalised) and strictly inside the box,
    cut at the first sign change or bound; in place on z, r. Returns whether z moved."""
    free = ((z != 0.0) | (gamma == 0.0)) & (z > lo) & (z < hi)
    F = np.flatnonzero(free)
    if F.size == 0:
        return False
    rhs = r[F] + gamma[F] * np.sign(z[F])
    N = None
    if null_space is not None and null_space.shape[1]:
        inside = np.zeros(z.size, dtype=bool)
        inside[F] = True
        keep = [c for c in range(null_space.shape[1])
                if np.all(inside[np.flatnonzero(null_space[:, c])])
                and not np.any(gamma[np.flatnonzero(null_space[:, c])])]  # L1 makes a shift not flat
        if keep:
            N = null_space[np.ix_(F, keep)]
            N = N / np.linalg.norm(N, axis=0)
    d, _, _ = newton_direction(rhs, H[np.ix_(F, F)], N)
    zF = z[F]
    step = 1.0
    g = gamma[F]
    cross = (g > 0) & (zF * (zF + d) < 0)
    if np.any(cross):
        step = min(step, float(np.min(-zF[cross] / d[cross])))
    below, above = zF + d < lo[F], zF + d > hi[F]
    if np.any(below):
        step = min(step, float(np.min((lo[F][below] - zF[below]) / d[below])))
    if np.any(above):
        step = min(step, float(np.min((hi[F][above] - zF[above]) / d[above])))
    if step <= 0.0:
        return False
    move = step * d
    new = zF + move
    # land exactly on the zero / bound that cut the step
    new[cross & (np.abs(new) <= 1e-12 * np.maximum(np.abs(zF), 1e-300))] = 0.0
    new = np.clip(new, lo[F], hi[F])
    move = new - zF
    z[F] = new
    r += H[:, F] @ move
    return True


def solve_quadratic_model(grad, hessian, theta, term, tol, max_rounds: int = 200, null_space=None, shift=None):
    """argmin_z ∇Fᵀ(z−θ) + ½(z−θ)ᵀH(z−θ) + R(z) to the subproblem's KKT residual ≤ ``tol`` (θ-space).

    Returns (z, Δ = q(z) − q(θ) ≤ 0, rounds used). ``term`` is a ``penalty.ThetaTerm``; ``shift`` a
    ``class_shift.ShiftStep`` taken after each sweep (q along a class shift is the penalty's own)."""
    P = theta.size
    H = np.ascontiguousarray(hessian)
    diag_raw = np.diag(H).copy()
    scale = float(np.max(np.abs(diag_raw), initial=0.0)) or 1.0
    tau = max(P, 16) * EPS * scale
    diag = (diag_raw + tau).tolist()
    gamma, lo, hi = term.gamma, term.lo, term.hi
    z = term.project(np.array(theta, dtype=np.float64))
    r = np.asarray(grad, dtype=np.float64) + H @ (z - theta)
    order = range(P)
    glist, lolist, hilist = gamma.tolist(), lo.tolist(), hi.tolist()
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        _cd_sweep(H, diag, r, z, glist, lolist, hilist, order)
        if shift is not None:
            z[:] = shift.apply(z, extra=r)[0]
        _polish(H, r, z, gamma, lo, hi, null_space)
        if float(np.max(term.residual(z, r), initial=0.0)) <= tol:
            break
    d = z - theta
    hd = r - grad
    delta = float(grad @ d + 0.5 * (d @ hd)) + term.value(z) - term.value(theta)
    return z, min(delta, 0.0), rounds


class ProxNewton:
    """Proximal Newton with the exact Hessian (see the module docstring).

    Parameters
    ----------
    kkt_tol : stop when the model-space KKT residual ≤ kkt_tol (default 1e-10)
    tol : also stop when the predicted decrease −Δ / max(|J|, 1) ≤ tol (default ε²: J's rounding floor)
    max_backtracks : trial step lengths per iteration before ``NoProgressError``
    hessian_stride : k ≥ 1 — the quadratic model's Hessian from every k-th row of each block
        (``curvature.HessianKernel``); J, ∇F and the KKT residual stay exact, so the optimum is
        the same and only the rate changes (linear with a small constant instead of quadratic).
        None (default): ``auto.hessian_plan`` from the problem's ``n_rows`` (1 when unknown)
    reuse_ratio : keep the last Hessian for the next step while a full step cuts the KKT residual
        to ≤ this fraction (the trial point then costs a gradient pass, not a Hessian pass); 0: a new
        Hessian at every iterate. None (default): ``auto.hessian_plan``'s
    """

    name = "prox-newton"

    def __init__(self, kkt_tol: float = 1e-10, tol: float = EPS * EPS, max_backtracks: int = 30,
                 max_rounds: int = 200, hessian_stride: int | None = None, reuse_ratio: float | None = None):
        self.kkt_tol = float(kkt_tol)
        self.tol = float(tol)
        self.max_backtracks = int(max_backtracks)
        self.max_rounds = int(max_rounds)
        self.hessian_stride = None if hessian_stride is None else max(1, int(hessian_stride))
        self.reuse_ratio = None if reuse_ratio is None else float(reuse_ratio)

    def plan(self, problem) -> tuple[int, float]:
        """(stride, reuse_ratio) on ``problem``: the explicit settings, else ``auto.hessian_plan`` from
        the problem's shape (``n_rows``, ``density``; exact and never reused when the rows are unknown)."""
        stride, reuse = self.hessian_stride, self.reuse_ratio
        if stride is None or reuse is None:
            n_rows = getattr(problem, "n_rows", None)
            if n_rows:
                pre = problem.precond
                auto = hessian_plan(int(n_rows), pre.n_classes, pre.n_features, pre.fit_intercept,
                                    getattr(problem, "density", 1.0))
                stride = auto.stride if stride is None else stride
                reuse = auto.reuse_ratio if reuse is None else reuse
        return (1 if stride is None else stride), (0.0 if reuse is None else reuse)

    @staticmethod
    def _shifted(shift, theta, f, g):
        """(θ, F, ∇F) after the exact class-shift step (``class_shift``), which lowers only the L2 part."""
        if shift is None:
            return theta, f, g
        theta, d_value, d_grad, _ = shift.apply(theta)
        return (theta, f, g) if d_grad is None else (theta, f + d_value, g + d_grad)

    def _hessian(self, problem, theta, iteration: int = 0):
        return problem.hessian(theta, iteration=iteration, stride=self.plan(problem)[0])

    @staticmethod
    def _term(problem):
        term = getattr(problem, "nonsmooth", None)
        if term is None:
            raise ValueError("prox-newton needs a problem with a non-smooth part (problem.nonsmooth)")
        return term

    def _state(self, problem, theta, smooth, grad, hessian, decrement=float("nan")) -> ProxNewtonState:
        term = self._term(problem)
        grad = np.asarray(grad, dtype=np.float64)
        return ProxNewtonState(np.asarray(theta, dtype=np.float64), float(smooth + term.value(theta)), float(smooth),
                               grad, hessian, term.model_kkt(theta, grad), float(decrement))

    def init(self, theta, problem) -> ProxNewtonState:
        theta = self._term(problem).project(np.asarray(theta, dtype=np.float64))
        f, g, h = self._hessian(problem, theta)
        return self._state(problem, theta, f, g, h)

    def step(self, problem, state: ProxNewtonState, iteration: int):
        term = self._term(problem)
        if state.hessian.size == 0:
            f, g, h = self._hessian(problem, state.theta, iteration)
            state = self._state(problem, state.theta, f, g, h, state.decrement)
        theta, J0, g0 = state.theta, state.objective, state.grad
        r_theta = float(np.max(term.residual(theta, g0), initial=0.0))
        inner_tol = max(INNER_ETA * r_theta * min(1.0, r_theta), 1e-15 * max(1.0, float(np.max(np.abs(g0)))))
        shift = ShiftStep.of(problem, term)
        z, delta, rounds = solve_quadratic_model(g0, state.hessian, theta, term, inner_tol, self.max_rounds,
                                                 getattr(problem, "null_space", None), shift)
        d = z - theta
        decrement = -delta / max(abs(J0), 1.0)
        noise = NOISE_REL * max(abs(J0), 1.0)
        allowance = noise if -delta <= noise else 0.0
        extras = {"kkt_residual": state.kkt, "decrement": decrement, "cd_rounds": rounds,
                  "nonzeros": term.nonzeros(z)}
        reuse = self.plan(problem)[1]
        if reuse > 0:  # the trial point's pass is a gradient pass; its Hessian is the one just used
            f, g = problem.value_and_grad(z, iteration=iteration)
            h = state.hessian
        else:
            f, g, h = self._hessian(problem, z, iteration)
        J = f + term.value(z)
        if np.isfinite(J) and J <= J0 + C1 * delta + allowance:
            new = self._state(problem, *self._shifted(shift, z, f, g), h, decrement)
            if reuse > 0 and not new.kkt <= reuse * state.kkt:
                new = new._replace(hessian=np.zeros((0, 0)))  # slow progress: a new Hessian next step
            extras.update(step=1.0, objective=new.objective, kkt_residual=new.kkt)
            return new, extras
        alpha = 1.0
        for _ in range(self.max_backtracks):
            alpha *= 0.5
            trial = term.project(theta + alpha * d)
            f, g = problem.value_and_grad(trial, iteration=iteration)
            J = f + term.value(trial)
            if np.isfinite(J) and J < J0 + C1 * alpha * delta:
                new = self._state(problem, *self._shifted(shift, trial, f, g), np.zeros((0, 0)), decrement)
                extras.update(step=alpha, objective=new.objective, kkt_residual=new.kkt)
                return new, extras
        raise NoProgressError(f"prox-newton: no decrease of J = {J0:.17g} along the proximal Newton direction after "
                              f"{self.max_backtracks} backtracking steps (KKT residual {state.kkt:.3g})")

    def stop_reason(self, state: ProxNewtonState, history) -> str | None:
        if np.isfinite(state.kkt) and state.kkt <= self.kkt_tol:
            return f"KKT residual {state.kkt:.3g} ≤ {self.kkt_tol:.3g}"
        if np.isfinite(state.decrement) and state.decrement <= max(self.tol, EPS * EPS):
            return (f"predicted decrease {state.decrement:.3g} ≤ {max(self.tol, EPS * EPS):.3g} "
                    f"(KKT residual {state.kkt:.3g})")
        previous = history[-2].get("decrement", np.nan) if len(history) >= 2 else np.nan
        previous_kkt = history[-2].get("kkt_residual", np.nan) if len(history) >= 2 else np.nan
        if (np.isfinite(state.decrement) and state.decrement <= STALL_DECREMENT and np.isfinite(previous)
                and state.decrement >= 0.1 * previous and not state.kkt < 0.5 * previous_kkt):
            # quadratic convergence would have cut it by orders of magnitude, and the KKT residual (from
            # the gradient, free of J's rounding) no longer falls either: J's rounding noise. (A sub-sampled
            # or reused Hessian converges linearly: its decrement falls slower, its KKT residual still does)
            return (f"predicted decrease {state.decrement:.3g} stalls at the rounding floor of J's sums "
                    f"(was {previous:.3g}); KKT residual {state.kkt:.3g}")
        return None
