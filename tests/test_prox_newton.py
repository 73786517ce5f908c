"""Proximal Newton (``solvers.prox_newton``): the coordinate-descent subproblem and the bounded fit."""

import numpy as np
from scipy.optimize import minimize

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.solvers import ProxNewton
from softmax_spark.solvers.prox_newton import solve_quadratic_model


def test_the_quadratic_model_is_solved_to_its_kkt_tolerance():
    X, y = softmax_data(n=80, d=3, c=3, seed=1)
    problem = numpy_problem(X, y, l2=0.01, l1=0.05, lower=-0.3, upper=0.3)
    term = problem.nonsmooth
    theta = np.zeros(problem.n_params)
    f, g, H = problem.hessian(theta)
    z, delta, rounds = solve_quadratic_model(g, H, theta, term, 1e-12, null_space=problem.null_space)
    assert delta < 0 and rounds >= 1 and np.all(z >= term.lo) and np.all(z <= term.hi)
    r = g + H @ (z - theta)
    assert np.max(term.residual(z, r)) <= 1e-12


def test_a_bounded_fit_stays_inside_and_matches_scipy_lbfgsb():
    X, y = softmax_data(n=150, d=3, c=3, seed=2, scale=2.0)
    problem = numpy_problem(X, y, l2=1e-3, lower=-0.5, upper=0.5)
    res = TrainingLoop(ProxNewton(), problem, 100).run(np.zeros(problem.n_params))
    term = problem.nonsmooth
    assert np.all(res.theta >= term.lo) and np.all(res.theta <= term.hi)

    def fun(t):
        return problem.value_and_grad(t)

    ref = minimize(fun, np.zeros(problem.n_params), jac=True, method="L-BFGS-B",
                   bounds=list(zip(term.lo, term.hi)), options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    assert problem.value_and_grad(res.theta)[0] <= ref.fun + 1e-12
