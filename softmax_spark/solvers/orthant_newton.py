"""A second-order finish above the Newton bound: quasi-Newton first, then orthant-wise Newton-CG.

``--optimizer qn-newton-cg`` (and ``auto``'s choice above the Newton bound, P = C·D̃ > 4096, where
no dense Hessian fits). For J = F + R, F smooth (mean log-loss + L2, ``problem.Problem``) and
R(θ) = Σ γ_k |θ_k| + indicator(lo ≤ θ ≤ hi) (``penalty.ThetaTerm``; absent for plain L2):

**Phase 1 — quasi-Newton.** L-BFGS (``lbfgs.LBFGS``) for plain L2, OWL-QN (``owlqn.OWLQN``) with an
L1 part or bounds: cheap passes while far from the optimum, until the switch rule holds — the
quasi-Newton method's own stopping rule at ``switch_tol`` (relative decrease of J over 5
iterations), the KKT residual ≤ ``switch_kkt``, or (with L1 / bounds) the set of coordinates at
zero / on a bound unchanged for ``settle`` iterations with the KKT residual ≤ 1e-3.

**Phase 2 — orthant-wise Newton-CG** (the "orthant-based" Newton method of Byrd, Chin, Nocedal &
Oztoprak, "A family of second-order methods for convex ℓ1-regularized optimization", Math.
Program. 159, 2016, with the box handled as Bertsekas's projected Newton, "Projected Newton methods
for optimization problems with simple constraints", SIAM J. Control Optim. 20, 1982):

- ◇J the pseudo-gradient (``owlqn.pseudo_gradient``); the *fixed* coordinates are those at 0 with
  γ_k > 0, or on a bound, whose ◇J_k is 0 (the optimality condition holds there: they stay put);
  every other coordinate is *free*. In the orthant ξ (sign θ_k, or sign −◇J_k at 0) J is smooth on
  the free coordinates, with gradient ◇J and Hessian ∇²F;
- the Newton system ∇²F_FF d = −◇J_F is solved by Jacobi-preconditioned CG, every product one
  distributed Hessian-vector pass (``problem.hvp``; ``problem.hessian_diag`` for the
  preconditioner, one pass), to the relative residual η = min(0.5, √(r/r₀)) (r the KKT
  residual, r₀ the first one of the phase): the forcing term of superlinear convergence;
- a backtracking line search on J over θ(α) = clip(π_ξ(θ + α d)) (π_ξ zeroing the L1 coordinates
  that leave their orthant, the clip keeping the box), accepted when J(θ(α)) ≤ J(θ) +
  c₁ ◇Jᵀ(θ(α) − θ). Below J's rounding noise (a predicted decrease ≤ 1e-13·max(|J|, 1)) the
  full step is accepted when it lowers the KKT residual instead: the residual is computed from
  the gradient and stays meaningful there. If no step is found along d, one step along the
  Jacobi-scaled −◇J is tried; when that fails too the run stops (``SolverStop``) at the KKT
  residual it has.

With no L1 part or bounds this is a line-search Newton-CG (every coordinate free).

Stopping (``stop_reason``): the KKT residual in model coordinates (``penalty.kkt_residual``; for
plain L2 the largest |∂J| over the coefficients and intercepts) ≤ ``kkt_tol`` (default 1e-9),
recorded in every history record as ``kkt_residual``. Each record also has ``phase`` (1, 2) and,
in phase 2, ``cg_iterations`` (Hessian-vector passes of that iteration).

Cost: phase 1 one pass per evaluation; phase 2 per iteration one diagonal pass, the CG products
and the line search's gradient passes (usually one). The driver holds O(m·P) numbers (the
quasi-Newton pairs), never a P × P matrix.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from softmax_spark.core.errors import DivergenceError, NoProgressError
from softmax_spark.solvers.base import SolverStop
from softmax_spark.solvers.lbfgs import LBFGS, TOL_WINDOW, LbfgsSolverState
from softmax_spark.solvers.owlqn import OWLQN, OwlqnState, pseudo_gradient
from softmax_spark.core.penalty import L1Penalty

__all__ = ["OrthantNewtonCG", "OrthantNewtonState", "smooth_term", "pcg"]

C1 = 1e-4
NOISE_REL = 1e-13  # relative noise of a difference of two evaluations of J (sums over many rows)
SETTLE_KKT = 1e-3
FLAT_REL = 1e-10  # a coordinate whose ∇²F diagonal is ≤ this × the largest is flat (rounding only)  # the support-settled switch needs at least this KKT residual


class OrthantNewtonState(NamedTuple):
    theta: np.ndarray  # (P,)
    s: np.ndarray  # (k, P) quasi-Newton pairs (phase 1)
    y: np.ndarray  # (k, P)
    objective: float  # J = F + R at θ
    grad: np.ndarray  # ∇F at θ (P,)
    prev_objective: float  # J one iteration ago (L-BFGS's line search)
    kkt: float  # model-space KKT residual at θ
    n_steps: int  # accepted steps
    head: int  # ring head of the pairs
    phase: int  # 1 quasi-Newton, 2 orthant-wise Newton-CG
    settled: int  # phase 1: consecutive iterations with the same zero / bound pattern
    kkt0: float  # the KKT residual at the start of phase 2 (nan before)
    recent: np.ndarray  # phase 1: J of the last TOL_WINDOW + 1 iterations, oldest first
    last_step: float  # phase 2: max |Δθ| of the last accepted step (nan before)


def smooth_term(problem):
    """The ``penalty.ThetaTerm`` of the problem, or for a smooth problem a zero one (γ = 0, no box)
    so the KKT residual is the largest gradient component in model coordinates."""
    term = getattr(problem, "nonsmooth", None)
    if term is not None:
        return term
    cached = getattr(problem, "_zero_term", None)
    if cached is None:

        cached = L1Penalty(0.0).in_theta(problem.precond)
        problem._zero_term = cached
    return cached


def pcg(hvp, rhs, M, eta, max_iter):
    """Solve H x = rhs approximately by CG preconditioned with diag M > 0, from x = 0, until
    ‖r‖_{M⁻¹} ≤ eta·‖rhs‖_{M⁻¹} or ``max_iter`` products, stopping early at a direction of
    (rounding-)zero curvature (H may be singular along the softmax's shift directions).
    Returns (x, products). Every x it returns has rhsᵀx > 0 unless rhs = 0."""
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = r / M
    d = z.copy()
    rz = float(r @ z)
    target = eta * math.sqrt(max(rz, 0.0))
    products = 0
    while products < max_iter and math.sqrt(max(rz, 0.0)) > target:
        Hd = hvp(d)
        products += 1
        curvature = float(d @ Hd)
        if curvature <= 1e-14 * float(d @ (M * d)):
            break
        alpha = rz / curvature
        x += alpha * d
        r -= alpha * Hd
        z = r / M
        rz_next = float(r @ z)
        d = z + (rz_next / rz) * d
        rz = rz_next
    if not np.any(x):
        x = rhs / M
    return x, products


class OrthantNewtonCG:
    """Quasi-Newton then orthant-wise Newton-CG (see the module docstring).

    Parameters
    ----------
    kkt_tol : stop when the model-space KKT residual ≤ kkt_tol (default 1e-9)
    memory : quasi-Newton pairs (``--lbfgs-memory``)
    switch_tol : phase 1 → 2 when the quasi-Newton rule (relative decrease of J over 5 iterations)
        is ≤ switch_tol (default 1e-7)
    switch_kkt : phase 1 → 2 when the KKT residual ≤ switch_kkt (default 1e-5)
    settle : with L1 / bounds, phase 1 → 2 after this many iterations with the same zero / bound pattern
        (default 10) once the KKT residual ≤ 1e-3
    max_cg : Hessian-vector products per Newton iteration at most (default 250)
    step_tol : ... and the last Newton step moved no coordinate of θ by more than step_tol (default 1e-7)
    """
    name = "qn-newton-cg"
    state_type = OrthantNewtonState

    def __init__(self, kkt_tol: float = 1e-9, memory: int = 10, switch_tol: float = 1e-7, switch_kkt: float = 1e-5,
                 settle: int = 10, max_cg: int = 250, max_backtracks: int = 30, step_tol: float = 1e-7):
        self.kkt_tol, self.memory = float(kkt_tol), int(memory)
        self.switch_tol, self.switch_kkt, self.settle = float(switch_tol), float(switch_kkt), int(settle)
        self.max_cg, self.max_backtracks = int(max_cg), int(max_backtracks)
        self.step_tol = float(step_tol)

    # -- phase 1 --------------------------------------------------------------------------------
    def init(self, theta, problem) -> OrthantNewtonState:
        term = smooth_term(problem)
        theta = term.project(np.asarray(theta, dtype=np.float64))
        f, g = problem.value_and_grad(theta)
        if not np.isfinite(f):
            raise DivergenceError(f"the objective became {f} at iteration 0; check the input scale")
        g = np.asarray(g, dtype=np.float64)
        n = theta.size
        return OrthantNewtonState(theta, np.zeros((0, n)), np.zeros((0, n)), float(f + term.value(theta)), g,
                                  float("nan"), term.model_kkt(theta, g), 0, 0, 1, 0, float("nan"),
                                  np.array([float(f + term.value(theta))]), float("nan"))

    def _phase1(self, problem, state, iteration):
        term = smooth_term(problem)
        if getattr(problem, "nonsmooth", None) is None:
            inner = LbfgsSolverState(state.theta, state.s, state.y, state.objective, state.grad,
                                     state.prev_objective, state.n_steps, state.head)
            new, info = LBFGS(self.memory, tol=0.0, gtol=0.0).step(problem, inner, iteration)
            kkt = term.model_kkt(new.theta, new.grad)
            return state._replace(theta=new.theta, s=new.s, y=new.y, objective=new.objective, grad=new.grad,
                                  prev_objective=new.prev_objective, kkt=kkt, n_steps=new.n_steps,
                                  head=new.head, settled=0), dict(info, kkt_residual=kkt)
        inner = OwlqnState(state.theta, state.s, state.y, state.objective, state.grad, state.kkt, state.n_steps,
                           state.head)
        new, info = OWLQN(self.memory, kkt_tol=0.0, tol=0.0).step(problem, inner, iteration)
        same = np.array_equal(self._pattern(state.theta, term), self._pattern(new.theta, term))
        return state._replace(theta=new.theta, s=new.s, y=new.y, objective=new.objective, grad=new.grad,
                              kkt=new.kkt, n_steps=new.n_steps, head=new.head,
                              settled=state.settled + 1 if same else 0), info

    @staticmethod
    def _pattern(theta, term):
        return np.sign(theta) + 2.0 * (theta <= term.lo) - 2.0 * (theta >= term.hi)

    def _switch(self, state) -> str | None:
        if np.isfinite(state.kkt) and state.kkt <= self.switch_kkt:
            return f"KKT residual {state.kkt:.3g} ≤ {self.switch_kkt:.3g}"
        if state.settled >= self.settle and state.kkt <= SETTLE_KKT:
            return f"zero / bound pattern unchanged for {state.settled} iterations"
        if state.recent.size > TOL_WINDOW:
            past = float(state.recent[0])
            rel = (past - state.objective) / max(abs(past), abs(state.objective), 1.0)
            if rel <= self.switch_tol:
                return f"relative decrease over {TOL_WINDOW} iterations {rel:.3e} ≤ {self.switch_tol:.3g}"
        return None

    # -- phase 2 --------------------------------------------------------------------------------
    def _newton(self, problem, state, iteration):
        term = smooth_term(problem)
        theta, g, J0 = state.theta, state.grad, state.objective
        pg = pseudo_gradient(theta, g, term)
        gamma = term.gamma
        fixed = (((theta == 0) & (gamma > 0)) | (theta <= term.lo) | (theta >= term.hi)) & (pg == 0)
        if not np.any(pg):
            raise SolverStop(f"pseudo-gradient is zero (KKT residual {state.kkt:.3g})")
        kkt0 = state.kkt0 if np.isfinite(state.kkt0) else state.kkt
        diag = np.abs(np.asarray(problem.hessian_diag(theta, iteration=iteration), dtype=np.float64))
        # a flat coordinate (a column constant in the data and unpenalised: its centred values are rounding
        # noise) is left where it is; CG over it would only amplify that noise
        flat = diag <= FLAT_REL * float(diag.max(initial=0.0))
        fixed = fixed | flat
        free = np.flatnonzero(~fixed)
        if free.size == 0:
            raise SolverStop(f"no free coordinate with curvature (KKT residual {state.kkt:.3g})")
        diag = np.maximum(diag, 1e-12 * max(float(diag.max(initial=0.0)), 1e-300))
        M = diag[free]
        eta = min(0.5, math.sqrt(max(state.kkt, 0.0) / kkt0)) if kkt0 > 0 else 0.5
        full = np.zeros_like(theta)

        def hvp(v):
            full[:] = 0.0
            full[free] = v
            return np.asarray(problem.hvp(theta, full, iteration=iteration))[free]

        dF, products = pcg(hvp, -pg[free], M, eta, self.max_cg)
        d = np.zeros_like(theta)
        d[free] = dF
        xi = np.where(theta != 0, np.sign(theta), -np.sign(pg))
        l1 = gamma > 0
        scale = max(abs(J0), 1.0)
        extras = {"phase": 2, "cg_iterations": products, "free": int(free.size)}
        for direction, kind in ((d, "newton"), (np.where(fixed, 0.0, -pg / diag), "scaled gradient")):
            alpha = 1.0
            for attempt in range(self.max_backtracks):
                trial = theta + alpha * direction
                trial = np.where(l1 & (np.sign(trial) != xi), 0.0, trial)
                trial = term.project(trial)
                predicted = float(pg @ (trial - theta))
                if predicted >= 0:  # not a descent step (the projection undid it)
                    alpha *= 0.5
                    continue
                f, gt = problem.value_and_grad(trial, iteration=iteration)
                J = f + term.value(trial)
                if not np.isfinite(J):
                    alpha *= 0.5
                    continue
                gt = np.asarray(gt, dtype=np.float64)
                ok = J <= J0 + C1 * predicted
                kkt = None
                if not ok and attempt == 0 and -predicted <= NOISE_REL * scale:
                    kkt = term.model_kkt(trial, gt)  # below J's noise: judge by the certificate
                    ok = kkt < state.kkt and J <= J0 + NOISE_REL * scale
                if ok:
                    kkt = term.model_kkt(trial, gt) if kkt is None else kkt
                    moved = float(np.max(np.abs(trial - theta)))
                    new = state._replace(theta=trial, objective=float(J), grad=gt, kkt=kkt,
                                         n_steps=state.n_steps + 1, phase=2, kkt0=kkt0, prev_objective=J0,
                                         last_step=moved if kind == "newton" else float("nan"))
                    extras.update(objective=float(J), step=alpha, kkt_residual=kkt, nonzeros=term.nonzeros(trial),
                                  direction=kind, step_size=moved)
                    return new, extras
                alpha *= 0.5
        if state.n_steps == 0:
            raise NoProgressError(f"qn-newton-cg could not take a first step from J = {J0:.10g}")
        raise SolverStop(f"no further decrease of J along the Newton or the scaled gradient direction "
                         f"(KKT residual {state.kkt:.3g}; J is computed to limited precision)")

    def step(self, problem, state: OrthantNewtonState, iteration: int):
        if state.phase == 1:
            try:
                new, info = self._phase1(problem, state, iteration)
            except SolverStop:  # the quasi-Newton line search is exhausted: Newton takes over
                new, info = self._newton(problem, state._replace(phase=2), iteration)
                return new, info
            info = dict(info, phase=1)
            new = new._replace(recent=np.append(state.recent, new.objective)[-(TOL_WINDOW + 1):])
            why = self._switch(new)
            if why is not None:
                new = new._replace(phase=2)
                info["switch"] = why
            return new, info
        return self._newton(problem, state, iteration)

    def stop_reason(self, state: OrthantNewtonState, history) -> str | None:
        if state.phase == 2 and np.isfinite(state.kkt) and state.kkt <= self.kkt_tol and state.last_step <= self.step_tol:
            return (f"KKT residual {state.kkt:.3g} ≤ {self.kkt_tol:.3g} and the last Newton step "
                    f"max|Δθ| = {state.last_step:.3g} ≤ {self.step_tol:.3g}")
        return None
