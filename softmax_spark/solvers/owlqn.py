"""OWL-QN for L1 / elastic net (and bounds) when the exact Hessian does not fit: ``--optimizer owlqn``.

Orthant-Wise Limited-memory Quasi-Newton (Andrew & Gao, "Scalable training of L1-regularized
log-linear models", ICML 2007) — the method MLlib uses for elasticNetParam > 0 (Breeze's OWLQN).
Over J = F + R with R(θ) = Σ γ_k |θ_k| (+ the box lo ≤ θ ≤ hi, ``penalty.ThetaTerm``), per iteration:

- the pseudo-gradient ◇J: ∇F_k + γ_k sign θ_k off zero; at θ_k = 0 the one-sided derivative that
  is negative (else 0); 0 where a bound blocks the descent direction;
- the L-BFGS direction d = −H ◇J from the pairs (s, ∇F differences) of the smooth part
  (``lbfgs.two_loop_direction``), with the components whose sign disagrees with −◇J zeroed;
- a backtracking line search on J over θ(α) = clip(π(θ + α d)), π setting to 0 the components
  that leave the orthant ξ (sign θ_k, or sign −◇J_k at zero), the clip keeping the box;
  accepted when J(θ(α)) ≤ J(θ) + c₁ ◇Jᵀ(θ(α) − θ).

Every evaluation is one distributed gradient pass (dense or CSR blocks alike). With bounds but no
L1 this is projected L-BFGS with the same safeguards (a heuristic; the exact bounded solver is
``prox-newton`` within the Newton bound).

Stopping (``stop_reason``): the KKT residual in model coordinates ≤ ``kkt_tol`` (recorded in each
history record as ``kkt_residual``), or a relative decrease of J over the last 5 iterations ≤ ``tol``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from softmax_spark.core.errors import DivergenceError, NoProgressError
from softmax_spark.solvers.base import SolverStop
from softmax_spark.solvers.lbfgs import TOL_WINDOW, _ring_push, two_loop_direction

__all__ = ["OWLQN", "OwlqnState", "pseudo_gradient"]


def pseudo_gradient(theta, grad, term) -> np.ndarray:
    """◇J of shape (P,) (see the module docstring)."""
    gamma = term.gamma
    right = grad + gamma  # derivative of J moving θ_k up (at θ_k = 0)
    left = grad - gamma  # moving down
    pg = np.where(theta > 0, right, np.where(theta < 0, left, np.where(right < 0, right, np.where(left > 0, left, 0.0))))
    pg = np.where((theta <= term.lo) & (pg > 0), 0.0, pg)
    pg = np.where((theta >= term.hi) & (pg < 0), 0.0, pg)
    return pg


class OwlqnState(NamedTuple):
    theta: np.ndarray  # (P,)
    s: np.ndarray  # (k, P) ring of steps
    y: np.ndarray  # (k, P) ring of ∇F differences
    objective: float  # J = F + R
    grad: np.ndarray  # ∇F at θ
    kkt: float  # model-space KKT residual at θ
    n_steps: int
    head: int = 0


class OWLQN:
    """OWL-QN (see the module docstring).

    Parameters
    ----------
    memory : L-BFGS pairs kept (``--lbfgs-memory``)
    kkt_tol : stop when the model-space KKT residual ≤ kkt_tol (default 1e-9)
    tol : stop when (J_{k−5} − J_k) / max(|J|, 1) ≤ tol (default 1e-14)
    """

    name = "owlqn"

    def __init__(self, memory: int = 10, kkt_tol: float = 1e-9, tol: float = 1e-14, c1: float = 1e-4,
                 max_backtracks: int = 40):
        self.memory, self.kkt_tol, self.tol = int(memory), float(kkt_tol), float(tol)
        self.c1, self.max_backtracks = float(c1), int(max_backtracks)

    @staticmethod
    def _term(problem):
        term = getattr(problem, "nonsmooth", None)
        if term is None:
            raise ValueError("owlqn needs a problem with a non-smooth part (problem.nonsmooth)")
        return term

    def init(self, theta, problem) -> OwlqnState:
        term = self._term(problem)
        theta = term.project(np.asarray(theta, dtype=np.float64))
        f, g = problem.value_and_grad(theta)
        if not np.isfinite(f):
            raise DivergenceError(f"the objective became {f} at iteration 0; check the input scale")
        n = theta.size
        return OwlqnState(theta, np.zeros((0, n)), np.zeros((0, n)), float(f + term.value(theta)),
                          np.asarray(g, dtype=np.float64), term.model_kkt(theta, g), 0)

    def step(self, problem, state: OwlqnState, iteration: int):
        term = self._term(problem)
        theta, J0 = state.theta, state.objective
        pg = pseudo_gradient(theta, state.grad, term)
        if not np.any(pg):
            raise SolverStop(f"pseudo-gradient is zero (KKT residual {state.kkt:.3g})")
        s, y, head = state.s, state.y, state.head
        d = two_loop_direction(pg, s, y, head)
        d = np.where(d * pg < 0, d, 0.0)  # keep the components that descend along −◇J
        if not np.any(d):
            s, y, head = s[:0], y[:0], 0
            d = -pg
        xi = np.where(theta != 0, np.sign(theta), -np.sign(pg))
        alpha = 1.0 / max(1.0, float(np.linalg.norm(d))) if s.shape[0] == 0 else 1.0
        for _ in range(self.max_backtracks):
            trial = theta + alpha * d
            trial = np.where(np.sign(trial) == xi, trial, 0.0)
            trial = term.project(trial)
            f, g = problem.value_and_grad(trial, iteration=iteration)
            J = f + term.value(trial)
            if np.isfinite(J) and J <= J0 + self.c1 * float(pg @ (trial - theta)):
                break
            alpha *= 0.5
        else:
            if state.n_steps == 0:
                raise NoProgressError(f"owlqn could not take a first step from J = {J0:.10g}")
            raise SolverStop(f"line search found no further decrease after {state.n_steps} steps "
                             f"(KKT residual {state.kkt:.3g})")
        g = np.asarray(g, dtype=np.float64)
        step_vec, dy = trial - theta, g - state.grad
        if step_vec @ dy > 1e-12 * max(1.0, float(np.linalg.norm(step_vec) * np.linalg.norm(dy))):
            s, y, head = _ring_push(s, y, head, step_vec, dy, self.memory)
        kkt = term.model_kkt(trial, g)
        new = OwlqnState(trial, s, y, float(J), g, kkt, state.n_steps + 1, head)
        nnz = term.nonzeros(trial)
        return new, {"objective": float(J), "step": alpha, "kkt_residual": kkt, "nonzeros": nnz}

    def stop_reason(self, state: OwlqnState, history) -> str | None:
        if np.isfinite(state.kkt) and state.kkt <= self.kkt_tol:
            return f"KKT residual {state.kkt:.3g} ≤ {self.kkt_tol:.3g}"
        if len(history) > TOL_WINDOW:
            past = history[-TOL_WINDOW - 1]["objective"]
            rel = (past - state.objective) / max(abs(past), abs(state.objective), 1.0)
            if rel <= self.tol:
                return (f"relative decrease over {TOL_WINDOW} iterations {rel:.3e} ≤ tol ({self.tol}); "
                        f"KKT residual {state.kkt:.3g}")
        return None
