"""The training loop (``fit.loop``) over in-memory problems: history, max_iter, checkpoints and resume."""

import numpy as np

from core_helpers import numpy_problem, softmax_data
from softmax_spark.fit.loop import TrainingLoop
from softmax_spark.solvers import LBFGS


def _data():
    return softmax_data(n=120, d=3, c=3, seed=7)


def test_history_has_one_record_per_iteration_and_max_iter_stops():
    X, y = _data()
    problem = numpy_problem(X, y)
    res = TrainingLoop(LBFGS(), problem, 3).run(np.zeros(problem.n_params))
    assert res.reason == "max_iter (3) reached" and [h["iteration"] for h in res.history] == [1, 2, 3]
    assert res.returned_iteration == 3 and res.history[-1]["returned"]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    X, y = _data()
    whole = TrainingLoop(LBFGS(), numpy_problem(X, y), 8).run(np.zeros(12))
    TrainingLoop(LBFGS(), numpy_problem(X, y), 4, checkpoint_dir=str(tmp_path), checkpoint_every=2,
                 run_fingerprint="run").run(np.zeros(12))
    resumed = TrainingLoop(LBFGS(), numpy_problem(X, y), 8, checkpoint_dir=str(tmp_path), checkpoint_every=2,
                           run_fingerprint="run").run(np.zeros(12))
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    assert len(resumed.history) == len(whole.history)


def test_validation_loss_returns_the_best_iteration():
    X, y = _data()
    problem = numpy_problem(X, y)
    losses = iter([3.0, 1.0, 2.0, 2.5, 2.6, 2.7])
    res = TrainingLoop(LBFGS(), problem, 6, validation_loss=lambda theta: next(losses), patience=10).run(
        np.zeros(problem.n_params))
    assert res.returned_iteration == 2
