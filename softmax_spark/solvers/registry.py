"""The one registry of solvers, and ``_check_solver``: which solver goes with which penalty.

Each solver is a ``SolverSpec``: its ``--optimizer`` name, how it is built from the training
options, and which penalty kinds it handles (``core.penalties.base.KINDS``): ``"smooth"`` only
(newton, newton-cg, lbfgs, sgd: they need J differentiable), or ``"smooth"`` and ``"separable"``
(prox-newton, owlqn: they add a separable non-smooth term — L1, bounds — through its proximal
step / orthant projection). A penalty may narrow further with its own ``solvers`` set.

``_check_solver(name, penalties)`` is modelled on scikit-learn's
``linear_model/_logistic.py::_check_solver``: one place that knows the compatibility, one error
naming both the solver and the penalty. A smooth-only solver with a ``proximal_form`` is replaced
by that form when the objective has a separable part (``--optimizer newton`` with ``--l1`` runs
prox-newton), as before; a solver that needs a separable part refuses a problem without one.

Adding a solver: its module, and one ``register_solver(SolverSpec(...))`` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from softmax_spark.core.penalties import requested_penalties
from softmax_spark.solvers.base import Solver
from softmax_spark.solvers.lbfgs import LBFGS
from softmax_spark.solvers.newton import Newton
from softmax_spark.solvers.newton_cg import NewtonCG
from softmax_spark.solvers.orthant_newton import OrthantNewtonCG
from softmax_spark.solvers.owlqn import OWLQN
from softmax_spark.solvers.prox_newton import ProxNewton
from softmax_spark.solvers.sgd import SGD

__all__ = ["SolverSpec", "register_solver", "solver_names", "solver_spec", "check_solver", "_check_solver",
           "check_config_solver", "build_solver",
           "SMOOTH", "SMOOTH_AND_SEPARABLE"]

SMOOTH = frozenset({"smooth"})
SMOOTH_AND_SEPARABLE = frozenset({"smooth", "separable"})


@dataclass(frozen=True)
class SolverSpec:
    """One solver: ``name`` (``--optimizer``), ``build(cfg) -> Solver``, the penalty ``kinds`` it
    handles, whether it ``needs_separable`` (refuses a smooth problem), the solver that replaces it
    when the objective has a separable part (``proximal_form``, with the log line ``proximal_reason``)."""

    name: str
    build: Callable[..., Solver]
    kinds: frozenset = SMOOTH
    needs_separable: bool = False
    proximal_form: str | None = None
    proximal_reason: str = ""
    summary: str = field(default="", compare=False)


_SOLVERS: dict[str, SolverSpec] = {}


def register_solver(spec: SolverSpec) -> SolverSpec:
    """Add ``spec`` to the registry (ValueError on a duplicate name)."""
    if spec.name in _SOLVERS:
        raise ValueError(f"a solver named {spec.name!r} is already registered")
    _SOLVERS[spec.name] = spec
    return spec


def solver_names() -> list[str]:
    """Registered solver names, in registration order (``auto`` is not one: it picks among them)."""
    return list(_SOLVERS)


def solver_spec(name: str) -> SolverSpec:
    """The spec of ``name``; ValueError listing the registered names otherwise."""
    try:
        return _SOLVERS[name]
    except KeyError:
        expected = ", ".join(["auto", *_SOLVERS][:-1]) + " or " + list(_SOLVERS)[-1]
        raise ValueError(f"unknown optimizer {name!r}; expected {expected}") from None


def _penalty_facts(penalty) -> tuple[str, str, frozenset | None]:
    """(name, kind, solvers) of a penalty class, a penalty object, or a registered penalty's name."""
    if isinstance(penalty, str):
        from softmax_spark.core.penalties import penalty_class

        penalty = penalty_class(penalty)
    return penalty.name, penalty.kind, getattr(penalty, "solvers", None)


def _allows(spec: SolverSpec, kind: str, solvers) -> bool:
    return kind in spec.kinds and (solvers is None or spec.name in solvers)


def _check_solver(solver: str, penalties) -> tuple[str, str | None]:
    """(solver to run, why it differs from ``solver`` or None) for an objective with ``penalties``.

    Parameters
    ----------
    solver : a registered solver name (not ``auto``: ``resolve_optimizer`` picks that one)
    penalties : the objective's penalties — classes, objects or registered names (``core.penalties``)

    Raises
    ------
    ValueError : unknown solver; a solver that does not handle one of the penalties (and has no
        proximal form that does), naming the solver, the penalty and the solvers that would; a
        solver that needs a separable part on an objective without one.
    """
    spec = solver_spec(solver)
    facts = [_penalty_facts(p) for p in penalties]
    separable = [name for name, kind, _ in facts if kind == "separable"]
    if spec.needs_separable and not separable:
        raise ValueError(f"--optimizer {solver} is for problems with --l1 or bounds; this one has neither")
    reason = None
    if separable and "separable" not in spec.kinds and spec.proximal_form is not None:
        spec, reason = solver_spec(spec.proximal_form), spec.proximal_reason
    for name, kind, solvers in facts:
        if not _allows(spec, kind, solvers):
            fits = [s.name for s in _SOLVERS.values() if all(_allows(s, k, ok) for _, k, ok in facts)]
            raise ValueError(f"--optimizer {spec.name} does not support the {name} penalty ({kind}); "
                             f"solvers that support this objective: {', '.join(fits) or 'none'}")
    return spec.name, reason


check_solver = _check_solver  # the public name (scikit-learn's is private: ``_check_solver``)


def check_config_solver(cfg) -> tuple[str, str | None]:
    """``_check_solver(cfg.optimizer, the penalties cfg asks for)``."""
    return _check_solver(cfg.optimizer, requested_penalties(cfg))


def build_solver(cfg, name: str | None = None) -> Solver:
    """The registered solver ``name`` (default ``cfg.optimizer``) built from the options ``cfg``."""
    return solver_spec(name or cfg.optimizer).build(cfg)


# --------------------------------------------------------------------------- the solvers


def _tol(cfg) -> dict:
    """{"tol": cfg.tol}, or {} for the solver's own default (cfg.tol None)."""
    return {} if cfg.tol is None else {"tol": cfg.tol}


def _mllib_tol(cfg):
    """The Estimator's ``tol`` (read by each solver stricter than MLlib; see ``ml.py``), or None."""
    return getattr(cfg, "mllib_tol", None)


def _kkt(cfg) -> dict:
    return {} if getattr(cfg, "kkt_tol", None) is None else {"kkt_tol": cfg.kkt_tol}


def _second_order_tol(cfg) -> dict:
    m = _mllib_tol(cfg)
    return {"tol": 1e-4 * min(m, 1.0) ** 2} if m is not None else _tol(cfg)


def _build_prox_newton(cfg) -> ProxNewton:
    m = _mllib_tol(cfg)
    return ProxNewton(kkt_tol=1e-4 * m) if m is not None else ProxNewton(**_kkt(cfg))


def _build_owlqn(cfg) -> OWLQN:
    m = _mllib_tol(cfg)
    if m is not None:
        return OWLQN(memory=cfg.lbfgs_memory, kkt_tol=1e-3 * m, tol=min(m, 1.0) ** 2)
    return OWLQN(memory=cfg.lbfgs_memory, **_kkt(cfg), **_tol(cfg))


def _build_orthant_newton(cfg) -> OrthantNewtonCG:
    m = _mllib_tol(cfg)
    if m is not None:
        return OrthantNewtonCG(kkt_tol=1e-3 * m, memory=cfg.lbfgs_memory)
    return OrthantNewtonCG(memory=cfg.lbfgs_memory, **_kkt(cfg))


def _build_sgd(cfg) -> SGD:
    return SGD(learning_rate=cfg.learning_rate, schedule=cfg.schedule, power_t=cfg.power_t,
               decay_rate=cfg.decay_rate, decay_every=cfg.decay_every, momentum=cfg.momentum,
               nesterov=cfg.nesterov, average=cfg.average, batch_fraction=cfg.batch_fraction,
               n_iter_no_change=cfg.n_iter_no_change, **_tol(cfg))


register_solver(SolverSpec("newton", lambda cfg: Newton(**_second_order_tol(cfg)), SMOOTH,
                           proximal_form="prox-newton",
                           proximal_reason="--optimizer newton with an L1 part or bounds: its proximal form",
                           summary="exact Hessian, Cholesky, Armijo"))
register_solver(SolverSpec("newton-cg", lambda cfg: NewtonCG(**_second_order_tol(cfg)), SMOOTH,
                           summary="trust-region Newton-CG"))
register_solver(SolverSpec("lbfgs", lambda cfg: LBFGS(memory=cfg.lbfgs_memory, gtol=cfg.gtol, **_tol(cfg)), SMOOTH,
                           proximal_form="owlqn",
                           proximal_reason="--optimizer lbfgs with an L1 part or bounds: its orthant-wise form "
                                           "(OWL-QN)",
                           summary="full-batch L-BFGS"))
register_solver(SolverSpec("sgd", _build_sgd, SMOOTH, summary="minibatch SGD"))
register_solver(SolverSpec("prox-newton", _build_prox_newton, SMOOTH_AND_SEPARABLE, needs_separable=True,
                           summary="proximal Newton (L1 / bounds)"))
register_solver(SolverSpec("owlqn", _build_owlqn, SMOOTH_AND_SEPARABLE, needs_separable=True,
                           summary="orthant-wise L-BFGS (L1 / bounds)"))
register_solver(SolverSpec("qn-newton-cg", _build_orthant_newton, SMOOTH_AND_SEPARABLE,
                           summary="L-BFGS / OWL-QN, then an orthant-wise projected Newton-CG finish"))
