"""L-BFGS with explicit, checkpointable state (driver side).

The search direction comes from the two-loop recursion over the last m pairs
s_k = θ_{k+1} − θ_k, y_k = ∇J(θ_{k+1}) − ∇J(θ_k); the step length from scipy's strong-Wolfe line
search (``scipy.optimize.line_search``, MINPACK's dcsrch). Every evaluation of J is one
distributed pass. Keeping the pairs in a NamedTuple (rather than inside scipy's minimiser) lets a
checkpoint hold them, so a resumed run takes exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from scipy.optimize import line_search

__all__ = ["LbfgsState", "lbfgs_init", "lbfgs_step", "two_loop_direction"]


class LbfgsState(NamedTuple):
    s: np.ndarray  # of shape (k, n), k ≤ memory, oldest first
    y: np.ndarray  # of shape (k, n)
    objective: float  # J at the current θ
    grad: np.ndarray  # of shape (n,), ∇J at the current θ
    prev_objective: float  # J one iteration ago (nan at the start)


def lbfgs_init(objective: float, grad: np.ndarray) -> LbfgsState:
    n = grad.shape[0]
    return LbfgsState(np.zeros((0, n)), np.zeros((0, n)), float(objective), np.asarray(grad, float), float("nan"))


def two_loop_direction(grad, s, y) -> np.ndarray:
    """−H ∇J with H the L-BFGS inverse-Hessian approximation (H₀ = γI, γ = sᵀy / yᵀy)."""
    q = np.array(grad, dtype=np.float64, copy=True)
    k = s.shape[0]
    if k == 0:
        return -q
    rho = 1.0 / np.einsum("ij,ij->i", y, s)
    alpha = np.empty(k)
    for i in range(k - 1, -1, -1):
        alpha[i] = rho[i] * (s[i] @ q)
        q -= alpha[i] * y[i]
    q *= (s[-1] @ y[-1]) / (y[-1] @ y[-1])
    for i in range(k):
        beta = rho[i] * (y[i] @ q)
        q += (alpha[i] - beta) * s[i]
    return -q


def lbfgs_step(fun: Callable, theta: np.ndarray, state: LbfgsState, memory: int = 10):
    """One L-BFGS iteration. ``fun(θ) -> (J, ∇J)`` (cached by the caller is fine).

    Returns (new θ, new state, step length); step length 0.0 means no progress was possible
    (the line search failed even along −∇J): the caller should stop.
    """
    cache: dict[bytes, tuple] = {}

    def evaluate(x):
        key = x.tobytes()
        if key not in cache:
            cache[key] = fun(x)
        return cache[key]

    f = lambda x: evaluate(x)[0]  # noqa: E731
    g = lambda x: evaluate(x)[1]  # noqa: E731
    cache[theta.tobytes()] = (state.objective, state.grad)
    s, y = state.s, state.y
    direction = two_loop_direction(state.grad, s, y)
    if direction @ state.grad >= 0:  # not a descent direction: forget the curvature pairs
        s, y = s[:0], y[:0]
        direction = -state.grad
    prev = None if np.isnan(state.prev_objective) else state.prev_objective
    first = s.shape[0] == 0
    for attempt in range(2):
        scale = 1.0
        if first:
            # the first step has no curvature information: aim for a unit-norm move
            scale = 1.0 / max(1.0, float(np.linalg.norm(direction)))
        alpha, *_ = line_search(f, g, theta, direction * scale, state.grad, state.objective, prev,
                                c1=1e-4, c2=0.9, maxiter=30)
        if alpha is not None and alpha > 0:
            break
        # retry once along steepest descent with a fresh memory
        s, y = s[:0], y[:0]
        direction, first, prev = -state.grad, True, None
    else:
        return theta, state, 0.0
    step = alpha * scale * direction
    new_theta = theta + step
    new_objective, new_grad = evaluate(new_theta)
    dy = new_grad - state.grad
    if step @ dy > 1e-12 * max(1.0, float(np.linalg.norm(step) * np.linalg.norm(dy))):
        s = np.vstack([s, step])[-memory:]
        y = np.vstack([y, dy])[-memory:]
    new_state = LbfgsState(s, y, float(new_objective), np.asarray(new_grad, float), state.objective)
    return new_theta, new_state, float(alpha * scale)
