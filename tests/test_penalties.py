"""The penalty protocol and registry (``core.penalties``: base, l2, l1, bounds, separable): numpy only."""

import numpy as np
import pytest

from core_helpers import central_fd, numpy_problem, softmax_data
from softmax_spark.core import penalties
from softmax_spark.core.errors import InputError
from softmax_spark.core.penalties import (
    L1,
    Bounds,
    L1Penalty,
    L2Penalty,
    PenaltyContext,
    SeparablePenalty,
    SmoothPenalty,
    base,
)
from softmax_spark.fit.config import TrainConfig
from softmax_spark.solvers.registry import check_solver


def test_registry_holds_each_penalty_once_in_order():
    assert list(penalties.registered()) == ["l2", "l1", "bounds"]
    assert penalties.penalty_class("l1") is L1
    with pytest.raises(ValueError, match="unknown penalty 'nope'; registered: l2, l1, bounds"):
        penalties.penalty_class("nope")
    with pytest.raises(ValueError, match="already registered"):
        class Other:  # noqa: D401 - a clash of names is refused
            name, kind = "l2", "smooth"
            requested = from_config = from_dict = classmethod(lambda cls, *a: None)

        base.register(Other)


def test_penalties_follow_the_protocol_of_their_kind():
    assert isinstance(L2Penalty(0.1), SmoothPenalty)
    assert isinstance(L1(0.1), SeparablePenalty) and isinstance(Bounds(lower=0.0), SeparablePenalty)
    assert L2Penalty(0.0).is_zero() and not L2Penalty(1e-300).is_zero()


def test_l2_gradient_and_theta_curvature_match_finite_differences():
    rng = np.random.default_rng(0)
    pen = L2Penalty(0.3, rng.uniform(0.5, 2.0, 4), centred=True)
    W = rng.normal(size=(3, 4))
    fd = central_fd(lambda w: pen.value(w.reshape(3, 4)), W.ravel())
    np.testing.assert_allclose(pen.gradient(W).ravel(), fd, rtol=1e-6, atol=1e-8)
    X, y = softmax_data(n=50, d=4, c=3, seed=1)
    problem = numpy_problem(X, y, l2=0.3)
    pc = problem.precond
    diag = problem.penalty.curvature_in_theta(pc)
    assert diag.shape == (pc.size,) and np.all(diag[-3:] == 0.0)
    np.testing.assert_allclose(diag[:4], 2 * 0.3 / pc.scale**2)


def test_records_round_trip():
    l2 = L2Penalty(0.25, centred=True, standardize=True)
    back = penalties.from_record("l2", l2.to_dict())
    assert (back.l2, back.centred, back.standardize) == (0.25, True, True)
    sep = L1Penalty(0.5, lower=np.zeros((2, 3)), upper_intercept=[1.0, 2.0])
    again = L1Penalty.from_dict(sep.to_dict())
    assert again.to_dict() == sep.to_dict()
    assert sep.to_dict() == {"l1": 0.5, "lower_bounds": [[0.0] * 3] * 2, "upper_bounds": None,
                             "lower_bounds_intercept": None, "upper_bounds_intercept": [1.0, 2.0]}


def test_build_from_options_asks_each_registered_penalty():
    ctx = PenaltyContext(3, 2, col_std=np.array([2.0, 0.5]))
    smooth, sep = penalties.build(TrainConfig(l2=0.1), ctx)
    assert isinstance(smooth, L2Penalty) and sep is None
    smooth, sep = penalties.build(TrainConfig(l2=0.1, l1=0.2, standardize=True, upper_bounds=1.0), ctx)
    np.testing.assert_array_equal(smooth.weights, [4.0, 0.25])  # σ² for L2, σ for L1 (MLlib)
    np.testing.assert_array_equal(sep.gamma(3, 2), np.tile([0.4, 0.1], (3, 1)))
    np.testing.assert_array_equal(sep.upper, np.ones((3, 2)))
    with pytest.raises(InputError, match=r"lower_bounds has shape \(4,\); expected a number or \(3, 2\)"):
        penalties.build(TrainConfig(lower_bounds=[0.0, 0.0, 0.0, 0.0]), ctx)
    with pytest.raises(InputError, match="the lower bounds on coefficients must be ≤ the upper bounds"):
        penalties.build(TrainConfig(lower_bounds=1.0, upper_bounds=0.0), ctx)


def test_separable_parts_prox_and_kkt():
    """The θ term: soft-threshold then clip; the KKT residual is 0 exactly at the prox's fixed point."""
    X, y = softmax_data(n=80, d=3, c=3, seed=2)
    problem = numpy_problem(X, y, l2=0.01, l1=0.05, lower=-0.2, upper=0.3)
    term = problem.nonsmooth
    v = np.linspace(-1, 1, term.gamma.size)
    z = term.prox(v, 0.5)
    assert np.all(z >= term.lo) and np.all(z <= term.hi)
    soft = np.sign(v) * np.maximum(np.abs(v) - 0.5 * term.gamma, 0.0)
    np.testing.assert_array_equal(z, np.clip(soft, term.lo, term.hi))
    # at θ with ∇F = −γ sign(θ) inside (−γ, γ) at zeros, the residual vanishes
    theta = np.zeros_like(v)
    assert np.max(term.residual(theta, 0.5 * term.gamma)) == 0.0
    assert np.max(term.residual(theta, 2.0 * term.gamma + 1.0)) > 0.0


def test_a_new_penalty_is_one_registered_class():
    """A test-only separable penalty (non-negative first class): registered, it is built from the
    options, summed into the θ term and checked against the solvers — nothing else edited."""

    @base.register
    class FirstClassNonNegative:
        name, kind, solvers = "first-class-nonneg", "separable", None

        def value(self, coef):
            return 0.0

        def theta_parts(self, n_classes, n_features):
            lower = np.full((n_classes, n_features), -np.inf)
            lower[0] = 0.0
            return {"lower": lower}

        def to_dict(self):
            return {}

        @classmethod
        def requested(cls, cfg):
            return getattr(cfg, "first_class_nonneg", False)

        @classmethod
        def from_config(cls, cfg, context):
            return cls()

        @classmethod
        def from_dict(cls, record):
            return cls()

    try:
        cfg = TrainConfig(l2=0.1)
        cfg.first_class_nonneg = True
        smooth, sep = penalties.build(cfg, PenaltyContext(2, 2))
        assert isinstance(sep.extra[0], FirstClassNonNegative) and sep.has_bounds
        coef, _ = sep.project(np.array([[-1.0, 2.0], [-1.0, 2.0]]), np.zeros(2))
        np.testing.assert_array_equal(coef, [[0.0, 2.0], [-1.0, 2.0]])
        assert check_solver("newton", [L2Penalty, FirstClassNonNegative]) == (
            "prox-newton", "--optimizer newton with an L1 part or bounds: its proximal form")
        with pytest.raises(ValueError, match="newton-cg does not support the first-class-nonneg penalty"):
            check_solver("newton-cg", ["l2", "first-class-nonneg"])
    finally:
        base.unregister("first-class-nonneg")
    assert list(penalties.registered()) == ["l2", "l1", "bounds"]


def test_old_import_path_keeps_every_name():
    from softmax_spark.core import penalty

    for name in ("L2Penalty", "L1Penalty", "ThetaTerm", "feature_weights", "l1_feature_weights", "kkt_residual"):
        assert getattr(penalty, name) is getattr(penalties, name)
