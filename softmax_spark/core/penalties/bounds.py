"""Box constraints as a penalty: the indicator of lower ≤ W ≤ upper, lower_b ≤ b ≤ upper_b.

0 inside the box, +∞ outside; its proximal step is the projection (clipping) and its
subdifferential at a point on a bound is the normal cone ((−∞, 0] at an active lower bound,
[0, ∞) at an active upper one). MLlib's ``lowerBoundsOnCoefficients`` etc. (a bound None:
unbounded on that side); shapes (C, D) for the coefficients, (C,) for the intercepts.
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.core.penalties.base import PenaltyContext, _option, register

__all__ = ["Bounds", "BOUND_OPTIONS"]

BOUND_OPTIONS = ("lower_bounds", "upper_bounds", "lower_bounds_intercept", "upper_bounds_intercept")


def _as_array(value):
    return None if value is None else np.asarray(value, dtype=np.float64)


@register
class Bounds:
    """indicator(lower ≤ W ≤ upper, lower_intercept ≤ b ≤ upper_intercept) (a ``base.SeparablePenalty``).

    Parameters
    ----------
    lower, upper : None, a float or an array broadcastable to (C, D)
    lower_intercept, upper_intercept : None, a float or an array broadcastable to (C,)

    Raises
    ------
    ValueError : a lower bound exceeds its upper bound
    """

    name = "bounds"
    kind = "separable"
    solvers = None  # every solver that handles a separable part

    def __init__(self, lower=None, upper=None, lower_intercept=None, upper_intercept=None):
        self.lower, self.upper = _as_array(lower), _as_array(upper)
        self.lower_intercept, self.upper_intercept = _as_array(lower_intercept), _as_array(upper_intercept)
        for lo, hi, what in ((self.lower, self.upper, "coefficients"),
                             (self.lower_intercept, self.upper_intercept, "intercepts")):
            if lo is not None and hi is not None and np.any(np.asarray(lo) > np.asarray(hi)):
                raise ValueError(f"the lower bounds on {what} must be ≤ the upper bounds")

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.lower, self.upper, self.lower_intercept, self.upper_intercept))

    @property
    def has_intercept_bounds(self) -> bool:
        return self.lower_intercept is not None or self.upper_intercept is not None

    @staticmethod
    def box(value, shape, fill) -> np.ndarray:
        """``value`` broadcast to ``shape`` as float64, or ``fill`` everywhere when None."""
        return np.full(shape, fill) if value is None else np.broadcast_to(value, shape).astype(np.float64)

    def value(self, coef) -> float:
        """0 (the indicator at a feasible point; the solvers keep their iterates feasible)."""
        return 0.0

    def project(self, coef, intercept):
        """(coef, intercept) clipped into the box."""
        C, D = np.shape(coef)
        coef = np.clip(coef, self.box(self.lower, (C, D), -np.inf), self.box(self.upper, (C, D), np.inf))
        intercept = np.clip(intercept, self.box(self.lower_intercept, (C,), -np.inf),
                            self.box(self.upper_intercept, (C,), np.inf))
        return coef, intercept

    def theta_parts(self, n_classes: int, n_features: int) -> dict:
        """{"lower", "upper": (C, D); "lower_intercept", "upper_intercept": (C,)} (±inf where unbounded)."""
        C, D = n_classes, n_features
        return {"lower": self.box(self.lower, (C, D), -np.inf), "upper": self.box(self.upper, (C, D), np.inf),
                "lower_intercept": self.box(self.lower_intercept, (C,), -np.inf),
                "upper_intercept": self.box(self.upper_intercept, (C,), np.inf)}

    def to_dict(self) -> dict:
        def listed(v):
            return None if v is None else np.asarray(v).tolist()

        return {"lower_bounds": listed(self.lower), "upper_bounds": listed(self.upper),
                "lower_bounds_intercept": listed(self.lower_intercept),
                "upper_bounds_intercept": listed(self.upper_intercept)}

    @classmethod
    def from_dict(cls, record: dict) -> "Bounds":
        return cls(record.get("lower_bounds"), record.get("upper_bounds"), record.get("lower_bounds_intercept"),
                   record.get("upper_bounds_intercept"))

    @classmethod
    def requested(cls, cfg) -> bool:
        return any(_option(cfg, name) is not None for name in BOUND_OPTIONS)

    @classmethod
    def shaped_options(cls, cfg, context: PenaltyContext) -> dict:
        """The four bound options broadcast to (C, D) / (C,) (None where unset). ``InputError``
        naming the option when a shape does not fit, or when ``--parametrization reference``'s
        pinned last class (0) is outside a bound."""
        C, D = context.n_classes, context.n_features

        def shaped(name, shape):
            value = _option(cfg, name)
            if value is None:
                return None
            arr = np.asarray(value, dtype=np.float64)
            try:
                return np.broadcast_to(arr, shape).copy()
            except ValueError:
                raise InputError(f"{name} has shape {arr.shape}; expected a number or {shape} "
                                 f"({C} classes × {D} features)") from None

        bounds = dict(lower=shaped("lower_bounds", (C, D)), upper=shaped("upper_bounds", (C, D)),
                      lower_intercept=shaped("lower_bounds_intercept", (C,)),
                      upper_intercept=shaped("upper_bounds_intercept", (C,)))
        if context.reference:  # the pinned last row is 0: its bounds must allow it
            for key, value in bounds.items():
                if value is not None:
                    last = value[-1]
                    if np.any(last > 0) if key.startswith("lower") else np.any(last < 0):
                        raise InputError(f"{key} excludes 0 on the last class, which --parametrization reference "
                                         "pins to 0")
        return bounds

    @classmethod
    def from_config(cls, cfg, context: PenaltyContext) -> "Bounds":
        try:
            return cls(**cls.shaped_options(cfg, context))
        except ValueError as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Bounds(active={self.active})"
