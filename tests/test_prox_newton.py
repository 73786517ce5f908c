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


def test_a_sub_sampled_reused_hessian_reaches_the_same_certified_optimum_with_fewer_hessian_passes():
    """hessian_stride / reuse_ratio change the quadratic model only: J, ∇F and the KKT residual are
    exact, so the fit stops on the same certificate at the same optimum, with fewer Hessian passes."""
    X, y = softmax_data(n=6000, d=12, c=4, seed=3, scale=1.5)

    def fit(solver):
        problem = numpy_problem(X, y, l2=1e-4, l1=2e-3)
        calls = []
        hessian = problem.hessian
        problem.hessian = lambda *a, **k: calls.append(k.get("stride", 1)) or hessian(*a, **k)
        res = TrainingLoop(solver, problem, 200).run(np.zeros(problem.n_params))
        return res, calls

    exact, exact_calls = fit(ProxNewton(hessian_stride=1, reuse_ratio=0.0))
    sampled, sampled_calls = fit(ProxNewton(hessian_stride=4, reuse_ratio=0.5))
    # the sampled fit ends where J can fall no further (its predicted decrease 0), KKT ~1e-10
    assert exact.history[-1]["kkt_residual"] <= 1e-10 and sampled.history[-1]["kkt_residual"] <= 1e-9
    N = numpy_problem(X, y, l2=1e-4, l1=2e-3).null_space  # J is constant along these (intercept shifts)
    diff = sampled.theta - exact.theta
    np.testing.assert_allclose(diff - N @ (N.T @ diff), 0.0, atol=1e-8)
    assert set(sampled_calls) == {4} and len(sampled_calls) < len(exact_calls)


def test_the_default_plan_comes_from_the_problems_shape():
    X, y = softmax_data(n=300, d=3, c=3, seed=4)
    problem = numpy_problem(X, y, l2=1e-3, l1=1e-2)
    assert ProxNewton().plan(problem) == (1, 0.0)  # small: the exact Hessian at every iterate
    problem.n_rows = 1_000_000
    stride, _ = ProxNewton().plan(problem)
    assert stride > 1
    assert ProxNewton(hessian_stride=2, reuse_ratio=0.25).plan(problem) == (2, 0.25)
