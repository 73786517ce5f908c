"""Second-order information of the softmax objective: exact Hessian, Hessian-vector products,
Hessian diagonal — as mergeable block kernels — and their map to the optimizer's θ coordinates.

Pure numpy + scipy (no Spark): the kernels follow the BlockKernel protocol (``zero``, ``add``) that
``distributed.DistributedLoss.run`` applies to each chunk of a partition's rows, then merges with
``treeAggregate``; every sum is float64 and divided by Σ s_i once, in ``result()``.

Model coordinates: W of shape (C, D), b of shape (C,), x̃ = (x, 1) with an intercept (D̃ = D + 1),
x̃ = x without (D̃ = D). Flattened (W, b) is class-major: index c·D̃ + j, with j = D the intercept.
For the data term ℓ(W, b) = Σ_i s_i (−log p(y_i | x_i)) / Σ_i s_i, with p_i = softmax(W x_i + b),

    ∇²ℓ = Σ_i s_i (diag(p_i) − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ / Σ_i s_i                      (P × P, P = C·D̃)

(Böhning 1992, "Multinomial logistic regression algorithm", Ann. Inst. Stat. Math. 44; the Kronecker
form is the derivative of Σ_i s_i (p_i − e_{y_i}) x̃_iᵀ). Computed as

    Σ_i s_i diag(p_i) ⊗ x̃_i x̃_iᵀ  −  GᵀG,     G's row i = √s_i (p_i ⊗ x̃_i)

— one symmetric rank-n update (BLAS syrk, n·P² flops) plus the C diagonal blocks
X̃ᵀ diag(s ⊙ p_c) X̃ (n·C·D̃² flops) — in row chunks whose G buffer stays ≤ ``BUFFER_BYTES``.
Only the upper triangle is accumulated; ``result()`` mirrors it. CSR chunks are never densified:
the products become sparse × sparse (X̃ᵀ diag(·) X̃ per class row-block).

The kernels are the data term only; the penalty's curvature is the penalty object's
(``penalties.L2Penalty.hessian`` / ``curvature_in_theta``), added by ``problem``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from softmax_spark.core.loss import BlockSums, LossAccumulator, softmax, softmax_nll_
from softmax_spark.core.loss import is_sparse as _is_sparse

__all__ = [
    "BUFFER_BYTES",
    "HessianKernel",
    "HessianAccumulator",
    "HvpKernel",
    "HvpAccumulator",
    "HessianDiagKernel",
    "HessianDiagAccumulator",
    "DiagSums",
    "hessian_in_theta",
    "hessian_diag_in_theta",
    "null_directions",
]

BUFFER_BYTES = 64 << 20  # bound on the per-chunk n × P (and n × D̃²) float64 work buffers


# --------------------------------------------------------------------------- shared forward pass


def _syrk(alpha, a, beta=0.0, c=None):
    """c ← α·aᵀa + β·c, upper triangle: BLAS syrk through scipy when the executor has scipy (dense
    data needs only numpy there), else one numpy product (the same sum, twice the flops)."""
    try:
        from scipy.linalg.blas import dsyrk
    except ImportError:
        out = alpha * (a.T @ a)
        return out if c is None else np.add(beta * c, out, out=c)
    if c is None:
        return dsyrk(alpha, a.T)
    out = dsyrk(alpha, a.T, beta=beta, c=c, trans=0, lower=0, overwrite_c=1)
    if out is not c:  # f2py updates a Fortran-ordered float64 c in place; copy back otherwise
        c[...] = out
    return c


def _as_float64(X):
    """Up-cast one chunk (dense or CSR) to float64; CSR stays CSR (only its data array is cast)."""
    if _is_sparse(X):
        X = X.tocsr()
        return X if X.dtype == np.float64 else X.astype(np.float64)
    return X if X.dtype == np.float64 else np.asarray(X, dtype=np.float64)


def _with_ones(X):
    """x̃ = (x, 1): append the intercept's constant column (CSR stays CSR)."""
    n = X.shape[0]
    if _is_sparse(X):
        import scipy.sparse as sp

        return sp.hstack([X, np.ones((n, 1))], format="csr")
    out = np.empty((n, X.shape[1] + 1))
    out[:, :-1] = X
    out[:, -1] = 1.0
    return out


def _forward(coef, intercept, X, y_index, sample_weight):
    """Probabilities and the loss/gradient sums of one float64 chunk.

    Returns (p (n, C), s (n,), BlockSums).
    """
    logits = np.asarray(X @ coef.T)
    if intercept is not None:
        logits += intercept
    nll = softmax_nll_(logits, y_index)
    proba = logits  # softmax_nll_ left p in the logits' buffer
    residual = proba.copy()
    residual[np.arange(X.shape[0]), y_index] -= 1.0
    if sample_weight is None:
        s = np.ones(X.shape[0])
        loss_sum = float(nll.sum())
    else:
        s = np.asarray(sample_weight, dtype=np.float64)
        loss_sum = float(nll @ s)
        residual *= s[:, None]
    sums = BlockSums(loss_sum, np.asarray(X.T @ residual).T, residual.sum(axis=0), float(s.sum()))
    return proba, s, sums


def _forward_into(acc, payload, X, y_index, sample_weight, fit_intercept):
    """The shared start of the Hessian and Hessian-diagonal kernels: the chunk up-cast to float64,
    its loss/gradient sums added to ``acc`` at payload (coef, intercept). Returns (X, p, s)."""
    coef, intercept = payload
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64) if fit_intercept else None
    X = _as_float64(X)
    proba, s, sums = _forward(coef, intercept, X, y_index, sample_weight)
    acc.add_sums(sums, X.shape[0])
    return X, proba, s


def _rows_per_chunk(width: int) -> int:
    return max(1, BUFFER_BYTES // (8 * max(1, width)))


# --------------------------------------------------------------------------- exact Hessian


class HessianAccumulator(LossAccumulator):
    """Loss/gradient sums (``LossAccumulator``) plus the upper triangle of the data Hessian sum.

    ``hessian_sum`` is (P, P) float64, Fortran order (BLAS syrk updates it in place); its strict
    lower triangle stays zero until ``result()`` mirrors the upper one. ``hessian_weight`` is Σ s_i
    over the rows the Hessian sum covers (all rows, or a kernel's row sample).
    """

    __slots__ = ("hessian_sum", "hessian_weight")

    def __init__(self, n_classes: int, n_features: int, fit_intercept: bool):
        super().__init__(n_classes, n_features)
        width = n_features + (1 if fit_intercept else 0)
        self.hessian_sum = np.zeros((n_classes * width, n_classes * width), order="F")
        self.hessian_weight = 0.0

    def merge(self, other: "HessianAccumulator") -> "HessianAccumulator":
        super().merge(other)
        self.hessian_sum += other.hessian_sum
        self.hessian_weight += other.hessian_weight
        return self

    def result(self):
        """(mean loss, mean grad_coef (C, D), mean grad_intercept (C,), Hessian (P, P)) of the data
        term; no L2. The Hessian is the weighted mean over the rows it covers. Raises ValueError
        when Σ s_i = 0."""
        loss, grad_coef, grad_intercept = super().result()
        upper = np.triu(self.hessian_sum)
        hessian = upper + np.triu(upper, 1).T
        hessian /= self.hessian_weight if self.hessian_weight > 0 else self.weight_sum
        return loss, grad_coef, grad_intercept, hessian


class HessianKernel:
    """Block kernel: J's data-term sums, gradient sums and the Hessian sum in one pass.

    Payload (coef (C, D), intercept (C,)). X dense (n, D) float32/float64 or CSR.
    Flops per row: P² (syrk) + C·D̃² (diagonal blocks), P = C·D̃.

    ``stride`` k > 1 sums the Hessian over every k-th row of each block only (rows 0, k, 2k, … of
    the block: fixed by the ingested blocks, so a retried task sums the same rows), and its mean
    over those rows stands for the whole (a sub-sampled Hessian: Byrd, Chin, Neveitt & Nocedal,
    SIAM J. Optim. 21, 2011; Roosta-Khorasani & Mahoney, Math. Program. 174, 2019). Loss and
    gradient always cover every row, so a solver using it still converges to the exact optimum
    (the Hessian is only its metric), at a cost per pass of a gradient pass plus 1/k of a Hessian pass.
    """

    def __init__(self, fit_intercept: bool, stride: int = 1):
        self.fit_intercept = bool(fit_intercept)
        self.stride = max(1, int(stride))

    def zero(self, n_classes: int, n_features: int) -> HessianAccumulator:
        return HessianAccumulator(n_classes, n_features, self.fit_intercept)

    def add(self, acc: HessianAccumulator, payload, X, y_index, sample_weight) -> HessianAccumulator:
        if X.shape[0] == 0:
            return acc
        X, proba, s = _forward_into(acc, payload, X, y_index, sample_weight, self.fit_intercept)
        if self.stride > 1:
            X, proba, s = X[::self.stride], proba[::self.stride], s[::self.stride]
        acc.hessian_weight += float(s.sum())
        Xt = _with_ones(X) if self.fit_intercept else X
        if _is_sparse(Xt):
            _add_hessian_sparse(acc.hessian_sum, Xt, proba, s)
        else:
            _add_hessian_dense(acc.hessian_sum, Xt, proba, s)
        return acc


def _add_hessian_dense(H, Xt, proba, s):
    """H_upper += Σ_i s_i diag(p_i) ⊗ x̃_i x̃_iᵀ − GᵀG over a dense chunk (sub-chunked)."""
    n, width = Xt.shape
    n_classes = proba.shape[1]
    P = n_classes * width
    # the diagonal blocks in one GEMM against x̃ ⊗ x̃ when that buffer is not much larger than G,
    # else one syrk per class (efficient when D̃ is large)
    khatri_rao = width <= 4 * n_classes
    step = _rows_per_chunk(max(P, width * width if khatri_rao else 0))
    for start in range(0, n, step):
        x = Xt[start:start + step]
        p = proba[start:start + step]
        sw = s[start:start + step]
        sp_ = p * sw[:, None]  # s_i p_ic
        if khatri_rao:
            outer = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], width * width)
            blocks = (sp_.T @ outer).reshape(n_classes, width, width)
            for c in range(n_classes):
                H[c * width:(c + 1) * width, c * width:(c + 1) * width] += np.triu(blocks[c])
        else:
            for c in range(n_classes):
                a = x * np.sqrt(sp_[:, c])[:, None]
                H[c * width:(c + 1) * width, c * width:(c + 1) * width] += _syrk(1.0, a)
        G = ((np.sqrt(sw)[:, None] * p)[:, :, None] * x[:, None, :]).reshape(x.shape[0], P)
        # Gᵀ is (P, m) Fortran-contiguous: syrk with trans=0 computes GᵀG without a copy
        _syrk(-1.0, G, beta=1.0, c=H)


def _add_hessian_sparse(H, Xt, proba, s):
    """The same sum for a CSR chunk: class row-block c is X̃ᵀ diag(s p_c) [(1 − p_c) X̃, −p_c' X̃ …]
    for c' > c, as sparse × sparse products (nothing densified but the P × D̃·C output)."""
    import scipy.sparse as sp

    n, width = Xt.shape
    n_classes = proba.shape[1]
    XtT = Xt.T.tocsr()
    for c in range(n_classes):
        left = XtT @ sp.diags(s * proba[:, c])  # (D̃, n)
        weights = [1.0 - proba[:, c]] + [-proba[:, k] for k in range(c + 1, n_classes)]
        right = sp.hstack([sp.diags(w) @ Xt for w in weights], format="csc")
        block = np.asarray((left @ right).todense())  # (D̃, (C − c)·D̃)
        block[:, :width] = np.triu(block[:, :width])
        H[c * width:(c + 1) * width, c * width:] += block


# --------------------------------------------------------------------------- Hessian-vector products


class HvpAccumulator:
    """Mergeable sums of Σ_i s_i r_i x_iᵀ (C, D), Σ_i s_i r_i (C,), Σ_i s_i and the row count."""

    __slots__ = ("hv_coef_sum", "hv_intercept_sum", "weight_sum", "count")

    def __init__(self, n_classes: int, n_features: int):
        self.hv_coef_sum = np.zeros((n_classes, n_features))
        self.hv_intercept_sum = np.zeros(n_classes)
        self.weight_sum = 0.0
        self.count = 0

    def merge(self, other: "HvpAccumulator") -> "HvpAccumulator":
        self.hv_coef_sum += other.hv_coef_sum
        self.hv_intercept_sum += other.hv_intercept_sum
        self.weight_sum += other.weight_sum
        self.count += other.count
        return self

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(∇²ℓ·(V, c) as coef part (C, D), intercept part (C,)); data term only, no L2."""
        if self.weight_sum <= 0.0:
            raise ValueError("the total sample weight is zero: no rows (or only zero-weight rows)")
        return self.hv_coef_sum / self.weight_sum, self.hv_intercept_sum / self.weight_sum


class HvpKernel:
    """Block kernel for one Hessian-vector product of the data term.

    Payload (coef (C, D), intercept (C,), V (C, D), c (C,)): the direction (V, c) in model
    coordinates. Per row z_i = V x_i + c, r_i = s_i (p_i ⊙ z_i − p_i (p_iᵀ z_i)); the product is
    (Σ r_i x_iᵀ, Σ r_i) / Σ s_i. Two products per chunk: X [W; V]ᵀ and Xᵀ R.
    Without an intercept, b and c are ignored (taken as 0).
    """

    def __init__(self, fit_intercept: bool):
        self.fit_intercept = bool(fit_intercept)

    def zero(self, n_classes: int, n_features: int) -> HvpAccumulator:
        return HvpAccumulator(n_classes, n_features)

    def add(self, acc: HvpAccumulator, payload, X, y_index, sample_weight) -> HvpAccumulator:
        if X.shape[0] == 0:
            return acc
        coef, intercept, V, c = payload
        coef = np.asarray(coef, dtype=np.float64)
        n_classes = coef.shape[0]
        X = _as_float64(X)
        prod = np.asarray(X @ np.vstack([coef, np.asarray(V, dtype=np.float64)]).T)
        logits, z = prod[:, :n_classes], prod[:, n_classes:]
        if self.fit_intercept:
            logits += np.asarray(intercept, dtype=np.float64)
            z += np.asarray(c, dtype=np.float64)
        p = softmax(logits)
        r = p * z
        r -= p * r.sum(axis=1, keepdims=True)
        if sample_weight is None:
            weight = float(X.shape[0])
        else:
            s = np.asarray(sample_weight, dtype=np.float64)
            r *= s[:, None]
            weight = float(s.sum())
        acc.hv_coef_sum += np.asarray(X.T @ r).T
        acc.hv_intercept_sum += r.sum(axis=0)
        acc.weight_sum += weight
        acc.count += X.shape[0]
        return acc


# --------------------------------------------------------------------------- Hessian diagonal


class DiagSums(NamedTuple):
    """Means (over Σ s_i) of q_ic x_ij², q_ic x_ij and q_ic, with q = p (1 − p): the entries
    (c,j),(c,j) / (c,j),(c,D) / (c,D),(c,D) of the data Hessian — all that its diagonal in θ needs."""

    qxx: np.ndarray  # of shape (n_classes, n_features)
    qx: np.ndarray  # of shape (n_classes, n_features)
    q: np.ndarray  # of shape (n_classes,)


class HessianDiagAccumulator(LossAccumulator):
    """Loss/gradient sums plus the ``DiagSums`` sums (one pass gives J, ∇J and diag ∇²J)."""

    __slots__ = ("qxx_sum", "qx_sum", "q_sum")

    def __init__(self, n_classes: int, n_features: int):
        super().__init__(n_classes, n_features)
        self.qxx_sum = np.zeros((n_classes, n_features))
        self.qx_sum = np.zeros((n_classes, n_features))
        self.q_sum = np.zeros(n_classes)

    def merge(self, other: "HessianDiagAccumulator") -> "HessianDiagAccumulator":
        super().merge(other)
        self.qxx_sum += other.qxx_sum
        self.qx_sum += other.qx_sum
        self.q_sum += other.q_sum
        return self

    def result(self):
        """(mean loss, mean grad_coef, mean grad_intercept, DiagSums of means); no L2."""
        loss, grad_coef, grad_intercept = super().result()
        w = self.weight_sum
        return loss, grad_coef, grad_intercept, DiagSums(self.qxx_sum / w, self.qx_sum / w, self.q_sum / w)


class HessianDiagKernel:
    """Block kernel: loss/gradient sums and the sums behind diag ∇²J (for preconditioned CG).

    Payload (coef, intercept). Three products per chunk (X Wᵀ, Xᵀ[R, Q], (X⊙X)ᵀ Q); CSR stays CSR.
    """

    def __init__(self, fit_intercept: bool):
        self.fit_intercept = bool(fit_intercept)

    def zero(self, n_classes: int, n_features: int) -> HessianDiagAccumulator:
        return HessianDiagAccumulator(n_classes, n_features)

    def add(self, acc, payload, X, y_index, sample_weight):
        if X.shape[0] == 0:
            return acc
        X, proba, s = _forward_into(acc, payload, X, y_index, sample_weight, self.fit_intercept)
        q = proba * (1.0 - proba) * s[:, None]
        squared = X.multiply(X) if _is_sparse(X) else X * X
        acc.qxx_sum += np.asarray(squared.T @ q).T
        acc.qx_sum += np.asarray(X.T @ q).T
        acc.q_sum += q.sum(axis=0)
        return acc


# --------------------------------------------------------------------------- θ coordinates


def _theta_permutation(precond) -> np.ndarray:
    """perm[k] = the class-major (W, b) flat index of θ's entry k (θ = (Θ.ravel(), β))."""
    D, rows = precond.n_features, precond.rows
    width = D + (1 if precond.fit_intercept else 0)
    c, j = np.divmod(np.arange(rows * D), D)
    perm = [c * width + j]
    if precond.fit_intercept:
        perm.append(np.arange(rows) * width + D)
    return np.concatenate(perm)


def hessian_in_theta(precond, H_wb: np.ndarray) -> np.ndarray:
    """Tᵀ H T: a (W, b)-space Hessian in the optimizer's θ coordinates (``Preconditioner``).

    θ → (W, b) is linear, W = Θ S⁻¹ and b = β − W μ (b ≡ 0 without intercept); its Jacobian T acts
    on each class block the same way: column Θ_cj is e_(c,j)/s_j − (μ_j/s_j) e_(c,D), column β_c is
    e_(c,D). So Tᵀ H T is two column operations on each axis (O(P²), no P³ product), then the
    classes pinned by ``reference`` are dropped and the entries permuted to θ's layout
    (Θ row-major first, then β). ``precond.gradient`` is the same Tᵀ applied to a gradient.

    Parameters
    ----------
    precond : Preconditioner
    H_wb : ndarray (C·D̃, C·D̃), class-major (index c·D̃ + j, j = D the intercept)

    Returns
    -------
    ndarray (precond.size, precond.size)
    """
    C, D = precond.n_classes, precond.n_features
    width = D + (1 if precond.fit_intercept else 0)
    if H_wb.shape != (C * width, C * width):
        raise ValueError(f"H_wb has shape {H_wb.shape}; expected {(C * width, C * width)}")
    H = np.array(H_wb, dtype=np.float64).reshape(C, width, C, width)
    scale, mean = precond.scale, precond.mean
    if precond.fit_intercept:
        H[..., :D] -= H[..., D:] * mean
        H[..., :D] /= scale
        H[:, :D] -= H[:, D:] * mean[:, None, None]
        H[:, :D] /= scale[:, None, None]
    else:
        H /= scale
        H /= scale[:, None, None]
    rows = precond.rows
    H = H[:rows, :, :rows, :].reshape(rows * width, rows * width)
    perm = _theta_permutation(precond)
    return H[np.ix_(perm, perm)]


def hessian_diag_in_theta(precond, diag: DiagSums) -> np.ndarray:
    """diag(Tᵀ ∇²ℓ T) from ``DiagSums``: (E[q x²] − 2 μ E[q x] + μ² E[q]) / s² on Θ, E[q] on β.

    Data term only (the penalty's diagonal is added by the caller). Shape (precond.size,).
    """
    rows = precond.rows
    qxx, qx, q = diag.qxx[:rows], diag.qx[:rows], diag.q[:rows]
    mean, scale = precond.mean, precond.scale
    coef_part = (qxx - 2.0 * qx * mean + q[:, None] * mean**2) / scale**2
    parts = [coef_part.ravel()]
    if precond.fit_intercept:
        parts.append(q)
    return np.concatenate(parts)


def _feature_curvature(penalty, n_features: int, l2_weights=None) -> np.ndarray:
    """Per-feature curvature (D,) of the smooth penalty: ``penalty.feature_curvature(D)`` for a
    penalty object, the array itself, or (the former signature) λ with weights p_j → λ p_j."""
    if hasattr(penalty, "feature_curvature"):
        return np.asarray(penalty.feature_curvature(n_features), dtype=np.float64)
    arr = np.asarray(penalty, dtype=np.float64)
    if arr.ndim == 0:  # λ (and p_j): only where λ p_j is zero matters
        weights = np.ones(n_features) if l2_weights is None else np.asarray(l2_weights, dtype=np.float64)
        return float(arr) * weights
    return arr


def null_directions(precond, penalty, l2_weights=None) -> np.ndarray:
    """Orthonormal basis (size, k) of directions along which J is exactly constant in θ.

    ``penalty`` is the smooth penalty (anything with ``feature_curvature(D)``, e.g. ``L2Penalty``)
    or its per-feature curvature, an array of shape (D,); a number λ (with ``l2_weights`` p_j) is
    read as curvature λ p_j (the former signature). A feature is flat when its curvature is 0.

    Adding the same amount to every class's logit changes no probability, so with all C rows free
    (``reference=False``) the class-sum directions are flat: β → β + t·1 always (b is not
    penalised), and Θ_·j → Θ_·j + t·1 when feature j's penalty weight λ p_j is 0. The Hessian is
    singular along them and the gradient orthogonal to them; Newton steps are taken in their
    complement. ``reference=True`` pins a class and has none (k = 0).
    """
    n = precond.size
    if precond.reference:
        return np.zeros((n, 0))
    D, C = precond.n_features, precond.rows
    flat_features = (np.flatnonzero(_feature_curvature(penalty, D, l2_weights) == 0.0) if D
                     else np.zeros(0, dtype=int))
    columns = []
    unit = 1.0 / np.sqrt(C)
    for j in flat_features:
        v = np.zeros(n)
        v[np.arange(C) * D + j] = unit
        columns.append(v)
    if precond.fit_intercept:
        v = np.zeros(n)
        v[C * D:] = unit
        columns.append(v)
    return np.stack(columns, axis=1) if columns else np.zeros((n, 0))
