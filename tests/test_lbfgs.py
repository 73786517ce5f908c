"""The L-BFGS solver (``solvers.lbfgs``): its two-loop recursion and steps over the numpy core."""

import numpy as np
import pytest

from core_helpers import flat_objective, sklearn_probs, small_problem_data, unpack
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.solvers.lbfgs import lbfgs_init, lbfgs_step, two_loop_direction


@pytest.fixture(scope="module")
def small_problem():
    return small_problem_data()

def test_project_lbfgs_reaches_sklearn_optimum(small_problem):
    """The project's own L-BFGS (lbfgs_init / lbfgs_step loop) over the core reaches the same
    scikit-learn optimum (probabilities within 1e-6) and decreases J monotonically."""
    X, y, lam = small_problem
    fun = flat_objective(X, y, None, lam, True, 3)
    theta0 = np.zeros(3 * 5 + 3)
    f, g = fun(theta0)
    state = lbfgs_init(f, g)
    theta = theta0
    objectives = [f]
    for _ in range(500):
        if np.linalg.norm(state.grad) <= 1e-8:
            break
        theta, state, step = lbfgs_step(fun, theta, state)
        objectives.append(state.objective)
        if step == 0.0:
            break
    assert np.linalg.norm(state.grad) <= 1e-7
    assert all(b <= a + 1e-15 for a, b in zip(objectives, objectives[1:]))
    W, b = unpack(theta, 3, 5, True)
    est = sklearn_probs(X, y, lam)
    np.testing.assert_allclose(SoftmaxModel(W, b, [0, 1, 2]).predict_proba(X), est.predict_proba(X), atol=1e-6)


def test_two_loop_direction_on_quadratic():
    """With pairs from a quadratic f = ½θᵀAθ (A diagonal, n pairs along the axes), the two-loop
    recursion gives the exact Newton direction −A⁻¹∇f; with no pairs it is −∇f."""
    A = np.diag([1.0, 4.0, 10.0])
    S = np.eye(3)
    Y = S @ A
    g = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(two_loop_direction(g, S, Y), -np.linalg.solve(A, g), rtol=1e-14)
    np.testing.assert_array_equal(two_loop_direction(g, S[:0], Y[:0]), -g)

