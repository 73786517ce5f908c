"""The solver registry and ``check_solver`` (``solvers.registry``): which solver goes with which penalty."""

import pytest

from softmax_spark.core.penalties import L1, Bounds, L2Penalty
from softmax_spark.fit.config import TrainConfig
from softmax_spark.solvers import LBFGS, OWLQN, NewtonCG, ProxNewton, make_solver, resolve_optimizer
from softmax_spark.solvers.registry import check_solver, solver_names, solver_spec


def test_every_solver_is_registered_once():
    assert solver_names() == ["newton", "newton-cg", "lbfgs", "sgd", "prox-newton", "owlqn", "qn-newton-cg"]
    for name in solver_names():
        assert make_solver(TrainConfig(optimizer=name)).name == name


@pytest.mark.parametrize("solver", ["newton", "newton-cg", "lbfgs", "sgd"])
def test_smooth_solvers_take_l2_and_refuse_nothing_smooth(solver):
    assert check_solver(solver, [L2Penalty]) == (solver, None)


@pytest.mark.parametrize("solver, expected", [("newton", "prox-newton"), ("lbfgs", "owlqn"),
                                              ("prox-newton", "prox-newton"), ("owlqn", "owlqn")])
def test_l1_and_bounds_get_a_proximal_solver(solver, expected):
    for separable in (L1, Bounds):
        assert check_solver(solver, [L2Penalty, separable])[0] == expected


@pytest.mark.parametrize("solver", ["newton-cg", "sgd"])
def test_one_error_names_the_solver_and_the_penalty(solver):
    with pytest.raises(ValueError, match=rf"--optimizer {solver} does not support the l1 penalty \(separable\); "
                                         r"solvers that support this objective: prox-newton, owlqn"):
        check_solver(solver, ["l2", "l1"])


def test_proximal_solvers_need_a_separable_part_and_unknown_names_are_listed():
    with pytest.raises(ValueError, match="--optimizer owlqn is for problems with --l1 or bounds; this one has neither"):
        check_solver("owlqn", [L2Penalty])
    with pytest.raises(ValueError, match="unknown optimizer 'adam'; expected auto, newton, newton-cg, lbfgs, sgd, "
                                         "prox-newton, owlqn or qn-newton-cg"):
        solver_spec("adam")


def test_resolve_optimizer_checks_the_options_penalties():
    assert resolve_optimizer(TrainConfig(optimizer="lbfgs", l1=0.1), 100, 3, 4) == (
        "owlqn", "--optimizer lbfgs with an L1 part or bounds: its orthant-wise form (OWL-QN)")
    assert resolve_optimizer(TrainConfig(optimizer="newton-cg"), 100, 3, 4) == ("newton-cg", "chosen by --optimizer")
    assert resolve_optimizer(TrainConfig(l1=0.1), 10_000, 3, 13)[0] == "prox-newton"


def test_the_estimator_tol_reaches_each_solver_as_before():
    cfg = TrainConfig(optimizer="newton-cg", lbfgs_memory=5)
    cfg.mllib_tol = 1e-6
    assert isinstance(make_solver(cfg), NewtonCG) and make_solver(cfg).tol == pytest.approx(1e-16)
    assert make_solver(cfg, "prox-newton").kkt_tol == pytest.approx(1e-10) and isinstance(
        make_solver(cfg, "prox-newton"), ProxNewton)
    ow = make_solver(cfg, "owlqn")
    assert isinstance(ow, OWLQN) and (ow.memory, ow.kkt_tol, ow.tol) == (5, pytest.approx(1e-9), pytest.approx(1e-12))
    lb = make_solver(TrainConfig(optimizer="lbfgs", tol=1e-7, gtol=1e-3))
    assert isinstance(lb, LBFGS) and (lb.tol, lb.gtol) == (1e-7, 1e-3)
