"""The penalty term of the objective: one object used by training, the preconditioner and MLlib export.

    P(W) = λ Σ_c Σ_j p_j w_cj²                       (``centred=False``)
    P(W) = λ Σ_c Σ_j p_j (w_cj − w̄_j)²,  w̄ = (1/C) Σ_c w_c      (``centred=True``)

on the coefficient matrix W of shape (C, D); the intercept is never penalised. The feature
weights p_j are 1, or σ_j² under ``--standardize`` (σ_j the column's unbiased sample standard
deviation: MLlib's ``standardization=True`` penalises λ Σ (σ_j w_cj)²).

The centred form is the one ``--parametrization reference`` uses. Softmax probabilities are
unchanged when the same vector is added to every row of W (shift invariance), and the data term
with them; of all the shifts of W, the centred one (w̄ = 0) has the smallest ‖W‖², so the plain
L2 optimum is centred and equals the minimum of the centred penalty. Pinning the last row to 0
and penalising the centred representative therefore reaches the same probabilities as the full
model for every λ; penalising the pinned rows themselves would be a different objective.

MLlib: with elasticNetParam = 0, MLlib minimises mean log-loss + regParam/2 · Σ_cj w_cj² (its
standardization=True scales the penalty as above), so regParam = 2λ.
"""

from __future__ import annotations

import numpy as np

__all__ = ["L2Penalty", "L1Penalty", "ThetaTerm", "feature_weights", "l1_feature_weights", "kkt_residual"]


def feature_weights(n_features: int, standardize: bool, col_std: np.ndarray | None = None) -> np.ndarray:
    """p_j of shape (n_features,): ones, or σ_j² for ``--standardize`` (MLlib's standardization=True)."""
    if not standardize:
        return np.ones(n_features)
    return np.asarray(col_std, dtype=np.float64) ** 2


class L2Penalty:
    """λ Σ_cj p_j w_cj² (or of the centred rows); value, gradient and curvature in model coordinates.

    Parameters
    ----------
    l2 : λ ≥ 0
    weights : ndarray of shape (n_features,) — p_j (None: all ones)
    centred : bool — penalise W − w̄ (the reference parameterisation; see the module docstring)
    standardize : bool — recorded for MLlib export (p_j = σ_j² came from --standardize)
    """

    def __init__(self, l2: float, weights=None, centred: bool = False, standardize: bool = False):
        if not l2 >= 0:
            raise ValueError(f"the L2 strength λ must be ≥ 0, got {l2}")
        self.l2 = float(l2)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.centred = bool(centred)
        self.standardize = bool(standardize)

    def _penalised(self, coef: np.ndarray) -> np.ndarray:
        """The part of W the penalty sees: W, or W − w̄ when centred."""
        coef = np.asarray(coef, dtype=np.float64)
        return coef - coef.mean(axis=0) if self.centred else coef

    def _p(self, n_features: int) -> np.ndarray:
        return np.ones(n_features) if self.weights is None else self.weights

    def value(self, coef) -> float:
        """P(W) for coef of shape (C, D)."""
        if self.l2 == 0.0:
            return 0.0
        v = self._penalised(coef)
        return self.l2 * float(np.vdot(v * self._p(v.shape[1]), v))

    def gradient(self, coef) -> np.ndarray:
        """∇_W P of shape (C, D): 2λ (W − w̄) diag(p) (w̄ = 0 unless centred; Σ_c (w_c − w̄) = 0,
        so w̄'s own dependence on W drops out)."""
        v = self._penalised(coef)
        if self.l2 == 0.0:
            return np.zeros_like(v)
        return (2.0 * self.l2) * (v * self._p(v.shape[1]))

    def hvp(self, direction) -> np.ndarray:
        """∇²P · V for a direction V of shape (C, D) (P is quadratic: this is ∇P(V))."""
        return self.gradient(direction)

    def feature_curvature(self, n_features: int) -> np.ndarray:
        """2λ p_j of shape (n_features,): the largest diagonal entry of ∇²P for feature j (the
        centred form's is 2λ p_j (1 − 1/C), smaller), used by the preconditioner's scaling and
        the SGD step bound."""
        return 2.0 * self.l2 * self._p(n_features)

    def hessian_diag(self, n_classes: int, n_features: int) -> np.ndarray:
        """diag ∇²P of shape (C, D): 2λ p_j, times (1 − 1/C) when centred."""
        factor = 1.0 - 1.0 / n_classes if self.centred else 1.0
        return np.tile(factor * self.feature_curvature(n_features), (n_classes, 1))

    def hessian(self, n_classes: int, n_features: int) -> np.ndarray:
        """∇²P as a dense (C·D, C·D) matrix, class-major (index c·D + j):
        2λ (I_C − 11ᵀ/C [centred]) ⊗ diag(p)."""
        rows = np.eye(n_classes) - (np.full((n_classes, n_classes), 1.0 / n_classes) if self.centred else 0.0)
        return np.kron(rows, np.diag(self.feature_curvature(n_features)))

    def mllib_params(self) -> dict:
        """MLlib LogisticRegression params with the same penalty: regParam = 2λ, elasticNetParam = 0,
        standardization as ours. (MLlib's multinomial optimum is the centred one, the same
        probabilities as ``centred``.)"""
        return {"regParam": 2.0 * self.l2, "elasticNetParam": 0.0, "standardization": self.standardize}

    def to_dict(self) -> dict:
        return {"l2": self.l2, "centred": self.centred, "standardize": self.standardize}

    @classmethod
    def from_metadata(cls, metadata: dict) -> "L2Penalty | None":
        """The penalty a trained model's metadata records (``l2``, options ``standardize`` and
        ``parametrization``); None when it records no λ."""
        l2 = metadata.get("l2")
        if l2 is None:
            return None
        options = metadata.get("options") or {}
        return cls(float(l2), centred=options.get("parametrization") == "reference",
                   standardize=bool(options.get("standardize", False)))

    def __repr__(self) -> str:
        return f"L2Penalty(l2={self.l2}, centred={self.centred}, standardize={self.standardize})"


# --------------------------------------------------------------------------- L1 and bounds (non-smooth)


def l1_feature_weights(n_features: int, standardize: bool, col_std: np.ndarray | None = None) -> np.ndarray:
    """ω_j of shape (n_features,) for the L1 part: ones, or σ_j under ``--standardize``.

    MLlib (LogisticRegression.scala, the OWL-QN ``regParamL1Fun``) trains on x_j/σ_j and
    penalises the standardised coefficient w_cj σ_j with regParamL1 when standardization=True
    (so ω_j = σ_j on the raw w_cj), and with regParamL1/σ_j when False (so ω_j = 1 on the raw
    w_cj). A constant column (σ_j = 0) gets ω_j = 0 in both cases there; its raw coefficient is
    left at its start (0), as MLlib reports 0 for it."""
    if not standardize:
        return np.ones(n_features)
    return np.asarray(col_std, dtype=np.float64).copy()


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
    """The non-smooth part of the objective, in model coordinates:

        R(W, b) = λ₁ Σ_cj ω_j |w_cj|  +  indicator(lower ≤ W ≤ upper, lower_b ≤ b ≤ upper_b)

    With ``L2Penalty`` (the smooth part) this is MLlib's elastic net: regParam·(α‖W‖₁ +
    (1−α)/2‖W‖²) is λ₁ = regParam·α, λ₂ = regParam·(1−α)/2 (multinomial) — see ``ml`` for the
    binomial mapping. The intercept is never penalised. Bounds are optional (None: unbounded);
    ``lower``/``upper`` broadcast to (C, D), the intercept ones to (C,).

    Parameters
    ----------
    l1 : λ₁ ≥ 0
    weights : ndarray (D,) — ω_j (``l1_feature_weights``; None: ones)
    lower, upper : None, a float or an array broadcastable to (C, D)
    lower_intercept, upper_intercept : None, a float or an array broadcastable to (C,)
    """

    def __init__(self, l1: float = 0.0, weights=None, lower=None, upper=None, lower_intercept=None,
                 upper_intercept=None):
        if not l1 >= 0:
            raise ValueError(f"the L1 strength λ₁ must be ≥ 0, got {l1}")
        self.l1 = float(l1)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        as_arr = lambda v: None if v is None else np.asarray(v, dtype=np.float64)  # noqa: E731
        self.lower, self.upper = as_arr(lower), as_arr(upper)
        self.lower_intercept, self.upper_intercept = as_arr(lower_intercept), as_arr(upper_intercept)
        for lo, hi, what in ((self.lower, self.upper, "coefficients"),
                             (self.lower_intercept, self.upper_intercept, "intercepts")):
            if lo is not None and hi is not None and np.any(np.asarray(lo) > np.asarray(hi)):
                raise ValueError(f"the lower bounds on {what} must be ≤ the upper bounds")

    @property
    def has_bounds(self) -> bool:
        return any(v is not None for v in (self.lower, self.upper, self.lower_intercept, self.upper_intercept))

    @property
    def has_intercept_bounds(self) -> bool:
        return self.lower_intercept is not None or self.upper_intercept is not None

    @property
    def active(self) -> bool:
        """Whether there is anything non-smooth (an L1 part or a bound)."""
        return self.l1 > 0 or self.has_bounds

    def gamma(self, n_classes: int, n_features: int) -> np.ndarray:
        """λ₁ ω_j broadcast to (C, D)."""
        w = np.ones(n_features) if self.weights is None else self.weights
        return np.broadcast_to(self.l1 * w, (n_classes, n_features)).copy()

    def _box(self, value, shape, fill):
        return np.full(shape, fill) if value is None else np.broadcast_to(value, shape).astype(np.float64)

    def value(self, coef) -> float:
        """λ₁ Σ ω_j |w_cj| (the bounds add 0 at a feasible point)."""
        coef = np.asarray(coef, dtype=np.float64)
        return float(np.sum(self.gamma(*coef.shape) * np.abs(coef))) if self.l1 else 0.0

    def project(self, coef, intercept):
        """(coef, intercept) clipped into the bounds."""
        C, D = np.shape(coef)
        coef = np.clip(coef, self._box(self.lower, (C, D), -np.inf), self._box(self.upper, (C, D), np.inf))
        intercept = np.clip(intercept, self._box(self.lower_intercept, (C,), -np.inf),
                            self._box(self.upper_intercept, (C,), np.inf))
        return coef, intercept

    def kkt(self, coef, intercept, grad_coef, grad_intercept, fit_intercept: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
        """(max residual, coef residuals (C, D), intercept residuals (C,)) — see ``kkt_residual``;
        ``grad_*`` are the smooth part's (data term + L2) in model coordinates."""
        C, D = np.shape(coef)
        rc, ri = kkt_residual(coef, intercept, grad_coef, grad_intercept, self.gamma(C, D),
                              None if self.lower is None else self._box(self.lower, (C, D), -np.inf),
                              None if self.upper is None else self._box(self.upper, (C, D), np.inf),
                              None if self.lower_intercept is None else self._box(self.lower_intercept, (C,), -np.inf),
                              None if self.upper_intercept is None else self._box(self.upper_intercept, (C,), np.inf),
                              fit_intercept)
        return float(max(np.max(rc, initial=0.0), np.max(ri, initial=0.0))), rc, ri

    def in_theta(self, precond) -> "ThetaTerm":
        """The same term over the optimizer's θ (``precondition.Preconditioner``): W = Θ S⁻¹ makes
        |w_cj| = |Θ_cj| / s_j and a bound l ≤ w_cj a bound l·s_j ≤ Θ_cj, so R stays separable, with
        γ_θ = λ₁ ω_j / s_j. An intercept bound is a bound on β only when the map does not centre
        (b = β − Wμ otherwise mixes them): the caller builds the preconditioner with μ = 0 then."""
        C, D, rows = precond.n_classes, precond.n_features, precond.rows
        s = precond.scale
        gamma = (self.gamma(C, D)[:rows] / s).ravel()
        lo = (self._box(self.lower, (C, D), -np.inf)[:rows] * s).ravel()
        hi = (self._box(self.upper, (C, D), np.inf)[:rows] * s).ravel()
        parts_g, parts_lo, parts_hi = [gamma], [lo], [hi]
        if precond.fit_intercept:
            if self.has_intercept_bounds and np.any(precond.mean != 0):
                raise ValueError("intercept bounds need a preconditioner that does not centre (mean 0)")
            parts_g.append(np.zeros(rows))
            parts_lo.append(self._box(self.lower_intercept, (C,), -np.inf)[:rows])
            parts_hi.append(self._box(self.upper_intercept, (C,), np.inf)[:rows])
        return ThetaTerm(np.concatenate(parts_g), np.concatenate(parts_lo), np.concatenate(parts_hi), self, precond)

    def to_dict(self) -> dict:
        def listed(v):
            return None if v is None else np.asarray(v).tolist()

        return {"l1": self.l1, "lower_bounds": listed(self.lower), "upper_bounds": listed(self.upper),
                "lower_bounds_intercept": listed(self.lower_intercept),
                "upper_bounds_intercept": listed(self.upper_intercept)}

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
        lo = None if m.lower is None else m._box(m.lower, (C, D), -np.inf)[:rows]
        hi = None if m.upper is None else m._box(m.upper, (C, D), np.inf)[:rows]
        loi = None if m.lower_intercept is None else m._box(m.lower_intercept, (C,), -np.inf)[:rows]
        hii = None if m.upper_intercept is None else m._box(m.upper_intercept, (C,), np.inf)[:rows]
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
