"""Coefficient inference from the exact Hessian at the optimum: standard errors, z, p-values, Wald
intervals. Pure numpy + scipy; the one data pass is ``InferenceKernel`` (a ``curvature`` block
kernel run by ``distributed.DistributedLoss.run``).

The statistics are those of maximum likelihood (statsmodels ``MNLogit`` / ``Logit``:
``cov_params() = inv(−hessian(params))``, ``bse = sqrt(diag(cov))``, ``z = params / bse``,
``pvalues = 2·Φ(−|z|)``, ``conf_int(α) = params ∓ Φ⁻¹(1 − α/2)·bse``), for the total objective

    F(W, b) = Σ_i s_i·(−log p(y_i | x_i))  +  S·λ Σ_cj p_j W_cj²,      S = Σ_i s_i

(our J times S: J is a mean, the log-likelihood a sum).

Parameterisations. The softmax is invariant to adding one vector to every class row, so the
full (C·D̃) Hessian is singular. *Reference* (statsmodels' and MLlib's binomial one): class k is
pinned to 0, the free parameters are θ_c = (w_c − w_k, b_c − b_k) for the C−1 classes c ≠ k.
Their Hessian is Aᵀ H A, A the linear map θ → the centred full parameters (w_c = θ_c − mean_c' θ_c',
θ_k = 0): the data term only sees differences, so Aᵀ H_data A is H_data with class k's rows and
columns deleted; the penalty's part is that of λ‖W − 1w̄ᵀ‖², the penalty at the best shift (the
centred W our penalised optimum has). *Centred* (MLlib's multinomial coefficients, Σ_c w_c = 0):
the values are the centred model, their covariance A Cov_ref Aᵀ — the same linear map applied to
the reference covariance, of rank (C−1)·D̃ (each feature's C entries sum to 0, so its C×C block is
singular); its diagonal does not depend on k.

Covariance. "hessian": Cov = H⁻¹ (the model-based ML covariance; statsmodels' default). "sandwich":
H⁻¹ B H⁻¹ with B = Σ_i s_i² g_i g_iᵀ, g_i = (p_i − e_{y_i}) ⊗ x̃_i the per-row score (Huber 1967,
White 1982; statsmodels ``cov_type="HC0"``) — for sample weights that are not frequency counts, and
for penalised fits, where H⁻¹ is not the estimate's covariance: there H⁻¹ B H⁻¹ is the
first-order (delta-method) covariance of the penalised estimator around its own limit, which is
biased towards 0 — the intervals cover that limit, not the unpenalised coefficients. "auto":
sandwich for weighted (any weight ≠ 1) or penalised (λ > 0) fits, hessian otherwise.

When the estimate does not exist (complete or quasi-complete separation: an unpenalised fit whose
coefficients grow without bound, e.g. scikit-learn's wine and iris), or the Hessian is numerically
singular (collinear features), ``InferenceError`` says so instead of numbers that mean nothing
(statsmodels reports standard errors of order 1e6 there).
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.curvature import HessianAccumulator, _add_hessian_dense, _add_hessian_sparse, _forward_into, _rows_per_chunk, \
    _syrk, _with_ones
from softmax_spark.core.errors import InputError
from softmax_spark.core.loss import is_sparse

__all__ = ["InferenceError", "InferenceKernel", "InferenceSums", "coefficient_table", "MAX_PARAMS",
           "PERFECT_PROBABILITY", "MAX_LOGIT_STEP", "MAX_CONDITION"]

MAX_PARAMS = 4096  # C·D̃ above which the exact Hessian is refused (solvers/auto.py's Newton bound)
PERFECT_PROBABILITY = 1.0 - 1e-6  # a row is "perfectly predicted" when p(y_i | x_i) exceeds this
MAX_LOGIT_STEP = 0.05  # refuse when a Newton step from the fit would move the logits by more (RMS over rows)
MAX_CONDITION = 1e12  # refuse when the diagonally scaled Hessian's condition number exceeds this

COLUMNS = ["class", "feature", "coefficient", "std_error", "z", "p_value", "ci_low", "ci_high"]


class InferenceError(InputError):
    """Inference is not possible for this fit (the estimate does not exist, or P is too large);
    the message says why."""


# -- the data pass ----------------------------------------------------------------------------
class InferenceSums(HessianAccumulator):
    """``HessianAccumulator`` plus the score outer-product sum B (upper triangle), the weight of
    perfectly predicted rows, Σ s_i² and whether every weight is 1."""

    __slots__ = ("meat_sum", "moment_sum", "perfect_weight", "unit_weights")

    def __init__(self, n_classes: int, n_features: int, fit_intercept: bool):
        super().__init__(n_classes, n_features, fit_intercept)
        self.meat_sum = np.zeros_like(self.hessian_sum, order="F")
        width = self.hessian_sum.shape[0] // n_classes
        self.moment_sum = np.zeros((width, width), order="F")
        self.perfect_weight = 0.0
        self.unit_weights = True

    def merge(self, other: "InferenceSums") -> "InferenceSums":
        super().merge(other)
        self.meat_sum += other.meat_sum
        self.moment_sum += other.moment_sum
        self.perfect_weight += other.perfect_weight
        self.unit_weights = self.unit_weights and other.unit_weights
        return self

    def result(self):
        """dict: loss (mean), loss_sum, grad_sum (C, D̃), hessian_sum (P, P; Σ s_i h_i, no penalty),
        meat_sum (P, P), moment_sum (D̃, D̃; Σ s_i x̃_i x̃_iᵀ), weight_sum, count, perfect_fraction,
        unit_weights."""
        upper = np.triu(self.hessian_sum)
        meat = np.triu(self.meat_sum)
        moment = np.triu(self.moment_sum)
        grad = np.concatenate([self.grad_coef_sum, self.grad_intercept_sum[:, None]], axis=1) \
            if self.hessian_sum.shape[0] > self.grad_coef_sum.size else self.grad_coef_sum
        return {"loss": self.loss_sum / self.weight_sum if self.weight_sum > 0 else float("nan"),
                "loss_sum": self.loss_sum, "grad_sum": np.array(grad),
                "hessian_sum": upper + np.triu(upper, 1).T, "meat_sum": meat + np.triu(meat, 1).T,
                "moment_sum": moment + np.triu(moment, 1).T,
                "weight_sum": self.weight_sum, "count": self.count,
                "perfect_fraction": self.perfect_weight / self.weight_sum if self.weight_sum > 0 else 0.0,
                "unit_weights": bool(self.unit_weights)}


class InferenceKernel:
    """Block kernel: the exact data Hessian Σ s_i (diag p_i − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ (as
    ``curvature.HessianKernel``), the score outer products Σ s_i² g_i g_iᵀ and the perfectly
    predicted weight, in one pass. Payload (coef (C, D), intercept (C,)). CSR chunks are
    densified for the score products (P ≤ ``MAX_PARAMS``)."""

    def __init__(self, fit_intercept: bool):
        self.fit_intercept = bool(fit_intercept)

    def zero(self, n_classes: int, n_features: int) -> InferenceSums:
        return InferenceSums(n_classes, n_features, self.fit_intercept)

    def add(self, acc: InferenceSums, payload, X, y_index, sample_weight) -> InferenceSums:
        if X.shape[0] == 0:
            return acc
        X, proba, s = _forward_into(acc, payload, X, y_index, sample_weight, self.fit_intercept)
        Xt = _with_ones(X) if self.fit_intercept else X
        if is_sparse(Xt):
            _add_hessian_sparse(acc.hessian_sum, Xt, proba, s)
            Xt = Xt.toarray()
        else:
            _add_hessian_dense(acc.hessian_sum, Xt, proba, s)
        rows = np.arange(X.shape[0])
        y = np.asarray(y_index)
        acc.perfect_weight += float(s[proba[rows, y] > PERFECT_PROBABILITY].sum())
        acc.unit_weights = acc.unit_weights and bool(np.all(s == 1.0))
        n_classes, width = proba.shape[1], Xt.shape[1]
        step = _rows_per_chunk(n_classes * width)
        for start in range(0, X.shape[0], step):
            sl = slice(start, start + step)
            r = proba[sl].copy()
            r[np.arange(r.shape[0]), y[sl]] -= 1.0
            r *= s[sl, None]
            G = (r[:, :, None] * Xt[sl][:, None, :]).reshape(r.shape[0], n_classes * width)
            _syrk(1.0, G, beta=1.0, c=acc.meat_sum)
            _syrk(1.0, Xt[sl] * np.sqrt(s[sl])[:, None], beta=1.0, c=acc.moment_sum)
        return acc


# -- the statistics ---------------------------------------------------------------------------
def _centring_map(n_classes: int, width: int, ref: int) -> np.ndarray:
    """A of shape (C·D̃, (C−1)·D̃): reference parameters θ (class ``ref`` pinned to 0) → the
    centred full parameters, class-major as the Hessian (index c·D̃ + j)."""
    E = np.delete(np.eye(n_classes), ref, axis=1)  # (C, C−1): insert a zero row for class ref
    M = (np.eye(n_classes) - 1.0 / n_classes) @ E
    return np.kron(M, np.eye(width))


def coefficient_table(sums: dict, coef, intercept, classes, l2: float = 0.0, penalty_weights=None,
                      feature_names=None, reference_class=None, parameterization: str = "reference",
                      alpha: float = 0.05, covariance: str = "auto", fit_intercept: bool = True):
    """Wald inference for every coefficient and intercept, as a pandas DataFrame.

    Parameters
    ----------
    sums : ``InferenceSums.result()`` at the fitted (coef, intercept).
    coef : (C, D), intercept : (C,) — the fitted model (any shift; the values reported are the
        reference differences or the centred model).
    classes : C label values; ``reference_class`` one of them (default ``classes[0]``).
    l2, penalty_weights : λ and p_j of the penalty λ Σ_cj p_j W_cj² (``penalty.L2Penalty``).
    feature_names : D names (default "x0", "x1", …); the intercept's row is "intercept".
    parameterization : "reference" (C−1 classes, class k pinned) or "centred" (all C).
    covariance : "auto", "hessian" or "sandwich" (see the module docstring).

    Returns a DataFrame with columns class, feature, coefficient, std_error, z, p_value, ci_low,
    ci_high; rows class-major, features in order, then the intercept; ``attrs`` holds the
    covariance kind, the parameterisation, the reference class and the covariance matrix.

    Raises ``InferenceError`` (separation, singular Hessian, P > ``MAX_PARAMS``) and ``ValueError``
    for a bad argument.
    """
    import pandas as pd
    from scipy.stats import norm

    coef = np.asarray(coef, dtype=np.float64)
    C, D = coef.shape
    width = D + (1 if fit_intercept else 0)
    classes = list(classes)
    if parameterization not in ("reference", "centred", "centered"):
        raise ValueError(f"parameterization must be 'reference' or 'centred', got {parameterization!r}")
    if covariance not in ("auto", "hessian", "sandwich"):
        raise ValueError(f"covariance must be 'auto', 'hessian' or 'sandwich', got {covariance!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if reference_class is None:
        ref = 0
    else:
        matches = [i for i, c in enumerate(classes) if c == reference_class or str(c) == str(reference_class)]
        if not matches:
            raise ValueError(f"referenceClass {reference_class!r} is not a class of the model; classes: {classes}")
        ref = matches[0]
    penalised = l2 > 0
    if covariance == "auto":
        covariance = "sandwich" if (penalised or not sums["unit_weights"]) else "hessian"
    S = float(sums["weight_sum"])
    H = np.array(sums["hessian_sum"], dtype=np.float64)
    full = np.empty((C, width))
    full[:, :D] = coef
    if fit_intercept:
        full[:, D] = np.asarray(intercept, dtype=np.float64)
    grad = np.array(sums["grad_sum"], dtype=np.float64).reshape(C, width)
    if penalised:
        p = np.ones(D) if penalty_weights is None else np.asarray(penalty_weights, dtype=np.float64)
        centred = full - full.mean(axis=0)  # the penalty at the best shift (see the module docstring)
        diag = np.zeros((C, width))
        diag[:, :D] = 2.0 * l2 * p * S  # the penalty's Hessian of S·J
        H[np.diag_indices_from(H)] += diag.ravel()
        grad[:, :D] += 2.0 * l2 * p * S * centred[:, :D]
    A = _centring_map(C, width, ref)
    H_ref = A.T @ H @ A
    g_ref = A.T @ grad.ravel()
    d = np.sqrt(np.clip(np.diag(H_ref), 1e-300, None))
    eig, vec = np.linalg.eigh(H_ref / np.outer(d, d))
    separation = (f"; {sums['perfect_fraction']:.0%} of the (weighted) rows are predicted with p(label) > 1 − 1e-6"
                  if sums["perfect_fraction"] > 0 else "")
    cure = ("fit with regParam > 0 (then covariance='sandwich') or drop the separating / collinear features"
            if not penalised else "drop collinear or constant features")
    if eig[0] <= eig[-1] / MAX_CONDITION:
        raise InferenceError(
            f"no standard errors: the Hessian at the fit is numerically singular (scaled condition number "
            f"{eig[-1] / max(eig[0], 1e-300):.1e} > {MAX_CONDITION:.0e}{separation}) — (quasi-)separable classes, for "
            "which the maximum-likelihood estimate does not exist, or collinear/constant features; " + cure)
    # the Newton step from the fit, in logits: at the optimum it is 0; on (quasi-)separable classes
    # it stays ≈ 1 logit on the separated rows at every iterate (the fit diverges along them)
    step = (vec @ ((vec.T @ (g_ref / d)) / eig)) / d
    step_full = np.insert(step.reshape(C - 1, width), ref, 0.0, axis=0)
    M = np.asarray(sums["moment_sum"], dtype=np.float64) / S
    logit_step = float(np.sqrt(max(float(np.max(np.einsum("cj,jk,ck->c", step_full, M, step_full))), 0.0)))
    if logit_step > MAX_LOGIT_STEP:
        raise InferenceError(
            f"no standard errors: the model is not at the optimum — a Newton step from it would still move a class's "
            f"logits by {logit_step:.2g} (root mean square over the rows){separation}. "
            + ("On an unpenalised fit this is what (quasi-)separable classes look like: the maximum-likelihood "
               "estimate does not exist and the coefficients grow without bound; " + cure
               if not penalised else "Fit to convergence (smaller tol, more maxIter) first"))
    H_inv = np.linalg.inv(H_ref)
    H_inv = (H_inv + H_inv.T) / 2
    if covariance == "sandwich":
        B = A.T @ np.asarray(sums["meat_sum"], dtype=np.float64) @ A
        cov = H_inv @ B @ H_inv
    else:
        cov = H_inv
    if parameterization == "reference":
        values = np.delete(full - full[ref], ref, axis=0).ravel()
        row_classes = [c for i, c in enumerate(classes) if i != ref]
    else:
        values = (full - full.mean(axis=0)).ravel()
        cov = A @ cov @ A.T
        row_classes = classes
    cov = (cov + cov.T) / 2
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = values / se
    p_value = 2.0 * norm.sf(np.abs(z))
    q = float(norm.ppf(1.0 - alpha / 2.0))
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(D)]
    if len(names) != D:
        raise ValueError(f"feature_names has {len(names)} names, the model has {D} features")
    if fit_intercept:
        names = names + ["intercept"]
    table = pd.DataFrame({
        "class": [c for c in row_classes for _ in range(width)],
        "feature": names * len(row_classes),
        "coefficient": values, "std_error": se, "z": z, "p_value": p_value,
        "ci_low": values - q * se, "ci_high": values + q * se,
    })
    table.attrs.update({"covariance": covariance, "parameterization": parameterization,
                        "reference_class": classes[ref], "alpha": alpha})
    return table


def format_table(table) -> str:
    """A readable text rendering of ``coefficient_table``'s result (fixed-width, one row each)."""
    lines = [f"coefficient inference: {table.attrs.get('parameterization', 'reference')} parameterisation"
             f" (reference class {table.attrs.get('reference_class')!r}), covariance "
             f"{table.attrs.get('covariance')}, {100 * (1 - table.attrs.get('alpha', 0.05)):.0f}% Wald intervals"]
    header = f"{'class':>10} {'feature':>20} {'coef':>12} {'std_err':>11} {'z':>9} {'P>|z|':>9} {'ci_low':>12} " \
             f"{'ci_high':>12}"
    lines += [header, "-" * len(header)]
    for r in table.itertuples(index=False):
        lines.append(f"{str(r[0]):>10} {str(r[1])[:20]:>20} {r[2]:>12.5g} {r[3]:>11.4g} {r[4]:>9.3f} "
                     f"{r[5]:>9.3g} {r[6]:>12.5g} {r[7]:>12.5g}")
    return "\n".join(lines) + "\n"


def check_size(n_classes: int, width: int) -> None:
    """Raise ``InferenceError`` when P = C·D̃ is above ``MAX_PARAMS``."""
    P = n_classes * width
    if P > MAX_PARAMS:
        raise InferenceError(
            f"no standard errors for P = {n_classes} classes × {width} = {P} parameters > {MAX_PARAMS}: they need "
            f"the exact P × P Hessian ({2 * P * P * 8 / 2**30:.1f} GiB with the sandwich's score matrix) and its "
            "inverse; select features first (the CG route for a few coefficients is not implemented)")


