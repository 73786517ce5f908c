"""Driver-side solvers behind one protocol (``base.Solver``): ``make_solver(cfg)`` by ``--optimizer``.

- ``lbfgs``: ``LBFGS`` — full-batch L-BFGS with a strong-Wolfe line search.
- ``sgd``: ``SGD`` — minibatch SGD with schedule, momentum and Polyak averaging.

Adding a solver is one module with a class implementing ``base.Solver`` and one line below.
"""

from __future__ import annotations

from .base import Solver, SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint
from .lbfgs import LBFGS
from .sgd import SGD

__all__ = ["make_solver", "Solver", "SolverStop", "LBFGS", "SGD", "solver_result", "state_to_checkpoint",
           "state_from_checkpoint"]


def make_solver(cfg) -> Solver:
    """The solver ``cfg.optimizer`` names, configured from ``cfg`` (a ``TrainConfig``)."""
    if cfg.optimizer == "lbfgs":
        return LBFGS(memory=cfg.lbfgs_memory, tol=cfg.tol, gtol=cfg.gtol)
    if cfg.optimizer == "sgd":
        return SGD(learning_rate=cfg.learning_rate, schedule=cfg.schedule, power_t=cfg.power_t,
                   decay_rate=cfg.decay_rate, decay_every=cfg.decay_every, momentum=cfg.momentum,
                   nesterov=cfg.nesterov, average=cfg.average, batch_fraction=cfg.batch_fraction, tol=cfg.tol,
                   n_iter_no_change=cfg.n_iter_no_change)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected lbfgs or sgd")
