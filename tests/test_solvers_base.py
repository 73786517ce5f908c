"""The solver protocol and generic state checkpointing (``solvers.base``) for every registered solver."""

import numpy as np
import pytest

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.config import TrainConfig
from softmax_spark.solvers import Solver, make_solver
from softmax_spark.solvers.base import SolverStop, solver_result, state_from_checkpoint, state_to_checkpoint
from softmax_spark.solvers.registry import solver_names


@pytest.mark.parametrize("name", solver_names())
def test_every_solver_state_round_trips_through_a_checkpoint(name):
    X, y = softmax_data(n=60, d=3, c=3, seed=4)
    problem = numpy_problem(X, y, l2=0.01, l1=0.01 if name in ("prox-newton", "owlqn") else 0.0)
    solver = make_solver(TrainConfig(optimizer=name))
    assert isinstance(solver, Solver)
    state = solver.init(problem.from_model(np.zeros((3, 3)), np.zeros(3)), problem)
    state, info = solver.step(problem, state, 1)
    arrays, scalars = state_to_checkpoint(state, "s.")
    back = state_from_checkpoint(type(state), arrays, scalars, "s.")
    for a, b in zip(state, back):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(solver_result(solver, back), solver_result(solver, state))


def test_bool_fields_and_stop_reasons():
    from typing import NamedTuple

    class S(NamedTuple):
        theta: np.ndarray
        flag: bool

    with pytest.raises(TypeError, match="is a bool; use an int"):
        state_to_checkpoint(S(np.zeros(1), True))
    assert SolverStop("done").reason == "done"
