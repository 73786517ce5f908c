"""Trust-region Newton-CG (``solvers.newton_cg``): Steihaug's CG and the fit against Newton's."""

import numpy as np

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.solvers import Newton, NewtonCG
from softmax_spark.solvers.newton_cg import steihaug_cg


def test_steihaug_cg_solves_an_spd_system_inside_the_region():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    A = A @ A.T + 6 * np.eye(6)
    g = rng.normal(size=6)
    out = steihaug_cg(lambda v: A @ v, g, np.ones(6), 1e6, 1e-12, 50)
    s = out[0]
    np.testing.assert_allclose(A @ s, -g, atol=1e-8)


def test_newton_cg_reaches_newtons_optimum():
    X, y = softmax_data(n=200, d=4, c=3, seed=3, scale=2.0)
    thetas = []
    for solver in (Newton(), NewtonCG()):
        problem = numpy_problem(X, y, l2=1e-3)
        thetas.append(TrainingLoop(solver, problem, 200).run(np.zeros(problem.n_params)).theta)
    np.testing.assert_allclose(thetas[1], thetas[0], atol=1e-6)
