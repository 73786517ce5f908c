"""Newton and Newton-CG solvers against scikit-learn's optimum (pure numpy; no Spark).

``ArrayProblem`` is ``problem.NumpyProblem`` (the same kernels as the distributed problem, a
real ``Preconditioner`` and the L2 penalty) over in-memory X, y, w, in row chunks. Each method
call counts one pass, like a distributed pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets
from sklearn.linear_model import LogisticRegression

from softmax_spark.core.errors import NoProgressError
from softmax_spark.core.loss import softmax
from softmax_spark.core.penalty import L2Penalty
from softmax_spark.core.problem import NumpyProblem
from softmax_spark.core.precondition import Preconditioner
from softmax_spark.solvers.lbfgs import lbfgs_init, lbfgs_step
from softmax_spark.solvers.auto import choose_solver
from softmax_spark.solvers.newton import Newton
from softmax_spark.solvers.newton_cg import NewtonCG

LAMBDA = 1e-4
TOL = 1e-20  # Newton: tighter than the default 1e-14 (costs one more iteration), for 1e-8 in probabilities with margin


class ArrayProblem(NumpyProblem):
    """``problem.NumpyProblem`` over in-memory X, y, w with a real ``Preconditioner`` and the L2
    penalty λ‖W‖², in row chunks (each method call one pass, like a distributed pass), plus the
    probabilities at θ for the comparisons."""

    def __init__(self, X, y, w=None, l2=LAMBDA, fit_intercept=True, reference=False, precondition=True, chunk=500):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        n_classes, n_features = int(y.max()) + 1, X.shape[1]
        s = np.ones(len(y)) if w is None else w
        mean = s @ X / s.sum()
        second = s @ (X - mean) ** 2 / s.sum() if fit_intercept else s @ X**2 / s.sum()
        penalty = L2Penalty(l2, centred=reference)
        precond = Preconditioner(n_classes, n_features, mean, second, penalty, fit_intercept, reference,
                                 enabled=precondition)
        super().__init__(X, y, w, precond, penalty, block_rows=chunk)
        self.l2 = l2

    def proba(self, theta, X=None):
        coef, intercept = self.precond.to_model(theta)
        return softmax((self.X if X is None else X) @ coef.T + intercept)


def solve(solver, problem, max_iter=200):
    """The training loop's use of the Solver protocol. Returns (θ, iterations, stop reason)."""
    state = solver.init(np.zeros(problem.n_params), problem)
    history = []
    for it in range(1, max_iter + 1):
        state, extras = solver.step(problem, state, it)
        assert state._fields[0] == "theta"
        assert all(isinstance(v, (np.ndarray, float, int)) for v in state), "checkpointable fields only"
        history.append(extras)
        reason = solver.stop_reason(state, history)
        if reason:
            return state.theta, it, reason
    raise AssertionError(f"{solver.name} did not converge in {max_iter} iterations")


def lbfgs_iterations_to(problem, target_proba, atol, max_iter=3000):
    """Iterations ``softmax_spark.lbfgs`` needs to bring the probabilities within ``atol``."""
    theta = np.zeros(problem.n_params)
    state = lbfgs_init(*problem.value_and_grad(theta))
    for it in range(1, max_iter + 1):
        theta, state, alpha = lbfgs_step(problem.value_and_grad, theta, state)
        if np.max(np.abs(problem.proba(theta) - target_proba)) <= atol:
            return it
        if alpha == 0.0:
            return f">{it} (line search stalled)"
    return f">{max_iter}"


def badly_scaled(n=2000, D=12, C=5, seed=0):
    """Raw scales 1e-2 … 1e4, one class at ~80 %, correlated columns, nearly separable."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, D)) @ (np.eye(D) + 0.9 * rng.normal(size=(D, D)) / np.sqrt(D))
    W = rng.normal(size=(C, D)) * 3.0
    logits = latent @ W.T
    logits[:, 0] += np.quantile(logits.max(1) - logits[:, 0], 0.8)  # the majority class
    y = logits.argmax(1)
    flip = rng.random(n) < 0.01  # a few label flips keep it only nearly separable
    y[flip] = rng.integers(0, C, flip.sum())
    scales = np.logspace(-2, 4, D)
    X = latent * scales + rng.normal(size=D) * scales * 3
    return X, y


def sklearn_proba(X, y, w=None, l2=LAMBDA):
    """scikit-learn's optimum of the same objective: C Σ s_i loss_i + ½‖W‖² ⇔ ours with
    λ = 1/(2 C Σs); binary problems fit one vector w = w₁ − w₂ whose ½‖w‖² equals our λ(‖w₁‖²+‖w₂‖²)
    at its optimum (w₁ = −w₂) when C = 1/(λ Σs)."""
    total = len(y) if w is None else w.sum()
    n_classes = int(y.max()) + 1
    C = 1.0 / (l2 * total) if n_classes == 2 else 1.0 / (2 * l2 * total)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=10000, solver="newton-cholesky")
    clf.fit(X, y, sample_weight=w)
    return clf.predict_proba(X)


DATASETS = {
    "badly_scaled": badly_scaled,
    "wine": lambda: datasets.load_wine(return_X_y=True),
    "iris": lambda: datasets.load_iris(return_X_y=True),
    "breast_cancer": lambda: datasets.load_breast_cancer(return_X_y=True),
    "digits": lambda: datasets.load_digits(return_X_y=True),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.long) if n == "digits" else n for n in DATASETS])
def test_newton_solvers_reach_sklearn_optimum(name, capsys):
    X, y = DATASETS[name]()
    X = np.asarray(X, dtype=np.float64)
    target = sklearn_proba(X, y)
    rows = []
    for solver in (Newton(tol=TOL), NewtonCG()):
        problem = ArrayProblem(X, y)
        theta, iterations, reason = solve(solver, problem)
        gap = float(np.max(np.abs(problem.proba(theta) - target)))
        rows.append(f"{name:14s} {solver.name:9s} iterations {iterations:3d} passes {problem.passes:4d} "
                    f"max|Δp| {gap:.1e}  ({reason})")
        # newton-cg on the badly scaled set: κ ~ 1e12 in θ (eigenvalues down to 1e-12 along nearly
        # separating directions) is beyond what CG resolves in max_cg products; it still meets the
        # issue's 1e-6 target there. Elsewhere it stops at gmtol (gᵀM⁻¹g ≤ 1e-15), ~1e-8 from the
        # optimum, where rounding decides the side of 1e-8 (digits: 8.5e-9 or 1.2e-8 as the kernel's
        # sums change order): the README's 4e-8. newton's exact steps go below 1e-8
        if solver.name == "newton-cg":
            limit = 1e-6 if name == "badly_scaled" else 4e-8
        else:
            limit = 1e-8
        assert gap <= limit, rows[-1]
    lbfgs_its = lbfgs_iterations_to(ArrayProblem(X, y), target, 1e-8, max_iter=300)
    rows.append(f"{name:14s} lbfgs     iterations to max|Δp| ≤ 1e-8: {lbfgs_its}")
    with capsys.disabled():
        print("\n" + "\n".join(rows))


@pytest.mark.parametrize("fit_intercept,reference", [(True, True), (False, False)])
def test_newton_variants_weights_and_parameterisations(fit_intercept, reference):
    """Sample weights, the reference parameterisation, no intercept: both solvers agree with the
    optimality condition (zero gradient in model coordinates) and with each other."""
    X, y = badly_scaled(n=600, D=6, C=3, seed=3)
    w = np.random.default_rng(0).uniform(0.1, 4.0, size=len(y))
    thetas = []
    for solver in (Newton(tol=TOL), NewtonCG()):
        problem = ArrayProblem(X, y, w, fit_intercept=fit_intercept, reference=reference)
        theta, *_ = solve(solver, problem)
        thetas.append(problem.proba(theta))
    np.testing.assert_allclose(thetas[0], thetas[1], rtol=0, atol=1e-8)
    if fit_intercept and not reference:
        np.testing.assert_allclose(thetas[0], sklearn_proba(X, y, w), rtol=0, atol=1e-8)


def test_newton_without_penalty_handles_the_flat_directions():
    """λ = 0 (W's class-sum directions flat too) on data that is not separable."""
    X, y = datasets.load_iris(return_X_y=True)
    rng = np.random.default_rng(1)
    y = np.where(rng.random(len(y)) < 0.2, rng.integers(0, 3, len(y)), y)  # overlap: a finite optimum
    for solver in (Newton(), NewtonCG()):
        problem = ArrayProblem(X, y, l2=0.0)
        theta, iterations, reason = solve(solver, problem)
        _, grad = problem.value_and_grad(theta)
        assert np.max(np.abs(grad)) < 1e-7, (solver.name, reason)


def test_solvers_raise_no_progress_on_a_broken_problem():
    """A problem whose gradient points the wrong way (J rises along every proposed step):
    NoProgressError, never a reported optimum."""
    X, y = datasets.load_iris(return_X_y=True)

    class Broken(ArrayProblem):
        def value_and_grad(self, theta, iteration=0, batch_fraction=1.0):
            f, g = ArrayProblem.value_and_grad(self, theta)
            return f, -g

        def hessian(self, theta, iteration=0):
            f, g, H = ArrayProblem.hessian(self, theta)
            return f, -g, H

    for solver in (Newton(), NewtonCG()):
        with pytest.raises(NoProgressError):
            solve(solver, Broken(X, y))


def test_choose_solver():
    name, reason = choose_solver(2000, 5, 20, True)
    assert name == "newton" and reason
    assert choose_solver(58_000, 7, 9, True)[0] == "newton"
    assert choose_solver(1_000_000, 10, 64, True)[0] == "lbfgs"
    assert choose_solver(1797, 10, 64, True)[0] == "newton"
    assert choose_solver(50_000, 20, 5000, True, density=0.01)[0] == "qn-newton-cg"


@pytest.mark.parametrize("name", ["scaled_80pct_5c", pytest.param("scaled_corr_7c", marks=pytest.mark.long),
                                  pytest.param("bands_6c", marks=pytest.mark.long),
                                  pytest.param("digits", marks=pytest.mark.long), "wine", "iris", "breast_cancer"])
def test_newton_cg_terminates_at_the_exact_optimum_in_process(name):
    """Issue 13: newton-cg with default settings terminates with a convergence reason (never spins)
    and its probabilities are within 1e-6 of the exact optimum (NumpyProblem, no Spark; the slow
    letters_26c set (~40 s, 2262 passes) was measured the same way, see newton_cg's docstring)."""
    from test_newton_spark import DATASETS as HARD, exact_optimum, proba

    X, y = HARD[name]()
    X = np.asarray(X, dtype=np.float64)
    target = proba(*exact_optimum(X, y), X)
    mean = X.mean(0)
    penalty = L2Penalty(LAMBDA)
    precond = Preconditioner(int(y.max()) + 1, X.shape[1], mean, ((X - mean) ** 2).mean(0), penalty, True, False)
    problem = NumpyProblem(X, y, None, precond, penalty)
    theta, iterations, reason = solve(NewtonCG(), problem, max_iter=40)
    gap = float(np.max(np.abs(proba(*problem.to_model(theta), X) - target)))
    assert gap <= 1e-6, (name, iterations, problem.passes, gap, reason)
