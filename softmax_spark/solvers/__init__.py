"""Driver-side solvers behind one protocol (``base.Solver``): ``make_solver(cfg)`` by ``--optimizer``.

- ``newton``: ``Newton`` — exact Hessian in one pass per iteration, Cholesky, Armijo line search.
- ``newton-cg``: ``NewtonCG`` — trust-region Newton-CG, one pass per Hessian-vector product.
- ``lbfgs``: ``LBFGS`` — full-batch L-BFGS with a strong-Wolfe line search.
- ``sgd``: ``SGD`` — minibatch SGD with schedule, momentum, iterate averaging and a full-data stop test.
- ``prox-newton``: ``ProxNewton`` — L1 / bounds: exact Hessian, coordinate descent on the quadratic model.
- ``owlqn``: ``OWLQN`` — L1 / bounds when the Hessian does not fit: orthant-wise L-BFGS (MLlib's method).
- ``qn-newton-cg``: ``OrthantNewtonCG`` — L-BFGS / OWL-QN, then an (orthant-wise, projected) Newton-CG finish;
  ``auto``'s choice above the Newton bound, with or without L1 / bounds.
- ``auto`` (the default): one of the first three by the problem's shape (``auto.choose_solver``); with an L1
  part or bounds, prox-newton or owlqn (``auto.choose_nonsmooth_solver``).

Adding a solver is one module with a class implementing ``base.Solver`` and one line below.
"""

from __future__ import annotations

from .base import Solver, SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint
from .auto import choose_nonsmooth_solver, choose_solver
from .lbfgs import LBFGS
from .newton import Newton
from .newton_cg import NewtonCG
from .orthant_newton import OrthantNewtonCG
from .owlqn import OWLQN
from .prox_newton import ProxNewton
from .sgd import SGD

__all__ = ["make_solver", "resolve_optimizer", "Solver", "SolverStop", "LBFGS", "SGD", "Newton", "NewtonCG", "ProxNewton",
           "OWLQN", "OrthantNewtonCG", "solver_result", "state_to_checkpoint",
           "state_from_checkpoint"]


def resolve_optimizer(cfg, n_rows: int, n_classes: int, n_features: int, density: float = 1.0) -> tuple[str, str]:
    """(solver name, why): ``cfg.optimizer`` itself, or for ``auto`` the choice of
    ``auto.choose_solver`` from the data's shape."""
    if getattr(cfg, "nonsmooth", False):  # an L1 part or bounds: the proximal solvers
        if cfg.optimizer in ("prox-newton", "owlqn", "qn-newton-cg"):
            return cfg.optimizer, "chosen by --optimizer"
        if cfg.optimizer == "newton":
            return "prox-newton", "--optimizer newton with an L1 part or bounds: its proximal form"
        if cfg.optimizer == "lbfgs":
            return "owlqn", "--optimizer lbfgs with an L1 part or bounds: its orthant-wise form (OWL-QN)"
        return choose_nonsmooth_solver(n_rows, n_classes, n_features, cfg.fit_intercept, density)
    if cfg.optimizer in ("prox-newton", "owlqn"):
        raise ValueError(f"--optimizer {cfg.optimizer} is for problems with --l1 or bounds; this one has neither")
    if cfg.optimizer != "auto":
        return cfg.optimizer, "chosen by --optimizer"
    name, why = choose_solver(n_rows, n_classes, n_features, cfg.fit_intercept, density)
    if name == "lbfgs" and getattr(cfg, "mllib_tol", None) is not None:
        # the Estimator promises the optimum's probabilities to 1e-6 at MLlib's tol; L-BFGS's own rule at
        # tol 1e-6 stops 1e-4–1e-3 away on one-hot data (bench/onehot_l2.py): finish with Newton-CG
        return "qn-newton-cg", why + "; then a Newton-CG finish (the Estimator's tol promises the optimum)"
    return name, why


def make_solver(cfg, name: str | None = None) -> Solver:
    """The solver ``name`` (default ``cfg.optimizer``; ``auto`` must be resolved first with
    ``resolve_optimizer``), configured from ``cfg`` (a ``TrainConfig``). ``cfg.tol`` None means
    the solver's own default tolerance."""
    name = name or cfg.optimizer
    tol = {} if cfg.tol is None else {"tol": cfg.tol}
    mllib_tol = getattr(cfg, "mllib_tol", None)
    if mllib_tol is not None:  # the Estimator's tol, read by each solver stricter than MLlib (see ml.py)
        if name in ("newton", "newton-cg"):
            tol = {"tol": 1e-4 * min(mllib_tol, 1.0) ** 2}
        elif name == "prox-newton":
            return ProxNewton(kkt_tol=1e-4 * mllib_tol)
        elif name == "owlqn":
            return OWLQN(memory=cfg.lbfgs_memory, kkt_tol=1e-3 * mllib_tol, tol=min(mllib_tol, 1.0) ** 2)
        elif name == "qn-newton-cg":
            return OrthantNewtonCG(kkt_tol=1e-3 * mllib_tol, memory=cfg.lbfgs_memory)
    if name == "newton":
        return Newton(**tol)
    if name == "newton-cg":
        return NewtonCG(**tol)
    if name == "lbfgs":
        return LBFGS(memory=cfg.lbfgs_memory, gtol=cfg.gtol, **tol)
    if name == "prox-newton":
        kkt = {} if getattr(cfg, "kkt_tol", None) is None else {"kkt_tol": cfg.kkt_tol}
        return ProxNewton(**kkt)
    if name == "owlqn":
        kkt = {} if getattr(cfg, "kkt_tol", None) is None else {"kkt_tol": cfg.kkt_tol}
        return OWLQN(memory=cfg.lbfgs_memory, **kkt, **tol)
    if name == "qn-newton-cg":
        kkt = {} if getattr(cfg, "kkt_tol", None) is None else {"kkt_tol": cfg.kkt_tol}
        return OrthantNewtonCG(memory=cfg.lbfgs_memory, **kkt)
    if name == "sgd":
        return SGD(learning_rate=cfg.learning_rate, schedule=cfg.schedule, power_t=cfg.power_t,
                   decay_rate=cfg.decay_rate, decay_every=cfg.decay_every, momentum=cfg.momentum,
                   nesterov=cfg.nesterov, average=cfg.average, batch_fraction=cfg.batch_fraction,
                   n_iter_no_change=cfg.n_iter_no_change, **tol)
    raise ValueError(f"unknown optimizer {name!r}; expected auto, newton, newton-cg, lbfgs, sgd, prox-newton, owlqn or qn-newton-cg")
