"""Driver-side solvers behind one protocol (``base.Solver``): ``make_solver(cfg)`` by ``--optimizer``.

- ``newton``: ``Newton`` — exact Hessian in one pass per iteration, Cholesky, Armijo line search.
- ``newton-cg``: ``NewtonCG`` — trust-region Newton-CG, one pass per Hessian-vector product.
- ``lbfgs``: ``LBFGS`` — full-batch L-BFGS with a strong-Wolfe line search.
- ``sgd``: ``SGD`` — minibatch SGD with schedule, momentum, iterate averaging and a full-data stop test.
- ``auto`` (the default): one of the first three by the problem's shape (``auto.choose_solver``).

Adding a solver is one module with a class implementing ``base.Solver`` and one line below.
"""

from __future__ import annotations

from .base import Solver, SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint
from .auto import choose_solver
from .lbfgs import LBFGS
from .newton import Newton
from .newton_cg import NewtonCG
from .sgd import SGD

__all__ = ["make_solver", "resolve_optimizer", "Solver", "SolverStop", "LBFGS", "SGD", "Newton", "NewtonCG", "solver_result", "state_to_checkpoint",
           "state_from_checkpoint"]


def resolve_optimizer(cfg, n_rows: int, n_classes: int, n_features: int, density: float = 1.0) -> tuple[str, str]:
    """(solver name, why): ``cfg.optimizer`` itself, or for ``auto`` the choice of
    ``auto.choose_solver`` from the data's shape."""
    if cfg.optimizer != "auto":
        return cfg.optimizer, "chosen by --optimizer"
    return choose_solver(n_rows, n_classes, n_features, cfg.fit_intercept, density)


def make_solver(cfg, name: str | None = None) -> Solver:
    """The solver ``name`` (default ``cfg.optimizer``; ``auto`` must be resolved first with
    ``resolve_optimizer``), configured from ``cfg`` (a ``TrainConfig``). ``cfg.tol`` None means
    the solver's own default tolerance."""
    name = name or cfg.optimizer
    tol = {} if cfg.tol is None else {"tol": cfg.tol}
    if name == "newton":
        return Newton(**tol)
    if name == "newton-cg":
        return NewtonCG(**tol)
    if name == "lbfgs":
        return LBFGS(memory=cfg.lbfgs_memory, gtol=cfg.gtol, **tol)
    if name == "sgd":
        return SGD(learning_rate=cfg.learning_rate, schedule=cfg.schedule, power_t=cfg.power_t,
                   decay_rate=cfg.decay_rate, decay_every=cfg.decay_every, momentum=cfg.momentum,
                   nesterov=cfg.nesterov, average=cfg.average, batch_fraction=cfg.batch_fraction,
                   n_iter_no_change=cfg.n_iter_no_change, **tol)
    raise ValueError(f"unknown optimizer {name!r}; expected auto, newton, newton-cg, lbfgs or sgd")
