"""The solver protocol, generic checkpointing of solver state, and the one training loop
(``solvers``, ``loop``) over in-memory problems: no Spark here."""

import json

import numpy as np
import pytest

from core_helpers import classification_data, sklearn_probs
from softmax_spark.core.errors import DivergenceError, NoProgressError
from softmax_spark.fit.loop import TrainingLoop, use_console
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.core.problem import NumpyProblem
from softmax_spark.solvers import LBFGS, SGD, Solver, make_solver, state_from_checkpoint, state_to_checkpoint
from softmax_spark.solvers.lbfgs import LbfgsSolverState
from softmax_spark.solvers.sgd import SgdSolverState


def _problem(X, y, lam=0.01, enabled=True, C=3):
    pen = L2Penalty(lam)
    pc = Preconditioner(C, X.shape[1], X.mean(axis=0), X.var(axis=0), pen, True, False, enabled)
    return NumpyProblem(X, y, None, pc, pen, seed=1)


@pytest.fixture(scope="module")
def data():
    return classification_data(np.random.default_rng(51), n=300, d=5, c=3)


def test_solvers_follow_the_protocol():
    """LBFGS and SGD are Solvers; make_solver picks them by cfg.optimizer with cfg's options."""
    from softmax_spark.fit.config import TrainConfig

    assert isinstance(LBFGS(), Solver) and isinstance(SGD(), Solver)
    lbfgs = make_solver(TrainConfig(optimizer="lbfgs", lbfgs_memory=7, tol=1e-5))
    assert (lbfgs.name, lbfgs.memory, lbfgs.tol) == ("lbfgs", 7, 1e-5)
    sgd = make_solver(TrainConfig(optimizer="sgd", momentum=0.5, average=True, batch_fraction=0.2))
    assert (sgd.name, sgd.momentum, sgd.average, sgd.batch_fraction) == ("sgd", 0.5, True, 0.2)


@pytest.mark.parametrize("state", [
    LbfgsSolverState(np.arange(3.0), np.ones((2, 3)), np.zeros((2, 3)), 1.5, np.ones(3), float("nan"), 4),
    SgdSolverState(np.arange(3.0), 0.25, 7, np.ones(3), 2, np.full(3, 0.5), float("inf"), 1),
])
def test_state_checkpoint_round_trip(state):
    """Any NamedTuple state → (arrays, scalars) → through JSON → the same state, field by field,
    ints as ints; θ is stored under 'theta'."""
    arrays, scalars = state_to_checkpoint(state)
    assert "theta" in arrays
    scalars = json.loads(json.dumps(scalars))
    back = state_from_checkpoint(type(state), arrays, scalars)
    for name, a, b in zip(state._fields, state, back):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif np.isnan(a):
            assert np.isnan(b)
        else:
            assert a == b and type(a) is type(b), name


def test_lbfgs_loop_reaches_sklearn_optimum(data):
    """LBFGS in the loop over a NumpyProblem reaches scikit-learn's optimum (probabilities 1e-6),
    J never increases, and the returned iteration is the last."""
    X, y = data
    problem = _problem(X, y)
    result = TrainingLoop(LBFGS(tol=1e-12, gtol=1e-10), problem, 500).run(np.zeros(problem.n_params))
    objectives = [h["objective"] for h in result.history]
    assert all(b <= a + 1e-15 for a, b in zip(objectives, objectives[1:]))
    assert result.returned_iteration == result.history[-1]["iteration"]
    model = SoftmaxModel(*problem.to_model(result.theta), [0, 1, 2])
    np.testing.assert_allclose(model.predict_proba(X), sklearn_probs(X, y, 0.01).predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_resume_equals_uninterrupted(data, tmp_path, solver):
    """Stopped after 6 iterations with checkpoints every 2, then run again to 10 with the same
    checkpoint directory: the same θ and history as 10 uninterrupted iterations (generic state)."""
    X, y = data

    def make():
        if solver == "lbfgs":
            return LBFGS(tol=0.0)
        return SGD(momentum=0.5, average=True, batch_fraction=0.5, tol=0.0)

    full = TrainingLoop(make(), _problem(X, y), 10).run(np.zeros(18))
    ckpt = str(tmp_path / "ckpt")
    TrainingLoop(make(), _problem(X, y), 6, checkpoint_dir=ckpt, checkpoint_every=2, run_fingerprint="f").run(np.zeros(18))
    problem = _problem(X, y)
    resumed = TrainingLoop(make(), problem, 10, checkpoint_dir=ckpt, checkpoint_every=2, run_fingerprint="f").run(
        np.zeros(18))
    assert [h["iteration"] for h in resumed.history] == list(range(1, 11))
    np.testing.assert_allclose(resumed.theta, full.theta, rtol=0, atol=1e-12)
    assert problem.passes < 10 * 3  # only iterations 7..10 were run


def test_early_stopping_returns_and_records_the_best_iteration():
    """With a validation loss, the loop stops after `patience` iterations without improvement
    and returns the best iterate, recording which (returned_iteration, history 'returned')."""
    rng = np.random.default_rng(4)
    X, y = classification_data(rng, n=60, d=20, c=3)
    Xv, yv = classification_data(np.random.default_rng(5), n=300, d=20, c=3)
    problem = _problem(X, y, lam=0.0)
    validation = _problem(Xv, yv, lam=0.0)
    result = TrainingLoop(LBFGS(tol=0.0, gtol=0.0), problem, 300, validation_loss=lambda t: validation.value_and_grad(
        t)[0], patience=3).run(np.zeros(problem.n_params))
    losses = [h["validation_loss"] for h in result.history]
    best = int(np.argmin(losses))
    assert result.reason.startswith("early stopping") and len(losses) - 1 - best == 3
    assert result.returned_iteration == best + 1
    assert [h["iteration"] for h in result.history if h.get("returned")] == [best + 1]
    assert validation.value_and_grad(result.theta)[0] == pytest.approx(losses[best], rel=1e-12)


def test_no_progress_raises_instead_of_claiming_an_optimum():
    """Issue 16 item 12 without Spark: raw column 5000 ± 1000, no preconditioning: lbfgs raises
    NoProgressError (not 'numerical optimum'); with preconditioning it trains."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=1000)
    X = (5000.0 + 1000.0 * rng.normal(size=1000) + 300.0 * y)[:, None]
    with pytest.warns(Warning):  # scipy's LineSearchWarning on the way
        with pytest.raises(NoProgressError, match="not an optimum"):
            TrainingLoop(LBFGS(), _problem(X, y, lam=1e-4, enabled=False), 100).run(np.zeros(6))
    result = TrainingLoop(LBFGS(), _problem(X, y, lam=1e-4), 100).run(np.zeros(6))
    assert result.history and result.history[-1]["objective"] < np.log(3) - 0.03


def test_sgd_divergence_names_the_iteration(data):
    """A far too large rate raises DivergenceError naming the iteration and the rate."""
    X, y = data
    with pytest.raises(DivergenceError, match=r"at iteration \d+; the learning rate"):
        TrainingLoop(SGD(learning_rate=1e6, tol=0.0), _problem(X * 1e3, y, enabled=False), 200).run(np.zeros(18))


def test_console_lines_go_to_stdout(data, capsys):
    """The per-iteration line reaches the current stdout as 'softmax_spark: iter …', with a
    'stopped:' line at the end."""
    use_console()
    X, y = data
    TrainingLoop(SGD(learning_rate=0.1, tol=0.0), _problem(X, y), 2).run(np.zeros(18))
    out = capsys.readouterr().out
    assert "softmax_spark: iter     1  objective " in out and "lr 1.000e-01" in out
    assert "softmax_spark: stopped: max_iter (2) reached" in out
