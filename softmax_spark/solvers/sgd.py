"""Minibatch SGD as a ``base.Solver``: ``optim``'s transformations composed, optax-style.

Each step draws the minibatch of its iteration (``--batch-fraction``; 1 = gradient descent),
and applies the composition

    schedule η_t (constant / invscaling / step)  →  momentum (heavy-ball or Nesterov)  →  θ + update
    →  Polyak–Ruppert averaging of the iterates (``--average``: the average is the result)

The default base rate η is 1/L with L ``problem.curvature_bound()`` (Böhning's bound on the
Hessian in θ: exact from the covariance when the ingest kept it, by power iteration otherwise),
computed once at ``init`` and kept in the state, so a resumed run uses the same rate.

Stopping: when the minibatch objective f_k has not dropped below best − tol·max(|best|, 1) for
``n_iter_no_change`` consecutive iterations (tol > 0).
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from ..errors import DivergenceError
from ..optim import AverageState, SgdState, make_schedule, polyak_average_init, polyak_average_update, sgd

__all__ = ["SGD", "SgdSolverState"]

log = logging.getLogger("softmax_spark")


class SgdSolverState(NamedTuple):
    theta: np.ndarray  # the last iterate, of shape (n,)
    learning_rate: float  # base rate η of the schedule
    step: int  # schedule step t
    velocity: np.ndarray  # momentum buffer (zeros without momentum)
    avg_count: int  # Polyak average: iterates averaged
    avg_mean: np.ndarray  # their mean
    best_objective: float  # lowest minibatch objective so far (inf at the start)
    no_improve: int  # iterations since it last improved by tol


class SGD:
    """Minibatch SGD (``--optimizer sgd``); options as ``TrainConfig``'s of the same names."""

    name = "sgd"

    def __init__(self, learning_rate=None, schedule="constant", power_t=0.5, decay_rate=0.5, decay_every=100,
                 momentum=0.0, nesterov=False, average=False, batch_fraction=1.0, tol=1e-9, n_iter_no_change=5):
        self.learning_rate = learning_rate
        self.schedule, self.power_t, self.decay_rate, self.decay_every = schedule, power_t, decay_rate, decay_every
        self.momentum, self.nesterov, self.average = momentum, nesterov, average
        self.batch_fraction, self.tol, self.n_iter_no_change = batch_fraction, tol, n_iter_no_change

    def _schedule(self, learning_rate):
        return make_schedule(self.schedule, learning_rate, self.power_t, self.decay_rate, self.decay_every)

    def init(self, theta, problem) -> SgdSolverState:
        theta = np.asarray(theta, dtype=np.float64)
        lr = self.learning_rate
        if lr is None:
            bound = problem.curvature_bound()
            lr = 1.0 / bound
            log.info("learning rate 1/L = %.4g (curvature bound L = %.4g)", lr, bound)
        opt_state = sgd(self._schedule(lr), self.momentum, self.nesterov).init(theta)
        avg = polyak_average_init(theta)
        return SgdSolverState(theta, float(lr), opt_state.step, opt_state.velocity, avg.count, avg.mean,
                              float("inf"), 0)

    def step(self, problem, state: SgdSolverState, iteration: int):
        schedule = self._schedule(state.learning_rate)
        step_lr = schedule(state.step)
        f, grad = problem.value_and_grad(state.theta, iteration, self.batch_fraction)
        if not math.isfinite(f):
            raise DivergenceError(f"the objective became {f} at iteration {iteration}; the learning rate "
                                  f"{step_lr:.3g} is probably too large; try a smaller --learning-rate")
        updates, opt_state = sgd(schedule, self.momentum, self.nesterov).update(
            grad, SgdState(state.step, state.velocity), state.theta)
        theta = state.theta + updates
        if not np.all(np.isfinite(theta)):
            raise DivergenceError(f"the parameters became non-finite at iteration {iteration}; "
                                  f"the learning rate {step_lr:.3g} is too large; try a smaller --learning-rate")
        avg = AverageState(state.avg_count, state.avg_mean)
        if self.average:
            avg = polyak_average_update(theta, avg)
        best, no_improve = state.best_objective, state.no_improve
        if not math.isfinite(best) or f < best - self.tol * max(abs(best), 1.0):
            best, no_improve = min(f, best), 0
        else:
            no_improve += 1
        new = SgdSolverState(theta, state.learning_rate, opt_state.step, opt_state.velocity, avg.count, avg.mean,
                             float(best), no_improve)
        return new, {"objective": f, "learning_rate": step_lr}

    def result(self, state: SgdSolverState) -> np.ndarray:
        return state.avg_mean if self.average else state.theta

    def stop_reason(self, state: SgdSolverState, history: list[dict]) -> str | None:
        if self.tol > 0 and state.no_improve >= self.n_iter_no_change:
            return f"objective did not improve by tol ({self.tol}) for {self.n_iter_no_change} iterations"
        return None
