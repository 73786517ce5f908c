"""Per-partition statistics of the ingest and the block-format rule: weighted column moments
(Chan et al.'s pairwise update, merged across partitions in partition order) and the density
rule that picks dense or CSR storage (``choose_block_format``). numpy only; scipy for CSR input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FULL_COVARIANCE_MAX_FEATURES", "batch_moments", "sparse_batch_moments", "CSR_DENSITY", "WIDE_FEATURES",
           "choose_block_format", "merge_moments"]


FULL_COVARIANCE_MAX_FEATURES = 512  # above this only the diagonal is kept (D² floats per partition)


def batch_moments(X: np.ndarray, w: np.ndarray | None):
    """(Σ w, weighted column mean, M2) of one block, where M2 = Σ w (x − mean)(x − mean)ᵀ of
    shape (D, D) when D ≤ FULL_COVARIANCE_MAX_FEATURES, else its diagonal of shape (D,).
    Centred first, so a column like 1000 ± 1e-3 keeps its variance (no cancellation)."""
    total = float(X.shape[0]) if w is None else float(w.sum())
    if total <= 0:
        return None
    # float64 sums whatever the cache dtype (float32 X: w @ X and X − mean are float64 already)
    mean = X.mean(axis=0, dtype=np.float64) if w is None else (w @ X) / total
    centred = X - mean
    weighted = centred if w is None else centred * w[:, None]
    if X.shape[1] <= FULL_COVARIANCE_MAX_FEATURES:
        return total, mean, weighted.T @ centred
    return total, mean, np.einsum("ij,ij->j", weighted, centred)


def sparse_batch_moments(X, w: np.ndarray | None):
    """``batch_moments`` of a CSR chunk without densifying it: (Σ w, weighted column mean, M2),
    M2 of shape (D, D) when D ≤ FULL_COVARIANCE_MAX_FEATURES (from the sparse product XᵀWX),
    else its diagonal (from Σ w x_j²). From raw sums, centred per chunk (M2 = Σ w x xᵀ − Σw·μμᵀ),
    so a column far from zero on every row loses digits that ``batch_moments`` keeps — such a
    column is dense, and the data would be stored dense unless D is large."""
    import scipy.sparse as sp

    total = float(X.shape[0]) if w is None else float(w.sum())
    if total <= 0:
        return None
    X = X.astype(np.float64)
    Xw = X if w is None else sp.diags(w) @ X
    mean = np.asarray(Xw.sum(axis=0)).ravel() / total
    if X.shape[1] <= FULL_COVARIANCE_MAX_FEATURES:
        m2 = (X.T @ Xw).toarray() - total * np.outer(mean, mean)
        np.fill_diagonal(m2, np.maximum(np.diag(m2), 0.0))
    else:
        m2 = np.maximum(np.asarray(Xw.multiply(X).sum(axis=0)).ravel() - total * mean * mean, 0.0)
    return total, mean, m2


CSR_DENSITY = 0.25  # below this fraction of non-zeros, CSR blocks (see choose_block_format)


WIDE_FEATURES = 16384  # from this width on, the smaller files decide


def choose_block_format(n_rows: int, n_features: int, nnz: int, itemsize: int) -> str:
    """"csr" or "dense" for blocks of ``n_rows`` × ``n_features`` with ``nnz`` non-zeros.

    CSR when the density nnz / (n_rows · n_features) is below ``CSR_DENSITY`` (0.25): the sparse
    products then do ≥ 4× fewer multiply-adds than the dense BLAS ones, which makes up for their
    lower speed per operation, and the files are ≥ 2.7× smaller (float64 values + int32 indices,
    12 bytes a non-zero, against 8 a cell). Also CSR when the rows are wide (D ≥ ``WIDE_FEATURES``)
    and the CSR files are smaller than the dense ones (density below 2/3 in float64, 1/2 in float32):
    there memory decides, a dense row of 2¹⁴ float64 already being 128 KiB. Dense otherwise.
    """
    cells = n_rows * n_features
    if cells == 0:
        return "dense"
    if nnz < CSR_DENSITY * cells:
        return "csr"
    csr_bytes = nnz * (itemsize + 4) + 4 * (n_rows + 1)
    if n_features >= WIDE_FEATURES and csr_bytes < itemsize * cells:
        return "csr"
    return "dense"


def merge_moments(a, b):
    """Chan et al.'s pairwise merge of (Σ w, mean, M2) moments; ``None`` is the empty set."""
    if a is None:
        return b
    if b is None:
        return a
    wa, ma, m2a = a
    wb, mb, m2b = b
    total = wa + wb
    if total == 0:
        return a
    delta = mb - ma
    cross = np.outer(delta, delta) if np.ndim(m2a) == 2 else delta * delta
    return total, ma + delta * (wb / total), m2a + m2b + cross * (wa * wb / total)
