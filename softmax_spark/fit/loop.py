"""The one training loop: any ``solvers.base.Solver`` over a ``problem.Problem``.

Per iteration k = start+1 … max_iter: ``solver.step`` (its passes) → a history record and the
log line ``iter k  objective …`` → the validation loss (when a validation set is given) →
a checkpoint every ``checkpoint_every`` iterations → stop when the validation loss has not
improved for ``patience`` iterations, or when ``solver.stop_reason`` says so (also checked once
before the first iteration: a warm start at the optimum takes no step).

Checkpoints hold the solver's NamedTuple state field by field (``solvers.base``) and the loop's
own early-stopping state under ``loop_*`` keys; a run started again with the same checkpoint
directory and configuration resumes from the newest one and takes exactly the steps an
uninterrupted run would.

Early stopping returns the iterate with the lowest validation loss; which iteration was
returned is logged and kept (``LoopResult.returned_iteration``; the history record of that
iteration gets ``"returned": True``).

Output goes to the logger ``softmax_spark``; ``io.console.use_console`` (re-exported here) makes
its INFO lines visible on stdout as ``softmax_spark: …`` (under spark-submit too), warnings on stderr.
"""

from __future__ import annotations

import logging
import time
import typing
from typing import Callable, NamedTuple

import numpy as np

from softmax_spark.io.checkpoint import latest_checkpoint, save_checkpoint
from softmax_spark.io.console import use_console  # noqa: F401 - re-exported (its home before io/console.py)
from softmax_spark.solvers.base import SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint

__all__ = ["TrainingLoop", "LoopResult", "use_console"]

log = logging.getLogger("softmax_spark")


class LoopResult(NamedTuple):
    theta: np.ndarray  # the parameters returned (θ of the solver's problem)
    reason: str  # why training stopped
    history: list  # one record per iteration, including those of a resumed-from run
    returned_iteration: int  # the iteration whose parameters ``theta`` are (0: the start)


def _state_type(solver):
    """The solver's state NamedTuple class: ``solver.state_type`` or ``init``'s return annotation."""
    state_type = getattr(solver, "state_type", None)
    if state_type is None:
        state_type = typing.get_type_hints(type(solver).init)["return"]
    return state_type


class TrainingLoop:
    """Runs a solver with history, log line, validation, early stopping and checkpoints.

    Parameters
    ----------
    solver : a ``solvers.base.Solver``
    problem : a ``problem.Problem`` (or ``NumpyProblem``)
    max_iter : last iteration (≥ 1)
    validation_loss : callable θ → validation loss, or None
    patience : iterations without a better validation loss before stopping
    checkpoint_dir, checkpoint_every : where and how often to checkpoint (None: never)
    run_fingerprint : what a checkpoint must have been written by to be resumed
    """

    def __init__(self, solver, problem, max_iter: int, validation_loss: Callable | None = None, patience: int = 10,
                 checkpoint_dir: str | None = None, checkpoint_every: int = 10, run_fingerprint: str = ""):
        self.solver, self.problem = solver, problem
        self.max_iter, self.validation_loss, self.patience = max_iter, validation_loss, patience
        self.checkpoint_dir, self.checkpoint_every, self.run_fingerprint = checkpoint_dir, checkpoint_every, run_fingerprint
        self.history: list[dict] = []
        self.best_val, self.best_theta, self.best_iteration, self.since_best = float("inf"), None, 0, 0

    # -- resume -----------------------------------------------------------------------------------
    def _restore(self):
        """(start iteration, solver state) from the newest matching checkpoint, or (0, None)."""
        if not self.checkpoint_dir:
            return 0, None
        restored = latest_checkpoint(self.checkpoint_dir, self.run_fingerprint,
                                     n_params=getattr(self.problem, "n_params", None))
        if restored is None:
            return 0, None
        arrays, scalars = restored.arrays, restored.scalars
        solver_arrays = {k: v for k, v in arrays.items() if not k.startswith("loop_")}
        solver_scalars = {k: v for k, v in scalars.items() if not k.startswith("loop_")}
        state = state_from_checkpoint(_state_type(self.solver), solver_arrays, solver_scalars)
        self.history = list(restored.history)
        if "loop_best_theta" in arrays:
            self.best_theta = arrays["loop_best_theta"]
        self.best_val = float(scalars.get("loop_best_val", self.best_val))
        self.since_best = int(scalars.get("loop_since_best", 0))
        self.best_iteration = int(scalars.get("loop_best_iteration", 0))
        log.info("resuming from iteration %d (%s)", restored.iteration, restored.path)
        return restored.iteration, state

    def _checkpoint(self, iteration, state) -> None:
        if not self.checkpoint_dir or iteration % self.checkpoint_every:
            return
        arrays, scalars = state_to_checkpoint(state)
        if self.best_theta is not None:
            arrays["loop_best_theta"] = self.best_theta
        scalars.update(loop_best_val=self.best_val, loop_since_best=self.since_best,
                       loop_best_iteration=self.best_iteration, solver=self.solver.name)
        save_checkpoint(self.checkpoint_dir, iteration, arrays, scalars, self.history, self.run_fingerprint)

    # -- one record ---------------------------------------------------------------------------------
    def _record(self, iteration, state, info, seconds, rows, passes) -> str | None:
        """Append the history record, log the line; returns an early-stopping reason or None."""
        # the J of this iteration: the solver's extras, else its state's ``objective`` field
        objective = float(info["objective"] if "objective" in info else state.objective)
        entry = {
            "iteration": iteration,
            "objective": objective,
            "grad_norm": self.problem.last_grad_norm,
            "seconds": seconds,
            "passes": passes,
            "rows_per_second": rows / seconds if seconds > 0 else None,
            **{k: v for k, v in info.items() if k != "objective"},
        }
        reason = None
        if self.validation_loss is not None:
            theta = solver_result(self.solver, state)
            val = float(self.validation_loss(theta))
            entry["validation_loss"] = val
            if val < self.best_val:
                self.best_val, self.best_theta, self.best_iteration, self.since_best = val, theta.copy(), iteration, 0
            else:
                self.since_best += 1
                if self.since_best >= self.patience:
                    reason = f"early stopping: validation loss did not improve for {self.patience} iterations"
        self.history.append(entry)
        parts = [f"iter {iteration:5d}", f"objective {objective:.10g}", f"grad_norm {entry['grad_norm']:.3e}"]
        if "learning_rate" in info:
            parts.append(f"lr {info['learning_rate']:.3e}")
        if "step" in info:
            parts.append(f"step {info['step']:.3e}")
        for key, value in info.items():  # a new solver's extras show up without touching this loop
            if key not in ("objective", "learning_rate", "step") and isinstance(value, (int, float)):
                parts.append(f"{key} {value:.3e}")
        if "validation_loss" in entry:
            parts.append(f"val_loss {entry['validation_loss']:.8g}")
        parts.append(f"{seconds:.3f} s")
        if entry["rows_per_second"]:
            parts.append(f"{entry['rows_per_second']:.3g} rows/s")
        log.info("  ".join(parts))
        return reason

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, theta0: np.ndarray) -> LoopResult:
        start, state = self._restore()
        if state is None:
            state = self.solver.init(np.asarray(theta0, dtype=np.float64), self.problem)
        reason = self.solver.stop_reason(state, self.history)
        last = start
        if reason is None:
            reason = f"max_iter ({self.max_iter}) reached"
            for iteration in range(start + 1, self.max_iter + 1):
                t0, passes0, rows0 = time.perf_counter(), self.problem.passes, self.problem.rows
                try:
                    state, info = self.solver.step(self.problem, state, iteration)
                except SolverStop as stop:
                    reason = stop.reason
                    break
                last = iteration
                early = self._record(iteration, state, info, time.perf_counter() - t0,
                                     self.problem.rows - rows0, self.problem.passes - passes0)
                self._checkpoint(iteration, state)
                if early:
                    reason = early
                    break
                stop = self.solver.stop_reason(state, self.history)
                if stop:
                    reason = stop
                    break
        log.info("stopped: %s", reason)
        theta, returned = solver_result(self.solver, state), last
        if self.validation_loss is not None and self.best_theta is not None:
            theta, returned = self.best_theta, self.best_iteration
            log.info("returning iteration %d of %d (lowest validation loss %.8g)", returned, last, self.best_val)
        for entry in self.history:
            if entry.get("iteration") == returned:
                entry["returned"] = True
        return LoopResult(np.asarray(theta), reason, self.history, returned)
