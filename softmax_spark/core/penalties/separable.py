"""The separable (non-smooth) part of the objective as one term: its KKT residual, its form over θ.

Every registered penalty of kind ``"separable"`` (``l1.L1``, ``bounds.Bounds``, …) gives, per
coordinate, a weight γ of |·| and an interval [lo, hi]. ``L1Penalty`` adds the weights and
intersects the intervals (model coordinates); ``ThetaTerm`` is the same sum over the optimizer's
θ, what the proximal solvers (prox-newton, owlqn) use: its ``prox`` (soft-threshold then clip),
``project`` and per-coordinate KKT ``residual``.
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.penalties.bounds import Bounds
from softmax_spark.core.penalties.l1 import L1

__all__ = ["L1Penalty", "ThetaTerm", "kkt_residual"]


def kkt_residual(coef, intercept, grad_coef, grad_intercept, gamma_coef, lower=None, upper=None,
                 lower_intercept=None, upper_intercept=None, fit_intercept: bool = True) -> np.ndarray:
    """Per-coordinate KKT residual of min F(W, b) + Σ γ_cj |w_cj| s.t. bounds, in model coordinates.

    For each coordinate: the distance of −∂F to the subdifferential of the non-smooth part there
    (the interval [a, b] of γ·∂|w| plus the normal cone of the box: (−∞, 0] at an active lower
    bound, [0, ∞) at an active upper one). Zero exactly at an optimum of the convex problem.
    Returns (residual of coef of shape (C, D), residual of intercept of shape (C,)); the
    intercept part is |∂F/∂b| (0 without an intercept) unless it has bounds."""
    def one(w, g, gam, lo, hi):
        w = np.asarray(w, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        gam = np.broadcast_to(np.asarray(gam, dtype=np.float64), w.shape)
        a = np.where(w > 0, gam, -gam)  # lower end of γ ∂|w|
        b = np.where(w < 0, -gam, gam)  # upper end
        if lo is not None:
            a = np.where(w <= lo, -np.inf, a)
        if hi is not None:
            b = np.where(w >= hi, np.inf, b)
        return np.maximum(np.maximum(a + g, -g - b), 0.0)

    res_coef = one(coef, grad_coef, gamma_coef, lower, upper)
    if not fit_intercept:
        return res_coef, np.zeros(np.shape(intercept))
    res_int = one(intercept, grad_intercept, 0.0, lower_intercept, upper_intercept)
    return res_coef, res_int


class L1Penalty:
    """All the separable (non-smooth) penalties of one objective, in model coordinates:

        R(W, b) = λ₁ Σ_cj ω_j |w_cj|  +  indicator(lower ≤ W ≤ upper, lower_b ≤ b ≤ upper_b)
                  (+ any further registered separable penalty, ``extra``)

    The name is historical (it was L1 plus bounds); the parts are ``l1.L1`` and ``bounds.Bounds``.
    With ``L2Penalty`` (the smooth part) this is MLlib's elastic net: regParam·(α‖W‖₁ +
    (1−α)/2‖W‖²) is λ₁ = regParam·α, λ₂ = regParam·(1−α)/2 (multinomial) — see ``ml`` for the
    binomial mapping. The intercept is never penalised. Bounds are optional (None: unbounded);
    ``lower``/``upper`` broadcast to (C, D), the intercept ones to (C,). The weights γ of the parts
    add up and their boxes intersect.

    Parameters
    ----------
    l1 : λ₁ ≥ 0
    weights : ndarray (D,) — ω_j (``l1_feature_weights``; None: ones)
    lower, upper : None, a float or an array broadcastable to (C, D)
    lower_intercept, upper_intercept : None, a float or an array broadcastable to (C,)
    extra : further ``base.SeparablePenalty`` objects
    """

    name = "separable"
    kind = "separable"

    def __init__(self, l1: float = 0.0, weights=None, lower=None, upper=None, lower_intercept=None,
                 upper_intercept=None, extra=()):
        self.l1_part = L1(l1, weights)
        self.bounds = Bounds(lower, upper, lower_intercept, upper_intercept)
        self.extra = list(extra)

    @classmethod
    def from_parts(cls, parts) -> "L1Penalty | None":
        """The sum of the separable penalties ``parts`` (None when there are none)."""
        parts = list(parts)
        if not parts:
            return None
        l1 = next((p for p in parts if isinstance(p, L1)), None)
        bounds = next((p for p in parts if isinstance(p, Bounds)), None)
        out = cls(extra=[p for p in parts if p is not l1 and p is not bounds])
        if l1 is not None:
            out.l1_part = l1
        if bounds is not None:
            out.bounds = bounds
        return out

    @property
    def parts(self) -> list:
        return [self.l1_part, self.bounds, *self.extra]

    @property
    def solvers(self):
        """The solver names every part allows (None: no restriction)."""
        allowed = None
        for part in self.parts:
            if getattr(part, "solvers", None) is not None:
                allowed = set(part.solvers) if allowed is None else allowed & set(part.solvers)
        return None if allowed is None else frozenset(allowed)

    # the parts' fields, as the attributes this class has always had
    l1 = property(lambda self: self.l1_part.l1)
    weights = property(lambda self: self.l1_part.weights)
    lower = property(lambda self: self.bounds.lower)
    upper = property(lambda self: self.bounds.upper)
    lower_intercept = property(lambda self: self.bounds.lower_intercept)
    upper_intercept = property(lambda self: self.bounds.upper_intercept)

    @property
    def has_bounds(self) -> bool:
        return self.bounds.active or any("lower" in p.theta_parts(1, 1) or "upper" in p.theta_parts(1, 1)
                                         for p in self.extra)

    @property
    def has_intercept_bounds(self) -> bool:
        return self.bounds.has_intercept_bounds

    @property
    def active(self) -> bool:
        """Whether there is anything non-smooth (an L1 part, a bound, or another separable part)."""
        return self.l1 > 0 or self.has_bounds or bool(self.extra)

    def gamma(self, n_classes: int, n_features: int) -> np.ndarray:
        """Σ over the parts of the weight of |w_cj|, shape (C, D) (λ₁ ω_j for the L1 part)."""
        gamma = self.l1_part.gamma(n_classes, n_features)
        for part in self.extra:
            g = part.theta_parts(n_classes, n_features).get("gamma")
            if g is not None:
                gamma = gamma + g
        return gamma

    def _box(self, value, shape, fill):
        return Bounds.box(value, shape, fill)

    def _extra_box(self, key, shape, fill, base):
        """``base`` intersected with the ``key`` bound of the extra parts."""
        pick = np.maximum if key.startswith("lower") else np.minimum
        for part in self.extra:
            v = part.theta_parts(*((shape[0], 1) if len(shape) == 1 else shape)).get(key)
            if v is not None:
                base = pick(base, np.broadcast_to(v, shape))
        return base

    def _bound(self, key, shape, fill):
        """Bound ``key`` of the box, or None when no part bounds it."""
        value = getattr(self.bounds, key)
        extra = any(key in p.theta_parts(1, 1) for p in self.extra)
        if value is None and not extra:
            return None
        full = self._box(value, shape, fill)
        return self._extra_box(key, shape, fill, full) if extra else full

    def value(self, coef) -> float:
        """λ₁ Σ ω_j |w_cj| (+ the extra parts'; the bounds add 0 at a feasible point)."""
        coef = np.asarray(coef, dtype=np.float64)
        v = float(np.sum(self.gamma(*coef.shape) * np.abs(coef))) if self.l1 else 0.0
        return v + sum(float(p.value(coef)) for p in self.extra)

    def project(self, coef, intercept):
        """(coef, intercept) clipped into the bounds."""
        C, D = np.shape(coef)
        lo = self._bound("lower", (C, D), -np.inf)
        hi = self._bound("upper", (C, D), np.inf)
        lo_b = self._bound("lower_intercept", (C,), -np.inf)
        hi_b = self._bound("upper_intercept", (C,), np.inf)
        coef = np.clip(coef, np.full((C, D), -np.inf) if lo is None else lo, np.full((C, D), np.inf) if hi is None else hi)
        intercept = np.clip(intercept, np.full((C,), -np.inf) if lo_b is None else lo_b,
                            np.full((C,), np.inf) if hi_b is None else hi_b)
        return coef, intercept

    def kkt(self, coef, intercept, grad_coef, grad_intercept, fit_intercept: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
        """(max residual, coef residuals (C, D), intercept residuals (C,)) — see ``kkt_residual``;
        ``grad_*`` are the smooth part's (data term + L2) in model coordinates."""
        C, D = np.shape(coef)
        rc, ri = kkt_residual(coef, intercept, grad_coef, grad_intercept, self.gamma(C, D),
                              self._bound("lower", (C, D), -np.inf), self._bound("upper", (C, D), np.inf),
                              self._bound("lower_intercept", (C,), -np.inf),
                              self._bound("upper_intercept", (C,), np.inf), fit_intercept)
        return float(max(np.max(rc, initial=0.0), np.max(ri, initial=0.0))), rc, ri

    def in_theta(self, precond) -> "ThetaTerm":
        """The same term over the optimizer's θ (``precondition.Preconditioner``): W = Θ S⁻¹ makes
        |w_cj| = |Θ_cj| / s_j and a bound l ≤ w_cj a bound l·s_j ≤ Θ_cj, so R stays separable, with
        γ_θ = γ_cj / s_j. An intercept bound is a bound on β only when the map does not centre
        (b = β − Wμ otherwise mixes them): the caller builds the preconditioner with μ = 0 then."""
        C, D, rows = precond.n_classes, precond.n_features, precond.rows
        s = precond.scale
        gamma = (self.gamma(C, D)[:rows] / s).ravel()
        lo = (self._box(self.lower, (C, D), -np.inf)[:rows] * s).ravel()
        hi = (self._box(self.upper, (C, D), np.inf)[:rows] * s).ravel()
        if self.extra:
            lo = (self._extra_box("lower", (C, D), -np.inf, self._box(self.lower, (C, D), -np.inf))[:rows] * s).ravel()
            hi = (self._extra_box("upper", (C, D), np.inf, self._box(self.upper, (C, D), np.inf))[:rows] * s).ravel()
        parts_g, parts_lo, parts_hi = [gamma], [lo], [hi]
        if precond.fit_intercept:
            if self.has_intercept_bounds and np.any(precond.mean != 0):
                raise ValueError("intercept bounds need a preconditioner that does not centre (mean 0)")
            parts_g.append(np.zeros(rows))
            lo_b = self._bound("lower_intercept", (C,), -np.inf)
            hi_b = self._bound("upper_intercept", (C,), np.inf)
            parts_lo.append((np.full((C,), -np.inf) if lo_b is None else lo_b)[:rows])
            parts_hi.append((np.full((C,), np.inf) if hi_b is None else hi_b)[:rows])
        return ThetaTerm(np.concatenate(parts_g), np.concatenate(parts_lo), np.concatenate(parts_hi), self, precond)

    def to_dict(self) -> dict:
        """The record for the saved model: {"l1", "lower_bounds", "upper_bounds",
        "lower_bounds_intercept", "upper_bounds_intercept"} (lists or None), plus each extra
        part's record under its name."""
        out = {**self.l1_part.to_dict(), **self.bounds.to_dict()}
        for part in self.extra:
            out[part.name] = part.to_dict()
        return out

    @classmethod
    def from_dict(cls, record: dict, weights=None) -> "L1Penalty":
        """The inverse of ``to_dict`` for the L1 and bounds parts (``weights`` ω_j: None for ones)."""
        b = Bounds.from_dict(record)
        return cls(float(record.get("l1", 0.0)), weights, b.lower, b.upper, b.lower_intercept, b.upper_intercept)

    def __repr__(self) -> str:
        return f"L1Penalty(l1={self.l1}, bounds={self.has_bounds})"


class ThetaTerm:
    """R(θ) = Σ_k γ_k |θ_k| + indicator(lo ≤ θ ≤ hi), separable: what the proximal solvers use.

    ``model`` (the ``L1Penalty``) and ``precond`` map it back for the model-space KKT residual."""

    def __init__(self, gamma, lo, hi, model: L1Penalty, precond):
        self.gamma, self.lo, self.hi = gamma, lo, hi
        self.model, self.precond = model, precond
        self.n_coef = precond.rows * precond.n_features  # θ[:n_coef] are the coefficients Θ, the rest β

    def nonzeros(self, theta) -> int:
        """Non-zero coefficients (not intercepts) in θ (Θ_cj = 0 exactly when w_cj = 0)."""
        return int(np.count_nonzero(np.asarray(theta)[:self.n_coef]))

    def value(self, theta) -> float:
        """Σ γ_k |θ_k| (+inf outside the box)."""
        theta = np.asarray(theta)
        if np.any(theta < self.lo) or np.any(theta > self.hi):
            return float("inf")
        return float(self.gamma @ np.abs(theta))

    def project(self, theta) -> np.ndarray:
        return np.clip(theta, self.lo, self.hi)

    def prox(self, v, step: float) -> np.ndarray:
        """argmin_z ½‖z − v‖² / step + R(z): soft-threshold by step·γ, then clip (exact: both
        are separable and the box is an interval)."""
        z = np.sign(v) * np.maximum(np.abs(v) - step * self.gamma, 0.0)
        return np.clip(z, self.lo, self.hi)

    def residual(self, theta, grad) -> np.ndarray:
        """Per-coordinate KKT residual in θ (``kkt_residual``'s rule with γ, lo, hi of θ)."""
        theta = np.asarray(theta)
        a = np.where(theta > 0, self.gamma, -self.gamma)
        b = np.where(theta < 0, -self.gamma, self.gamma)
        a = np.where(theta <= self.lo, -np.inf, a)
        b = np.where(theta >= self.hi, np.inf, b)
        return np.maximum(np.maximum(a + grad, -grad - b), 0.0)

    def model_kkt(self, theta, grad) -> float:
        """max KKT residual in model coordinates (W, b), from θ and the smooth part's ∇_θ: the
        gradient in (W, b) is recovered from ∇_θ (∇_b = ∇_β, ∇_W = ∇_Θ S + ∇_b μᵀ)."""
        precond = self.precond
        coef, intercept = precond.to_model(theta)
        rows, D = precond.rows, precond.n_features
        g = np.asarray(grad, dtype=np.float64)
        g_int = g[rows * D:] if precond.fit_intercept else np.zeros(rows)
        g_coef = g[:rows * D].reshape(rows, D) * precond.scale + np.outer(g_int, precond.mean)
        coef, intercept = self.snap(theta, coef, intercept)
        C = precond.n_classes
        m = self.model

        def rows_of(bound):
            return None if bound is None else bound[:rows]

        lo, hi = rows_of(m._bound("lower", (C, D), -np.inf)), rows_of(m._bound("upper", (C, D), np.inf))
        loi = rows_of(m._bound("lower_intercept", (C,), -np.inf))
        hii = rows_of(m._bound("upper_intercept", (C,), np.inf))
        rc, ri = kkt_residual(coef[:rows], intercept[:rows], g_coef, g_int, m.gamma(C, D)[:rows], lo, hi, loi, hii,
                              precond.fit_intercept)
        return float(max(np.max(rc, initial=0.0), np.max(ri, initial=0.0)))

    def snap(self, theta, coef, intercept):
        """(coef, intercept) with every coordinate whose θ sits on a bound set exactly to that
        bound in model coordinates (W = Θ/s can miss l by an ulp) and clipped into the box."""
        precond, m = self.precond, self.model
        C, D, rows = precond.n_classes, precond.n_features, precond.rows
        theta = np.asarray(theta)
        coef, intercept = np.array(coef, dtype=np.float64), np.array(intercept, dtype=np.float64)
        at_lo, at_hi = theta <= self.lo, theta >= self.hi
        for bound, mask in ((m.lower, at_lo), (m.upper, at_hi)):
            if bound is not None:
                full = m._box(bound, (C, D), 0.0)
                sel = mask[:rows * D].reshape(rows, D)
                coef[:rows][sel] = full[:rows][sel]
        if precond.fit_intercept:
            for bound, mask in ((m.lower_intercept, at_lo), (m.upper_intercept, at_hi)):
                if bound is not None:
                    full = m._box(bound, (C,), 0.0)
                    sel = mask[rows * D:]
                    intercept[:rows][sel] = full[:rows][sel]
        coef, intercept = m.project(coef, intercept)
        coef[:rows][(theta[:rows * D] == 0).reshape(rows, D)] = 0.0
        return coef, intercept
