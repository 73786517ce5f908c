"""Block kernels (``softmax_spark.core.kernels``), Spark-free: the same rows as a dense ndarray and as
a CSR matrix give the same loss and gradient sums (1e-10), chunked or whole, and a CSR chunk is
never densified."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from softmax_spark.spark.tasks import row_chunks
from softmax_spark.core.kernels import LossGradKernel, loss_and_gradient_sums_any
from softmax_spark.core.loss import LossAccumulator, loss_and_gradient_sums


def _problem(n=300, d=40, c=4, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format="csr") * 3.0
    y = rng.integers(0, c, n)
    return X.tocsr(), y, rng.normal(size=(c, d)), rng.normal(size=c), rng.uniform(0.1, 2.0, n)


def _close(a: LossAccumulator, b: LossAccumulator):
    la, ga, ba = a.result()
    lb, gb, bb = b.result()
    assert abs(la - lb) <= 1e-10 * max(1.0, abs(la))
    np.testing.assert_allclose(ga, gb, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ba, bb, rtol=0, atol=1e-10)
    assert a.weight_sum == pytest.approx(b.weight_sum, rel=1e-14) and a.count == b.count


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_and_csr_give_the_same_sums(fit_intercept, weighted, dtype):
    X, y, coef, intercept, w = _problem()
    X = X.astype(dtype)
    w = w if weighted else None
    kernel = LossGradKernel(fit_intercept)
    dense = kernel.add(kernel.zero(4, 40), (coef, intercept), X.toarray(), y, w)
    csr = kernel.add(kernel.zero(4, 40), (coef, intercept), X, y, w)
    _close(dense, csr)
    # and both equal the reference dense kernel of loss.py
    ref = loss_and_gradient_sums(coef, intercept if fit_intercept else None, X.toarray(), y, w)
    assert dense.loss_sum == pytest.approx(ref.loss_sum, rel=1e-12)


def test_chunks_and_merge_equal_one_block():
    """Chunked (row_chunks, CSR chunk bounds) and merged accumulators equal one whole-block call."""
    X, y, coef, intercept, w = _problem(n=1000, d=60)
    kernel = LossGradKernel(True)
    whole = kernel.add(kernel.zero(4, 60), (coef, intercept), X, y, w)
    import softmax_spark.spark.tasks as distributed  # row_chunks reads its constants there

    saved = distributed.CHUNK_ROWS, distributed.CSR_CHUNK_ROWS, distributed.CHUNK_NNZ
    distributed.CHUNK_ROWS, distributed.CSR_CHUNK_ROWS, distributed.CHUNK_NNZ = 128, 128, 500
    try:
        parts = []
        for rows in (None, np.arange(0, 1000, 3)):
            acc = kernel.zero(4, 60)
            chunks = list(row_chunks(X, rows))
            assert len(chunks) > 4
            for sel in chunks:
                assert X[sel].nnz <= 500 or X[sel].shape[0] == 1
                acc = kernel.add(acc, (coef, intercept), X[sel], y[sel], w[sel])
            parts.append(acc)
    finally:
        distributed.CHUNK_ROWS, distributed.CSR_CHUNK_ROWS, distributed.CHUNK_NNZ = saved
    _close(whole, parts[0])
    subset = kernel.add(kernel.zero(4, 60), (coef, intercept), X[::3], y[::3], w[::3])
    _close(subset, parts[1])
    left = kernel.add(kernel.zero(4, 60), (coef, intercept), X[:400], y[:400], w[:400])
    right = kernel.add(kernel.zero(4, 60), (coef, intercept), X[400:], y[400:], w[400:])
    _close(whole, left.merge(right))


def test_csr_chunk_is_never_densified(monkeypatch):
    X, y, coef, intercept, _ = _problem()
    for cls in (sp.csr_matrix, sp.csc_matrix):
        monkeypatch.setattr(cls, "toarray", lambda self, *a, **k: pytest.fail("densified"))
        monkeypatch.setattr(cls, "todense", lambda self, *a, **k: pytest.fail("densified"))
    sums = loss_and_gradient_sums_any(coef, intercept, X, y)
    assert sums.grad_coef_sum.shape == (4, 40) and np.isfinite(sums.loss_sum)


def test_kernel_pickles_and_empty_chunk():
    kernel = pickle.loads(pickle.dumps(LossGradKernel(False)))
    assert kernel.fit_intercept is False
    acc = kernel.add(kernel.zero(3, 5), (np.zeros((3, 5)), np.zeros(3)), sp.csr_matrix((0, 5)), np.zeros(0, int))
    assert acc.count == 0 and acc.weight_sum == 0.0


@pytest.mark.long
def test_wide_csr_gradient_shape():
    """D = 2²⁰: the gradient is dense (C, D); the logits cost ∝ nnz."""
    rng = np.random.default_rng(1)
    n, D, C = 50, 1 << 20, 3
    X = sp.random(n, D, density=20 / D, random_state=1, format="csr")
    coef = rng.normal(size=(C, D))
    sums = loss_and_gradient_sums_any(coef, np.zeros(C), X, rng.integers(0, C, n))
    assert sums.grad_coef_sum.shape == (C, D)
    touched = np.unique(X.indices)
    untouched = np.setdiff1d(np.arange(0, D, 4099), touched)
    assert np.all(sums.grad_coef_sum[:, untouched] == 0.0)


def test_dense_task_code_needs_no_scipy():
    """Executors may lack scipy (tests/cluster.py ships numpy, pyarrow, threadpoolctl only): the
    task-side modules import without it, and dense data (arrays, DenseVectors) runs without it."""
    import subprocess
    import sys

    code = """
import sys
sys.modules['scipy'] = None  # any scipy import now fails
import numpy as np, pyarrow as pa
from softmax_spark.spark import distributed
from softmax_spark.spark import ingest
from softmax_spark.core import kernels
from softmax_spark.core.features import FeatureSpec, features_to_numpy
t = pa.struct([('type', pa.int8()), ('size', pa.int32()), ('indices', pa.list_(pa.int32())),
               ('values', pa.list_(pa.float64()))])
col = pa.array([{'type': 1, 'size': None, 'indices': None, 'values': [1.0, 0.0, 2.0]}], type=t)
X = features_to_numpy(pa.record_batch([col], names=['features']), FeatureSpec(), sparse='auto')
assert isinstance(X, np.ndarray) and X.shape == (1, 3)
k = kernels.LossGradKernel(True)
acc = k.add(k.zero(2, 3), (np.zeros((2, 3)), np.zeros(2)), X, np.array([1]), None)
assert abs(acc.loss_sum - np.log(2)) < 1e-15
assert not ingest._scipy_available()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
