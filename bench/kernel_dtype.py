"""The loss/gradient kernel on a float32 chunk: up-cast to float64 vs float32 BLAS (issue 14).

Two ways to compute one chunk's sums (``loss.loss_and_gradient_sums``) when the cached block is
float32, both with the per-chunk sums added in float64 across chunks:

- ``upcast``: the chunk is copied to float64, then X Wᵀ and Rᵀ X are dgemm (what the kernels do);
- ``sgemm``: X Wᵀ and Rᵀ X in float32 BLAS on the chunk as stored (W and R cast to float32), the
  logits up-cast to float64 for the log-softmax, the (C, D) product up-cast before it is added.

Both run side by side in one process, alternated, BLAS on one thread (as in a Spark task);
reported: the median seconds per chunk of each and their ratio, plus the float64 reference
(the same values in a float64 block, no cast) and the relative gradient error of ``sgemm``
against ``upcast`` (max over entries / max entry) and of its loss sum. Timings on a shared machine are noisy: compare the ratio, not the seconds.

Usage:  python bench/kernel_dtype.py [--rows 32768] [--features 64] [--classes 10] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.core.loss import log_softmax, loss_and_gradient_sums  # noqa: E402


def sums_sgemm(coef, intercept, X, y_index):
    """The chunk's (loss_sum, grad_coef_sum, grad_intercept_sum) with float32 products."""
    logits = (X @ coef.astype(np.float32).T).astype(np.float64)
    logits += intercept
    log_proba = log_softmax(logits)
    rows = np.arange(X.shape[0])
    loss_sum = float(-log_proba[rows, y_index].sum())
    residual = np.exp(log_proba, out=logits)
    residual[rows, y_index] -= 1.0
    grad = (residual.astype(np.float32).T @ X).astype(np.float64)
    return loss_sum, grad, residual.sum(axis=0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=32768, help="rows per chunk (distributed.CHUNK_ROWS)")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--chunks", type=int, default=8, help="chunks per timed pass")
    p.add_argument("--repeats", type=int, default=15, help="timed passes of each variant")
    a = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    rng = np.random.default_rng(0)
    X32 = [rng.standard_normal((a.rows, a.features)).astype(np.float32) for _ in range(a.chunks)]
    X64 = [x.astype(np.float64) for x in X32]
    y = [rng.integers(0, a.classes, a.rows) for _ in range(a.chunks)]
    coef = rng.standard_normal((a.classes, a.features)) * 0.1
    intercept = rng.standard_normal(a.classes) * 0.1

    def upcast():
        return [loss_and_gradient_sums(coef, intercept, x, t) for x, t in zip(X32, y)]

    def sgemm():
        return [sums_sgemm(coef, intercept, x, t) for x, t in zip(X32, y)]

    def float64():
        return [loss_and_gradient_sums(coef, intercept, x, t) for x, t in zip(X64, y)]

    variants = {"upcast": upcast, "sgemm": sgemm, "float64": float64}
    times = {k: [] for k in variants}
    for f in variants.values():  # warm-up
        f()
    for r in range(a.repeats):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - t0) / a.chunks)
    exact, fast = upcast(), sgemm()
    ref = sum(s.grad_coef_sum for s in exact)
    got = sum(g for _, g, _ in fast)
    loss_ref, loss_got = sum(s.loss_sum for s in exact), sum(l for l, _, _ in fast)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "shape": [a.rows, a.features, a.classes],
        "median_seconds_per_chunk": med,
        "sgemm_per_upcast": med["sgemm"] / med["upcast"],
        "upcast_per_float64": med["upcast"] / med["float64"],
        "sgemm_grad_rel_error": float(np.abs(got - ref).max() / np.abs(ref).max()),
        "sgemm_loss_rel_error": abs(loss_got - loss_ref) / abs(loss_ref),
        "loadavg": os.getloadavg()[0],
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
