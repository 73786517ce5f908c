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

Adding a solver is one module with a class implementing ``base.Solver`` and one ``register_solver`` line in
``registry`` (its name, builder and the penalty kinds it handles; ``registry._check_solver`` then refuses
the penalties it does not handle, naming both).
"""

from __future__ import annotations

from softmax_spark.solvers.base import Solver, SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint
from softmax_spark.solvers.auto import choose_nonsmooth_solver, choose_solver
from softmax_spark.solvers.lbfgs import LBFGS
from softmax_spark.solvers.newton import Newton
from softmax_spark.solvers.newton_cg import NewtonCG
from softmax_spark.solvers.orthant_newton import OrthantNewtonCG
from softmax_spark.solvers.owlqn import OWLQN
from softmax_spark.solvers.prox_newton import ProxNewton
from softmax_spark.solvers.sgd import SGD
from softmax_spark.solvers.registry import SolverSpec, _check_solver, build_solver, register_solver, solver_names
from softmax_spark.core.penalties import requested_penalties

__all__ = ["make_solver", "resolve_optimizer", "SolverSpec", "register_solver", "solver_names", "Solver", "SolverStop", "LBFGS", "SGD", "Newton", "NewtonCG", "ProxNewton",
           "OWLQN", "OrthantNewtonCG", "solver_result", "state_to_checkpoint",
           "state_from_checkpoint"]


def resolve_optimizer(cfg, n_rows: int, n_classes: int, n_features: int, density: float = 1.0) -> tuple[str, str]:
    """(solver name, why): ``cfg.optimizer`` checked against the penalties the options ask for
    (``registry._check_solver``: its proximal form with an L1 part or bounds, a ValueError naming
    solver and penalty when they do not go together), or for ``auto`` the choice of
    ``auto.choose_solver`` / ``auto.choose_nonsmooth_solver`` from the data's shape."""
    wanted = requested_penalties(cfg)
    if cfg.optimizer == "auto":
        choose = choose_nonsmooth_solver if any(p.kind == "separable" for p in wanted) else choose_solver
        name, why = choose(n_rows, n_classes, n_features, cfg.fit_intercept, density)
        if name == "lbfgs" and getattr(cfg, "mllib_tol", None) is not None:
            # the Estimator promises the optimum's probabilities to 1e-6 at MLlib's tol; L-BFGS's own rule at
            # tol 1e-6 stops 1e-4–1e-3 away on one-hot data (bench/onehot_l2.py): finish with Newton-CG
            name, why = "qn-newton-cg", why + "; then a Newton-CG finish (the Estimator's tol promises the optimum)"
        _check_solver(name, wanted)
        return name, why
    name, why = _check_solver(cfg.optimizer, wanted)
    return name, why or "chosen by --optimizer"


def make_solver(cfg, name: str | None = None) -> Solver:
    """The solver ``name`` (default ``cfg.optimizer``; ``auto`` must be resolved first with
    ``resolve_optimizer``), configured from ``cfg`` (a ``TrainConfig``) by its ``registry.SolverSpec``.
    ``cfg.tol`` None means the solver's own default tolerance. ValueError for an unknown name."""
    return build_solver(cfg, name)
