"""Block kernels: what a Spark task computes on each chunk of its partition's rows.

A block kernel is a small picklable object (module-level class, so Spark's workers can unpickle
it) with two methods::

    zero(n_classes, n_features) -> accumulator         # has .merge(other) -> self
    add(acc, payload, X, y_index, sample_weight) -> acc # one chunk of rows

- ``X``: ndarray (n, D) float32/float64 for dense blocks, or ``scipy.sparse.csr_matrix`` (n, D)
  for CSR blocks — a kernel uses only ``X @ M`` and ``X.T @ R`` (valid for both), never
  densifies a CSR chunk;
- ``y_index``: int array (n,) in [0, C); ``sample_weight``: float64 (n,) or None (class weights
  are already folded in by the caller);
- ``payload``: what the driver broadcast for the pass, e.g. (coef, intercept).

float32 blocks (``--dtype float32``, or ``auto`` on array<float> input) are read as stored and
each chunk is up-cast to float64 before its two products (dgemm); the kernels compute in float64
whatever the cache dtype, so a model trained on float32 data equals the float64 run on the same
values to rounding (tests/test_float32.py), and every solver's stopping rule keeps the float64
noise floor it was tuned for (Newton's ``NOISE_REL`` 1e-13 on J). Measured
(``bench/kernel_dtype.py``, one BLAS thread, medians of 15–21 alternated passes, on a shared,
loaded machine — noisy), per chunk of 32,768 rows × 64 features × 10 classes: up-cast 11.3 ms,
float32 BLAS (sgemm for X Wᵀ and Rᵀ X, logits and sums in float64) 7.0 ms (0.62×), the same
values cached float64 10.9 ms; at 8,192 × 784 × 10: 26.2 ms, 11.2 ms (0.43×), 19.5 ms. The
sgemm kernel's loss sum differs from the float64 one by 2.7e-10 relative (gradient 6e-8 of its
largest entry): ~3000× Newton's noise allowance, so its backtracking and decrement rules would
need a float32 floor. The up-cast is kept: on workload 1 the kernel is ~⅓ of a pass (0.51 s per
pass, ~15 chunks per task), so sgemm would save ≈ 10–15 % of a pass, while the cache halves
either way (the point of float32 input). Revisit with a noise floor per dtype if passes become
kernel-bound (wide data: 0.43×).

Accumulators hold float64 *sums* (merged by addition in ``treeAggregate``) and divide by Σ s_i
once, at the end (``result()``). ``distributed.DistributedLoss.run`` applies a kernel to every
block of the data; this module is pure numpy (a CSR chunk brings scipy with it; dense data needs
no scipy on the executors) and imports no Spark.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from softmax_spark.core.loss import BlockSums, LossAccumulator, column_sums, loss_and_gradient_sums, softmax_nll_

__all__ = ["BlockKernel", "LossGradKernel", "loss_and_gradient_sums_any"]


class BlockKernel(Protocol):
    """The protocol every block kernel follows (see the module docstring)."""

    def zero(self, n_classes: int, n_features: int):
        """An empty accumulator (with ``merge(other) -> self``)."""

    def add(self, acc, payload, X, y_index, sample_weight):
        """Add one chunk's sums to ``acc``; returns ``acc``."""


def loss_and_gradient_sums_any(coef, intercept, X, y_index, sample_weight=None) -> BlockSums:
    """``loss.loss_and_gradient_sums`` for a dense ndarray or a CSR chunk.

    The same sums, Σ_i s_i·(−log p(y_i|x_i)), Σ_i s_i (p_i − onehot(y_i)) x_iᵀ (C, D),
    Σ_i s_i (p_i − onehot(y_i)) (C,) and Σ_i s_i, all float64. For CSR ``X`` the logits are the
    sparse × dense product X Wᵀ (cost ∝ nnz·C) and the gradient the transpose product Xᵀ R,
    computed by scipy on the CSR arrays as they are (the transpose of a CSR matrix is a CSC
    view, no copy); only the chunk's values are up-cast to float64.
    """
    if isinstance(X, np.ndarray):  # dense (memmaps included); no scipy needed on the executors
        return loss_and_gradient_sums(coef, intercept, X, y_index, sample_weight)
    coef = np.asarray(coef, dtype=np.float64)
    n_classes = coef.shape[0]
    n_rows = X.shape[0]
    if n_rows == 0:
        return BlockSums(0.0, np.zeros_like(coef), np.zeros(n_classes), 0.0)
    if X.dtype != np.float64:
        X = X.astype(np.float64)  # float64 accumulation: this chunk's values only
    logits = np.asarray(X @ coef.T)  # (n, C)
    if intercept is not None:
        logits += intercept
    nll = softmax_nll_(logits, y_index)
    residual = logits  # R = s ⊙ (p − onehot(y)), in the logits' buffer
    residual[np.arange(n_rows), y_index] -= 1.0
    if sample_weight is None:
        loss_sum, weight_sum = float(nll.sum()), float(n_rows)
    else:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        loss_sum, weight_sum = float(nll @ sample_weight), float(sample_weight.sum())
        residual *= sample_weight[:, None]
    grad_coef = np.asarray(X.T @ residual).T  # (C, D) from the (D, C) sparse-transpose product
    return BlockSums(loss_sum, grad_coef, column_sums(residual), weight_sum)


class LossGradKernel:
    """Loss and gradient sums of the softmax data term; accumulator ``loss.LossAccumulator``.

    Payload: (coef of shape (C, D), intercept of shape (C,) or None). ``fit_intercept=False``
    ignores the intercept (b ≡ 0). Formula: see ``softmax_spark.core.loss``.
    """

    def __init__(self, fit_intercept: bool = True):
        self.fit_intercept = bool(fit_intercept)

    def zero(self, n_classes: int, n_features: int) -> LossAccumulator:
        return LossAccumulator(n_classes, n_features)

    def add(self, acc: LossAccumulator, payload, X, y_index, sample_weight=None) -> LossAccumulator:
        coef, intercept = payload
        b = intercept if self.fit_intercept else None
        return acc.add_sums(loss_and_gradient_sums_any(coef, b, X, y_index, sample_weight), X.shape[0])

    def __repr__(self) -> str:
        return f"LossGradKernel(fit_intercept={self.fit_intercept})"
