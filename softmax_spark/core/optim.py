"""Driver-side first-order optimizers as pairs of pure functions (optax style).

A ``GradientTransformation`` is ``init(params) -> state`` and
``update(grads, state, params) -> (updates, state)``; the caller applies ``params + updates``.
States are NamedTuples of numpy arrays and ints, so checkpoints store them without pickle.
Schedules are plain functions of the step t = 0, 1, 2, …

SGD (``sgd``) is W ← W − η_t ∇J_batch (batch of one row = the textbook per-example update);
with momentum μ: v ← μ v + ∇, update −η v (Nesterov: −η (∇ + μ v)).
``polyak_average_init`` / ``polyak_average_update`` keep the running mean of the iterates
(Polyak–Ruppert; with ``eta`` > 0 the polynomial-decay average of Shamir & Zhang, ICML 2013,
which weights recent iterates more), to be reported as the model instead of the last iterate.
``solvers.sgd`` composes these into the SGD solver.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "GradientTransformation",
    "SgdState",
    "AverageState",
    "constant_schedule",
    "invscaling_schedule",
    "step_schedule",
    "make_schedule",
    "sgd",
    "polyak_average_init",
    "polyak_average_update",
]

Schedule = Callable[[int], float]


def constant_schedule(learning_rate: float) -> Schedule:
    return lambda step: learning_rate


def invscaling_schedule(learning_rate: float, power_t: float = 0.5) -> Schedule:
    """η_t = η / (t + 1)^power_t (scikit-learn's 'invscaling')."""
    return lambda step: learning_rate / (step + 1.0) ** power_t


def step_schedule(learning_rate: float, decay_rate: float = 0.5, decay_every: int = 100) -> Schedule:
    """η_t = η · decay_rate^⌊t / decay_every⌋."""
    return lambda step: learning_rate * decay_rate ** (step // decay_every)


def make_schedule(name: str, learning_rate: float, power_t: float = 0.5, decay_rate: float = 0.5,
                  decay_every: int = 100) -> Schedule:
    if name == "constant":
        return constant_schedule(learning_rate)
    if name == "invscaling":
        return invscaling_schedule(learning_rate, power_t)
    if name == "step":
        return step_schedule(learning_rate, decay_rate, decay_every)
    raise ValueError(f"unknown schedule {name!r}; expected constant, invscaling or step")


class GradientTransformation(NamedTuple):
    init: Callable
    update: Callable


class SgdState(NamedTuple):
    step: int
    velocity: np.ndarray  # of shape params.shape; zeros and unused without momentum


def sgd(schedule: Schedule, momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """Minibatch SGD with optional (Nesterov) momentum."""

    def init(params) -> SgdState:
        return SgdState(0, np.zeros_like(np.asarray(params, dtype=np.float64)))

    def update(grads, state: SgdState, params=None):
        lr = schedule(state.step)
        if momentum == 0.0:
            return -lr * grads, SgdState(state.step + 1, state.velocity)
        velocity = momentum * state.velocity + grads
        direction = grads + momentum * velocity if nesterov else velocity
        return -lr * direction, SgdState(state.step + 1, velocity)

    return GradientTransformation(init, update)


class AverageState(NamedTuple):
    count: int
    mean: np.ndarray  # of shape params.shape


def polyak_average_init(params) -> AverageState:
    return AverageState(0, np.array(params, dtype=np.float64, copy=True))


def polyak_average_update(params, state: AverageState, eta: float = 0.0) -> AverageState:
    """Running average of the iterates seen so far (the first call replaces the initial value).

    ``eta`` = 0: the arithmetic mean (Polyak–Ruppert). ``eta`` > 0: the polynomial-decay average
    θ̄_t = (1 − w_t) θ̄_{t−1} + w_t θ_t, w_t = (eta + 1)/(t + eta) (Shamir & Zhang, "Stochastic
    gradient descent for non-smooth optimization", ICML 2013): iterate t gets weight ∝ t^eta
    roughly, so the early, far-from-optimal iterates are forgotten while the minibatch noise of
    the recent ones is still averaged out."""
    count = state.count + 1
    weight = min(1.0, (eta + 1.0) / (count + eta))
    return AverageState(count, state.mean + (np.asarray(params) - state.mean) * weight)
