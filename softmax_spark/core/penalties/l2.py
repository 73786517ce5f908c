"""The L2 penalty (smooth): one object used by training, the preconditioner and MLlib export.

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

from softmax_spark.core.penalties.base import PenaltyContext, _option, register

__all__ = ["L2Penalty", "feature_weights"]


def feature_weights(n_features: int, standardize: bool, col_std: np.ndarray | None = None) -> np.ndarray:
    """p_j of shape (n_features,): ones, or σ_j² for ``--standardize`` (MLlib's standardization=True)."""
    if not standardize:
        return np.ones(n_features)
    return np.asarray(col_std, dtype=np.float64) ** 2


@register
class L2Penalty:
    """λ Σ_cj p_j w_cj² (or of the centred rows); value, gradient and curvature in model coordinates.

    A ``base.SmoothPenalty`` (``kind = "smooth"``): every solver may use it.

    Parameters
    ----------
    l2 : λ ≥ 0
    weights : ndarray of shape (n_features,) — p_j (None: all ones)
    centred : bool — penalise W − w̄ (the reference parameterisation; see the module docstring)
    standardize : bool — recorded for MLlib export (p_j = σ_j² came from --standardize)
    """

    name = "l2"
    kind = "smooth"
    solvers = None  # any solver

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

    def is_zero(self) -> bool:
        """True when the penalty is identically 0 (λ = 0): W is unpenalised, J may have no minimiser."""
        return self.l2 == 0.0

    def curvature_in_theta(self, precond) -> np.ndarray:
        """∇²P in the optimizer's θ (``precondition.Preconditioner``), which is diagonal: 2λ p_j / s_j²
        on Θ_cj, 0 on β. Shape (precond.size,). (The largest entry per feature, as
        ``feature_curvature``: the centred form's exact diagonal is (1 − 1/C) of it.)"""
        coef_part = np.tile(self.feature_curvature(precond.n_features) / precond.scale**2, precond.rows)
        if precond.fit_intercept:
            return np.concatenate([coef_part, np.zeros(precond.rows)])
        return coef_part

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
        """The record for the saved model: {"l2": λ, "centred", "standardize"} (the weights p_j are
        not recorded: they are the data's σ_j², rebuilt from its summary)."""
        return {"l2": self.l2, "centred": self.centred, "standardize": self.standardize}

    @classmethod
    def from_dict(cls, record: dict, weights=None) -> "L2Penalty":
        """The inverse of ``to_dict`` (``weights`` p_j: None for ones)."""
        return cls(float(record["l2"]), weights, centred=bool(record.get("centred", False)),
                   standardize=bool(record.get("standardize", False)))

    @classmethod
    def requested(cls, cfg) -> bool:
        """Always: the smooth part is present with λ = 0 too (it then adds nothing)."""
        return True

    @classmethod
    def from_config(cls, cfg, context: PenaltyContext) -> "L2Penalty":
        """``--l2`` with p_j from ``--standardize`` (``feature_weights``), centred under
        ``--parametrization reference``."""
        return cls(cfg.l2, feature_weights(context.n_features, _option(cfg, "standardize", False), context.col_std),
                   centred=context.reference, standardize=_option(cfg, "standardize", False))

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
