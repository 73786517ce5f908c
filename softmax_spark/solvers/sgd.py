"""Minibatch SGD as a ``base.Solver``: ``optim``'s transformations composed, optax-style.

Each step draws the minibatch of its iteration (``--batch-fraction``; 1 = gradient descent),
and applies the composition

    schedule η_t (constant / invscaling / step)  →  momentum (heavy-ball or Nesterov)  →  θ + update
    →  averaging of the iterates (``--average``, the default: the average is the result)

The default base rate η is 1/L with L ``problem.curvature_bound()`` (Böhning's bound on the
Hessian in θ: exact from the covariance when the ingest kept it, by power iteration otherwise),
computed once at ``init`` and kept in the state, so a resumed run uses the same rate.

Averaging (minibatches only; full-batch gradient descent has no noise to average and reports
its last iterate): the polynomial-decay average with ``AVERAGE_ETA`` = 8
(``optim.polyak_average_update``), which forgets the early iterates that a plain Polyak mean
keeps. Measured on scikit-learn's digits (pixels / 16, λ = 1e-3, batch fraction 0.1, 1/L, in
process): after 300 iterations the last iterate is 0.9 % above the optimal objective (and jumps
with each minibatch), the plain mean 4.9 %, the polynomial-decay average 0.7 % (smoothly).

Stopping never looks at a minibatch objective, whose noise is larger than any tolerance (the
README's example once stopped after 36 iterations at 100× the optimal J). With a batch fraction
f < 1, every k = ⌈1/f⌉ iterations (about one epoch) one extra full pass evaluates J at the
reported parameters (the average, with ``--average``); training stops when that full-data J has
not dropped below best − tol·max(|best|, 1) for ``n_iter_no_change`` consecutive checks. With
f = 1 the step's own J (full data, at the current iterate) is used every iteration, no extra
pass. tol = 0 disables the test (and the extra passes).
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from softmax_spark.core.errors import DivergenceError
from softmax_spark.core.optim import AverageState, SgdState, make_schedule, polyak_average_init, polyak_average_update, sgd

__all__ = ["SGD", "SgdSolverState"]

log = logging.getLogger("softmax_spark")

AVERAGE_ETA = 8.0  # polynomial-decay averaging exponent (Shamir & Zhang 2013 use small integers)


class SgdSolverState(NamedTuple):
    theta: np.ndarray  # the last iterate, of shape (n,)
    learning_rate: float  # base rate η of the schedule
    step: int  # schedule step t
    velocity: np.ndarray  # momentum buffer (zeros without momentum)
    avg_count: int  # Polyak average: iterates averaged
    avg_mean: np.ndarray  # their mean
    best_objective: float  # lowest full-data objective of the checks so far (inf at the start)
    no_improve: int  # checks since it last improved by tol


class SGD:
    """Minibatch SGD (``--optimizer sgd``); options as ``TrainConfig``'s of the same names."""

    name = "sgd"

    def __init__(self, learning_rate=None, schedule="constant", power_t=0.5, decay_rate=0.5, decay_every=100,
                 momentum=0.0, nesterov=False, average=True, batch_fraction=1.0, tol=1e-9, n_iter_no_change=5):
        self.learning_rate = learning_rate
        self.schedule, self.power_t, self.decay_rate, self.decay_every = schedule, power_t, decay_rate, decay_every
        self.momentum, self.nesterov, self.average = momentum, nesterov, average
        self.batch_fraction, self.tol, self.n_iter_no_change = batch_fraction, tol, n_iter_no_change

    @property
    def averaging(self) -> bool:
        """Whether the reported parameters are the average (``average`` and a minibatch)."""
        return bool(self.average) and self.batch_fraction < 1.0

    @property
    def check_every(self) -> int:
        """Iterations between two full-data evaluations of J for the stop test (⌈1/f⌉)."""
        return 1 if self.batch_fraction >= 1.0 else int(math.ceil(1.0 / self.batch_fraction - 1e-9))

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
        if self.averaging:
            avg = polyak_average_update(theta, avg, AVERAGE_ETA)
        extras = {"objective": f, "learning_rate": step_lr}
        best, no_improve = state.best_objective, state.no_improve
        checked = None
        if self.tol > 0 and self.batch_fraction >= 1.0:
            checked = f  # full data already: J at the iterate this step started from
        elif self.tol > 0 and opt_state.step % self.check_every == 0:
            checked, _ = problem.value_and_grad(avg.mean if self.averaging else theta, iteration)
            extras["full_objective"] = float(checked)
        if checked is not None:
            if not math.isfinite(best) or checked < best - self.tol * max(abs(best), 1.0):
                best, no_improve = min(checked, best), 0
            else:
                no_improve += 1
        new = SgdSolverState(theta, state.learning_rate, opt_state.step, opt_state.velocity, avg.count, avg.mean,
                             float(best), no_improve)
        return new, extras

    def result(self, state: SgdSolverState) -> np.ndarray:
        return state.avg_mean if self.averaging else state.theta

    def stop_reason(self, state: SgdSolverState, history: list[dict]) -> str | None:
        if self.tol > 0 and state.no_improve >= self.n_iter_no_change:
            if self.batch_fraction >= 1.0:
                return f"objective did not improve by tol ({self.tol}) for {self.n_iter_no_change} iterations"
            what = "averaged" if self.averaging else "current"
            return (f"full-data objective of the {what} parameters (checked every {self.check_every} iterations) "
                    f"did not improve by tol ({self.tol}) for {self.n_iter_no_change} checks")
        return None
