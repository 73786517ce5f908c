"""The optax-style first-order transformations (``optim``): schedules, SGD, momentum, averaging."""

import numpy as np
import pytest

from softmax_spark.core.optim import (
    AverageState,
    SgdState,
    constant_schedule,
    invscaling_schedule,
    make_schedule,
    polyak_average_init,
    polyak_average_update,
    sgd,
    step_schedule,
)


def test_schedules():
    """constant: η; invscaling: η/(t+1)^power_t; step: η·rate^⌊t/every⌋; make_schedule by name;
    an unknown name is a ValueError."""
    assert [constant_schedule(0.3)(t) for t in (0, 5, 100)] == [0.3, 0.3, 0.3]
    inv = invscaling_schedule(1.0, 0.5)
    assert inv(0) == 1.0 and inv(3) == pytest.approx(0.5) and inv(99) == pytest.approx(0.1)
    st = step_schedule(0.8, 0.5, 10)
    assert [st(t) for t in (0, 9, 10, 19, 20, 35)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.1]
    assert make_schedule("invscaling", 2.0, power_t=1.0)(3) == pytest.approx(0.5)
    assert make_schedule("step", 1.0, decay_rate=0.1, decay_every=2)(4) == pytest.approx(0.01)
    assert make_schedule("constant", 0.7)(1000) == 0.7
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("cosine", 1.0)


def test_plain_sgd_update():
    """sgd without momentum: update = −η_t g, the step counter advances, params untouched."""
    opt = sgd(step_schedule(1.0, 0.5, 1))
    params = np.array([1.0, 2.0])
    state = opt.init(params)
    assert isinstance(state, SgdState) and state.step == 0
    np.testing.assert_array_equal(state.velocity, [0.0, 0.0])
    g = np.array([2.0, -4.0])
    u, state = opt.update(g, state, params)
    np.testing.assert_array_equal(u, [-2.0, 4.0])
    u, state = opt.update(g, state, params)
    np.testing.assert_array_equal(u, [-1.0, 2.0])
    assert state.step == 2
    np.testing.assert_array_equal(params, [1.0, 2.0])


def test_momentum_closed_form():
    """Heavy-ball momentum μ with a constant gradient g: v_t = g (1 + μ + … + μ^t), update −η v_t."""
    eta, mu = 0.1, 0.5
    opt = sgd(constant_schedule(eta), momentum=mu)
    state = opt.init(np.zeros(1))
    g = np.array([1.0])
    expected_v = 0.0
    for _ in range(5):
        u, state = opt.update(g, state)
        expected_v = mu * expected_v + 1.0
        assert u[0] == pytest.approx(-eta * expected_v, rel=1e-15)
        assert state.velocity[0] == pytest.approx(expected_v, rel=1e-15)
    assert state.step == 5


def test_nesterov_closed_form():
    """Nesterov momentum: v ← μ v + g, update = −η (g + μ v). With g = 1, μ = ½, η = 1 the first
    updates are −1.5, −1.75, −1.875 (v = 1, 1.5, 1.75)."""
    opt = sgd(constant_schedule(1.0), momentum=0.5, nesterov=True)
    state = opt.init(np.zeros(2))
    out = []
    for _ in range(3):
        u, state = opt.update(np.ones(2), state)
        out.append(u[0])
    assert out == [-1.5, -1.75, -1.875]
    np.testing.assert_array_equal(state.velocity, [1.75, 1.75])


def test_sgd_with_momentum_minimises_quadratic():
    """SGD (plain, momentum, Nesterov) on f(θ) = ½‖θ − a‖² with a constant step converges to a."""
    a = np.array([3.0, -1.0])
    for kw in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}):
        opt = sgd(constant_schedule(0.1), **kw)
        theta = np.zeros(2)
        state = opt.init(theta)
        for _ in range(500):
            u, state = opt.update(theta - a, state, theta)
            theta = theta + u
        np.testing.assert_allclose(theta, a, atol=1e-8)


def test_polyak_average_is_the_mean():
    """polyak_average_update keeps the arithmetic mean of the iterates passed to it (the initial
    value is replaced by the first iterate)."""
    rng = np.random.default_rng(81)
    iterates = rng.normal(size=(20, 3, 2))
    state = polyak_average_init(np.full((3, 2), 99.0))
    assert isinstance(state, AverageState) and state.count == 0
    for k, it in enumerate(iterates, start=1):
        state = polyak_average_update(it, state)
        assert state.count == k
        np.testing.assert_allclose(state.mean, iterates[:k].mean(axis=0), rtol=1e-13, atol=1e-15)

