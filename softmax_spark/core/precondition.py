"""Parameter space seen by the optimizers: an affine change of variables that leaves J unchanged.

Optimizers work on a flat vector θ = (Θ, β); the model is

    W = Θ S⁻¹,   b = β − W μ            (with an intercept: centre, then scale)
    W = Θ S⁻¹,   b = 0                  (without: scale only, μ = 0)

with μ the weighted column means and S = diag(s), s_j² = v_j + 4·2λ p_j, where v_j is the
column's variance (its second moment when there is no intercept) and 2λ p_j the penalty's
curvature for feature j (``penalty.L2Penalty.feature_curvature``; p_j = 1, or σ_j² under
``--standardize``). This is exact re-parameterisation — J(W(θ), b(θ)) is the
same objective, and so the same optimum — but in θ every diagonal entry of the Hessian is at most
¼ (p(1−p) ≤ ¼ bounds the data part, 2λp_j/s_j² the penalty). Unlike standardising by σ_j
alone it does not blow up on constant or nearly constant columns (s_j ≥ √(8λp_j) keeps the penalty's
curvature ≤ ¼, and a centred constant column simply has zero gradient) — the case on which
MLlib's internal standardisation stalls.

The reference parameterisation (``reference=True``) keeps only C−1 free rows: row C−1 of Θ and
β is pinned to zero (the probabilities are shift invariant, so nothing is lost; its penalty is
the centred one, see ``penalty``).

The chain rule gives the gradient in θ from the one in (W, b):

    ∇_Θ = (∇_W − ∇_b μᵀ) S⁻¹,    ∇_β = ∇_b.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Preconditioner"]


class Preconditioner:
    """Maps the flat optimizer vector θ to (coef, intercept) and gradients back.

    Parameters
    ----------
    n_classes, n_features : ints
    mean : ndarray of shape (n_features,) — column means (ignored without intercept)
    second_moment : ndarray of shape (n_features,) — variances (with intercept) or E[x²] (without)
    penalty : ``penalty.L2Penalty`` (its per-feature curvature 2λp_j enters the scale)
    fit_intercept : bool
    reference : bool — C−1 free rows
    enabled : bool — False gives the identity map (θ = (W, b) flattened)
    """

    def __init__(self, n_classes, n_features, mean, second_moment, penalty,
                 fit_intercept=True, reference=False, enabled=True):
        self.n_classes = n_classes
        self.n_features = n_features
        self.fit_intercept = fit_intercept
        self.reference = reference
        self.rows = n_classes - 1 if reference else n_classes
        if enabled:
            # s_j² = v_j + 4·(2λp_j): keeps the penalty's curvature 2λp_j/s_j² ≤ ¼ in θ
            scale_sq = np.asarray(second_moment, dtype=np.float64) + 4.0 * penalty.feature_curvature(n_features)
            positive = scale_sq > 0
            tiny = scale_sq <= 1e-300
            scale = np.where(positive & ~tiny, np.sqrt(np.where(positive, scale_sq, 1.0)), 1.0)
            self.scale = scale
            self.mean = np.asarray(mean, dtype=np.float64) if fit_intercept else np.zeros(n_features)
        else:
            self.scale = np.ones(n_features)
            self.mean = np.zeros(n_features)

    @property
    def size(self) -> int:
        return self.rows * (self.n_features + (1 if self.fit_intercept else 0))

    def _split(self, theta):
        theta = np.asarray(theta, dtype=np.float64)
        Theta = theta[: self.rows * self.n_features].reshape(self.rows, self.n_features)
        beta = theta[self.rows * self.n_features:] if self.fit_intercept else np.zeros(self.rows)
        return Theta, beta

    def _pad(self, rows):
        if not self.reference:
            return rows
        pad = np.zeros((1,) + rows.shape[1:])
        return np.concatenate([rows, pad], axis=0)

    def to_model(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """θ → (coef of shape (C, D), intercept of shape (C,))."""
        Theta, beta = self._split(theta)
        coef = self._pad(Theta / self.scale)
        intercept = self._pad(beta) - coef @ self.mean
        if not self.fit_intercept:
            intercept = np.zeros(self.n_classes)
        return coef, intercept

    def from_model(self, coef, intercept) -> np.ndarray:
        """(coef, intercept) → θ. Under ``reference`` the model is first shifted so the last
        row is zero (same probabilities)."""
        coef = np.asarray(coef, dtype=np.float64)
        intercept = np.zeros(self.n_classes) if intercept is None else np.asarray(intercept, dtype=np.float64)
        if self.reference:
            coef = coef - coef[-1]
            intercept = intercept - intercept[-1]
            coef, intercept = coef[:-1], intercept[:-1]
        Theta = coef * self.scale
        parts = [Theta.ravel()]
        if self.fit_intercept:
            parts.append(intercept + coef @ self.mean)
        return np.concatenate(parts)

    def gradient(self, grad_coef, grad_intercept) -> np.ndarray:
        """(∇_W J, ∇_b J) → ∇_θ J."""
        grad_coef = np.asarray(grad_coef)[: self.rows]
        parts = []
        if self.fit_intercept:
            grad_intercept = np.asarray(grad_intercept)[: self.rows]
            parts.append(((grad_coef - np.outer(grad_intercept, self.mean)) / self.scale).ravel())
            parts.append(grad_intercept)
        else:
            parts.append((grad_coef / self.scale).ravel())
        return np.concatenate(parts)

    def curvature_bound(self, covariance, col_mean, penalty) -> float:
        """An upper bound L on the largest Hessian eigenvalue of J in θ.

        Böhning's bound H ⪯ ½ (I − 11ᵀ/C) ⊗ E[z̃ z̃ᵀ] for the data term (Böhning 1992, "Multinomial
        logistic regression algorithm", Ann. Inst. Statist. Math. 44), with z̃ = (S⁻¹(x − μ), 1)
        (with intercept) or z̃ = S⁻¹x (without), plus the penalty's max_j 2λp_j/s_j². Needs the full
        covariance (kept by the ingest when D ≤ 512); without it, ``problem.curvature_bound``
        estimates the same eigenvalue by power iteration over distributed passes.
        """
        if covariance is None:
            raise ValueError("curvature_bound needs the covariance; see problem.curvature_bound")
        col_mean = np.asarray(col_mean, dtype=np.float64)
        moment = covariance if self.fit_intercept else covariance + np.outer(col_mean, col_mean)
        scaled = moment / np.outer(self.scale, self.scale)
        top = float(np.linalg.eigvalsh(scaled)[-1]) if scaled.size else 0.0
        if self.fit_intercept:
            top = max(top, 1.0)  # the constant 1 is uncorrelated with the centred z
        return 0.5 * top + self.penalty_bound(penalty)

    def penalty_bound(self, penalty) -> float:
        """max_j 2λ p_j / s_j²: the largest curvature of the penalty in θ."""
        return float(np.max(penalty.feature_curvature(self.n_features) / self.scale**2, initial=0.0))
