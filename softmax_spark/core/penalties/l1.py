"""The L1 penalty (separable, non-smooth): λ₁ Σ_cj ω_j |w_cj|; the intercept is never penalised.

With ``l2.L2Penalty`` this is MLlib's elastic net: regParam·(α‖W‖₁ + (1−α)/2‖W‖²) is
λ₁ = regParam·α, λ₂ = regParam·(1−α)/2 (multinomial). Its proximal step is soft-thresholding
and its subdifferential at w is γ·sign(w), or [−γ, γ] at 0 (``separable.ThetaTerm``).
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.penalties.base import PenaltyContext, _option, register

__all__ = ["L1", "l1_feature_weights"]


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


@register
class L1:
    """λ₁ Σ_cj ω_j |w_cj| in model coordinates (a ``base.SeparablePenalty``).

    Parameters
    ----------
    l1 : λ₁ ≥ 0 (ValueError otherwise)
    weights : ndarray of shape (D,) — ω_j (``l1_feature_weights``; None: ones)
    """

    name = "l1"
    kind = "separable"
    solvers = None  # every solver that handles a separable part

    def __init__(self, l1: float = 0.0, weights=None):
        if not l1 >= 0:
            raise ValueError(f"the L1 strength λ₁ must be ≥ 0, got {l1}")
        self.l1 = float(l1)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)

    @property
    def active(self) -> bool:
        return self.l1 > 0

    def gamma(self, n_classes: int, n_features: int) -> np.ndarray:
        """λ₁ ω_j broadcast to (C, D)."""
        w = np.ones(n_features) if self.weights is None else self.weights
        return np.broadcast_to(self.l1 * w, (n_classes, n_features)).copy()

    def value(self, coef) -> float:
        """λ₁ Σ ω_j |w_cj| for coef of shape (C, D)."""
        coef = np.asarray(coef, dtype=np.float64)
        return float(np.sum(self.gamma(*coef.shape) * np.abs(coef))) if self.l1 else 0.0

    def theta_parts(self, n_classes: int, n_features: int) -> dict:
        """{"gamma": (C, D)} — the weight of |w_cj| (the intercept's is 0)."""
        return {"gamma": self.gamma(n_classes, n_features)}

    def to_dict(self) -> dict:
        return {"l1": self.l1}

    @classmethod
    def from_dict(cls, record: dict, weights=None) -> "L1":
        return cls(float(record.get("l1", 0.0)), weights)

    @classmethod
    def requested(cls, cfg) -> bool:
        return (_option(cfg, "l1", 0.0) or 0.0) > 0

    @classmethod
    def from_config(cls, cfg, context: PenaltyContext) -> "L1":
        """``--l1`` with ω_j from ``--standardize`` (``l1_feature_weights``)."""
        return cls(cfg.l1, l1_feature_weights(context.n_features, _option(cfg, "standardize", False), context.col_std))

    def __repr__(self) -> str:
        return f"L1(l1={self.l1})"
