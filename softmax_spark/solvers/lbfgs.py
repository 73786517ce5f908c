"""L-BFGS with explicit, checkpointable state (driver side): ``LBFGS``, a ``base.Solver``.

The search direction comes from the two-loop recursion over the last m pairs
s_k = θ_{k+1} − θ_k, y_k = ∇J(θ_{k+1}) − ∇J(θ_k) (Nocedal & Wright, Numerical Optimization,
2nd ed., Algorithm 7.4); the step length from scipy's strong-Wolfe line search
(``scipy.optimize.line_search``, MINPACK's dcsrch; c1 = 1e-4, c2 = 0.9). Every evaluation of J is
one distributed pass. Keeping the pairs in a NamedTuple (rather than inside scipy's minimiser)
lets a checkpoint hold them, so a resumed run takes exactly the steps an uninterrupted one would.

Driver memory (P = the number of parameters; wide models make P·8 bytes large): the pairs live
in two preallocated (m, P) arrays used as a ring (``LbfgsState.head`` marks the oldest pair; a
new pair overwrites it in place, so no step copies the history), and the line search's cache
keeps only the start point and the latest point evaluated. A step holds 2m + 2 model-sized
vectors (pairs, θ, ∇J) and peaks at about 2m + 11 with a NumpyProblem's own temporaries
(tracemalloc, m = 10: 31, where rebuilding the history with ``np.vstack`` and caching every
evaluation under a ``θ.tobytes()`` key peaked at 53). The iterates are bit for bit those of
that earlier version.

Stopping (``LBFGS.stop_reason``), with f_k = J after iteration k:
- the largest gradient component in θ is ≤ gtol; or
- over the last ``TOL_WINDOW`` = 5 iterations the relative decrease
  (f_{k−5} − f_k) / max(|f_{k−5}|, |f_k|, 1) AND the predicted remaining decrease
  ½ |gᵀ H g| / max(|f_{k−5}|, |f_k|, 1) (H the L-BFGS inverse-Hessian model) are both ≤ tol.
When the line search finds no decrease even along −∇J with a fresh memory: after at least one
accepted step the run stops (J cannot be decreased at the precision it is computed to); with
none, ``errors.NoProgressError`` — the starting point is not an optimum just because the search
failed there.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from scipy.optimize import line_search

from softmax_spark.core.errors import DivergenceError, NoProgressError
from softmax_spark.solvers.base import SolverStop

__all__ = ["LBFGS", "LbfgsSolverState", "LbfgsState", "lbfgs_init", "lbfgs_step", "two_loop_direction",
           "TOL_WINDOW"]

TOL_WINDOW = 5  # iterations over which the relative decrease is measured for tol


class LbfgsState(NamedTuple):
    s: np.ndarray  # of shape (k, n), k ≤ memory: the pairs in ring order, the oldest at row ``head``
    y: np.ndarray  # of shape (k, n), rows as in ``s``
    objective: float  # J at the current θ
    grad: np.ndarray  # of shape (n,), ∇J at the current θ
    prev_objective: float  # J one iteration ago (nan at the start)
    head: int = 0  # row of the oldest pair (0 until the memory is full; then the next row to overwrite)


def lbfgs_init(objective: float, grad: np.ndarray) -> LbfgsState:
    n = grad.shape[0]
    return LbfgsState(np.zeros((0, n)), np.zeros((0, n)), float(objective), np.asarray(grad, float), float("nan"))


def _age_order(k: int, head: int) -> list[int]:
    """Rows of a k-row ring whose oldest pair is at ``head``, oldest first."""
    head = head % k if k else 0
    return [(head + j) % k for j in range(k)]


def two_loop_direction(grad, s, y, head: int = 0) -> np.ndarray:
    """−H ∇J with H the L-BFGS inverse-Hessian approximation (H₀ = γI, γ = sᵀy / yᵀy).

    ``s``, ``y``: (k, n) pairs in ring order with the oldest at row ``head`` (0: oldest first).
    Memory: the result and one (n,) scratch vector, whatever k.
    """
    q = np.array(grad, dtype=np.float64, copy=True)
    k = s.shape[0]
    if k == 0:
        return -q
    order = _age_order(k, head)
    rho = 1.0 / np.einsum("ij,ij->i", y, s)
    alpha = np.empty(k)
    tmp = np.empty_like(q)
    for i in range(k - 1, -1, -1):
        r = order[i]
        alpha[i] = rho[r] * (s[r] @ q)
        q -= np.multiply(y[r], alpha[i], out=tmp)
    newest = order[-1]
    q *= (s[newest] @ y[newest]) / (y[newest] @ y[newest])
    for i in range(k):
        r = order[i]
        beta = rho[r] * (y[r] @ q)
        q += np.multiply(s[r], alpha[i] - beta, out=tmp)
    return np.negative(q, out=q)


def _ring_push(s, y, head: int, new_s, new_y, memory: int):
    """(s, y, head) with the pair (new_s, new_y) added to the ring, the oldest pair dropped
    when ``memory`` pairs are held. Rows are written in place into preallocated (memory, n)
    buffers — the previous state's ``s``/``y`` share them, so a state is superseded by the
    one its step returns. A ring that cannot be written in place (a restored checkpoint, the
    first pair, another ``memory``) is copied once into fresh buffers, oldest first."""
    k, n = s.shape
    if k == memory and s.flags.writeable and y.flags.writeable:
        s[head] = new_s
        y[head] = new_y
        return s, y, (head + 1) % memory
    if k < memory and _grows_in_place(s, memory) and _grows_in_place(y, memory) and head == 0:
        s, y = s.base[:k + 1], y.base[:k + 1]
        s[k] = new_s
        y[k] = new_y
        return s, y, 0
    keep = _age_order(k, head)[max(0, k - memory + 1):]
    buf_s, buf_y = np.empty((memory, n)), np.empty((memory, n))
    for j, r in enumerate(keep):
        buf_s[j], buf_y[j] = s[r], y[r]
    m = len(keep)
    buf_s[m], buf_y[m] = new_s, new_y
    if m + 1 == memory:
        return buf_s, buf_y, 0
    return buf_s[:m + 1], buf_y[:m + 1], 0


def _grows_in_place(a, memory: int) -> bool:
    """True when ``a`` is the leading rows of a writeable (memory, n) buffer of ours."""
    base = a.base
    return (isinstance(base, np.ndarray) and base.base is None and base.shape == (memory, a.shape[1])
            and base.flags.writeable and base.flags.c_contiguous and a.ctypes.data == base.ctypes.data)


class _RecentEvaluations:
    """``fun``'s results at the start point and the ``size`` most recent points, matched by
    exact equality of θ. scipy's line search asks for J and ∇J at the same point in two
    consecutive calls, and the point it accepts is the last one it evaluated, so the latest
    point finds every repeat; older points are let go (on a wide model each holds θ and ∇J,
    two model-sized vectors)."""

    def __init__(self, fun, start, start_value, size: int = 1):
        self.fun, self.start, self.start_value, self.size = fun, start, start_value, size
        self.recent: list[tuple[np.ndarray, tuple]] = []

    def __call__(self, x):
        for point, value in [(self.start, self.start_value)] + self.recent[::-1]:
            if x is point or (x.shape == point.shape and np.array_equal(x, point)):
                return value
        value = self.fun(x)
        self.recent = (self.recent + [(x, value)])[-self.size:]
        return value


def lbfgs_step(fun: Callable, theta: np.ndarray, state: LbfgsState, memory: int = 10):
    """One L-BFGS iteration. ``fun(θ) -> (J, ∇J)`` (cached by the caller is fine).

    Returns (new θ, new state, step length); step length 0.0 means no progress was possible
    (the line search failed even along −∇J): the caller should stop. The new state's pair
    buffers may share memory with ``state``'s (see ``_ring_push``): use the returned state.
    """
    evaluate = _RecentEvaluations(fun, theta, (state.objective, state.grad))
    f = lambda x: evaluate(x)[0]  # noqa: E731
    g = lambda x: evaluate(x)[1]  # noqa: E731
    s, y, head = state.s, state.y, state.head
    direction = two_loop_direction(state.grad, s, y, head)
    if direction @ state.grad >= 0:  # not a descent direction: forget the curvature pairs
        s, y, head = s[:0], y[:0], 0
        direction = -state.grad
    prev = None if np.isnan(state.prev_objective) else state.prev_objective
    first = s.shape[0] == 0
    for attempt in range(2):
        scale = 1.0
        if first:
            # the first step has no curvature information: aim for a unit-norm move
            scale = 1.0 / max(1.0, float(np.linalg.norm(direction)))
        alpha, *_ = line_search(f, g, theta, direction if scale == 1.0 else direction * scale, state.grad,
                                state.objective, prev,
                                c1=1e-4, c2=0.9, maxiter=30)
        if alpha is not None and alpha > 0:
            break
        # retry once along steepest descent with a fresh memory
        s, y, head = s[:0], y[:0], 0
        direction, first, prev = -state.grad, True, None
    else:
        return theta, state, 0.0
    step = alpha * scale * direction
    del direction
    new_theta = theta + step
    new_objective, new_grad = evaluate(new_theta)
    del evaluate, f, g
    dy = new_grad - state.grad
    if step @ dy > 1e-12 * max(1.0, float(np.linalg.norm(step) * np.linalg.norm(dy))):
        s, y, head = _ring_push(s, y, head, step, dy, memory)
    new_state = LbfgsState(s, y, float(new_objective), np.asarray(new_grad, float), state.objective, head)
    return new_theta, new_state, float(alpha * scale)


class LbfgsSolverState(NamedTuple):
    """``LbfgsState`` with θ and the count of accepted steps (checkpointed field by field)."""

    theta: np.ndarray  # of shape (n,)
    s: np.ndarray  # of shape (k, n), ring order (see ``LbfgsState``)
    y: np.ndarray  # of shape (k, n)
    objective: float
    grad: np.ndarray  # of shape (n,)
    prev_objective: float
    n_steps: int  # accepted steps since the start of the run (0: no progress yet)
    # row of the oldest pair; last so that checkpoints written before the ring buffer (pairs
    # oldest first, no 'head') restore with the default 0 and resume exactly
    head: int = 0


class LBFGS:
    """Full-batch L-BFGS (``--optimizer lbfgs``).

    Parameters
    ----------
    memory : pairs kept (``--lbfgs-memory``, default 10)
    tol, gtol : see the module docstring (defaults 1e-9, as ``TrainConfig``)
    """

    name = "lbfgs"

    def __init__(self, memory: int = 10, tol: float = 1e-9, gtol: float = 1e-9):
        self.memory, self.tol, self.gtol = memory, tol, gtol

    def init(self, theta, problem) -> LbfgsSolverState:
        theta = np.asarray(theta, dtype=np.float64)
        f0, g0 = problem.value_and_grad(theta)  # iteration 0: one pass
        if not np.isfinite(f0):
            raise DivergenceError(f"the objective became {f0} at iteration 0; check the input scale or the initial model")
        st = lbfgs_init(f0, g0)
        return LbfgsSolverState(theta, st.s, st.y, st.objective, st.grad, st.prev_objective, 0)

    def step(self, problem, state: LbfgsSolverState, iteration: int):
        inner = LbfgsState(state.s, state.y, state.objective, state.grad, state.prev_objective, state.head)
        theta, inner, step = lbfgs_step(lambda x: problem.value_and_grad(x, iteration), state.theta, inner,
                                        self.memory)
        if step == 0.0:
            gmax = float(np.max(np.abs(state.grad), initial=0.0))
            if state.n_steps == 0:
                raise NoProgressError(
                    f"lbfgs could not take a first step: the line search found no decrease of J = "
                    f"{state.objective:.10g} from the starting point even along −∇J (largest gradient component "
                    f"{gmax:.3e} > gtol {self.gtol}), so this is not an optimum; the problem is badly scaled for "
                    f"it — keep --precondition on or rescale the features")
            raise SolverStop(f"line search found no further decrease after {state.n_steps} steps "
                             f"(largest gradient component {gmax:.3e}; J is computed to limited precision)")
        if not np.isfinite(inner.objective):
            raise DivergenceError(f"the objective became {inner.objective} at iteration {iteration}; "
                                  "check the input for extreme values")
        new = LbfgsSolverState(theta, inner.s, inner.y, inner.objective, inner.grad, inner.prev_objective,
                               state.n_steps + 1, inner.head)
        return new, {"objective": inner.objective, "step": step}

    def stop_reason(self, state: LbfgsSolverState, history: list[dict]) -> str | None:
        if float(np.max(np.abs(state.grad), initial=0.0)) <= self.gtol:
            return f"gradient below gtol ({self.gtol})"
        # J − J* ≈ ½ gᵀ H⁻¹ g, the L-BFGS model's remaining decrease; it underestimates while the
        # model has seen few directions, so the actual decrease over the last TOL_WINDOW
        # iterations must be small too
        if len(history) > TOL_WINDOW:
            past = history[-TOL_WINDOW - 1]["objective"]
            scale = max(abs(past), abs(state.objective), 1.0)
            rel = (past - state.objective) / scale
            predicted = 0.5 * max(0.0, -float(state.grad @ two_loop_direction(state.grad, state.s, state.y,
                                                                                   state.head))) / scale
            if rel <= self.tol and predicted <= self.tol:
                return (f"relative decrease over {TOL_WINDOW} iterations {rel:.3e} and predicted "
                        f"remaining decrease {predicted:.3e} ≤ tol ({self.tol})")
        return None
