"""Minibatch SGD (``solvers.sgd``): its stop test and its average."""

import numpy as np

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.solvers import SGD, Newton


def test_averaged_sgd_gets_close_to_the_optimum():
    X, y = softmax_data(n=300, d=3, c=3, seed=5)
    problem = numpy_problem(X, y, l2=0.01)
    exact = TrainingLoop(Newton(), problem, 50).run(np.zeros(problem.n_params)).theta
    problem = numpy_problem(X, y, l2=0.01)
    res = TrainingLoop(SGD(average=True, batch_fraction=0.5, tol=0.0), problem, 300).run(np.zeros(problem.n_params))
    f_exact = problem.value_and_grad(exact)[0]
    assert problem.value_and_grad(res.theta)[0] - f_exact < 1e-3
    assert len(res.history) == 300
