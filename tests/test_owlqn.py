"""OWL-QN (``solvers.owlqn``) on in-memory L1 problems: it reaches prox-newton's optimum."""

import numpy as np

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.solvers import OWLQN, ProxNewton
from softmax_spark.solvers.owlqn import pseudo_gradient


def test_pseudo_gradient_is_zero_inside_the_subdifferential():
    X, y = softmax_data(n=40, d=2, c=2, seed=0)
    term = numpy_problem(X, y, l1=0.5).nonsmooth
    theta = np.zeros(term.gamma.size)
    g = 0.5 * term.gamma  # |g| < γ at 0: 0 is optimal along those coordinates
    assert not np.any(pseudo_gradient(theta, g, term)[term.gamma > 0])


def test_owlqn_matches_prox_newton():
    X, y = softmax_data(n=200, d=5, c=3, seed=6)
    runs = {}
    for solver in (ProxNewton(kkt_tol=1e-10), OWLQN(kkt_tol=1e-8, tol=0.0)):
        problem = numpy_problem(X, y, l2=1e-3, l1=0.02)
        res = TrainingLoop(solver, problem, 500).run(np.zeros(problem.n_params))
        runs[solver.name] = (problem.to_model(res.theta), res.history[-1]["kkt_residual"])
    (Wp, bp), kkt_p = runs["prox-newton"]
    (Wo, bo), kkt_o = runs["owlqn"]
    assert kkt_p <= 1e-10 and kkt_o <= 1e-8
    np.testing.assert_allclose(Wo, Wp, atol=1e-6)
    assert np.array_equal(Wo == 0, Wp == 0)  # the same zeros
