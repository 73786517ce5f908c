"""The hardware bound: one full gradient pass of our loss kernel over the data held in memory.

    python bench/numpy_bound.py --input bench/data/synth_r1000000_f64_c10_s42 [--out bound.json]
    python bench/numpy_bound.py --input bench/data/synth_r500000_f131072_c20_s42_sparse   # CSR

A ``sparse`` data set (an ml SparseVector column) is read with pyarrow straight into a
scipy.sparse CSR matrix (``make_data.load_numpy``; never densified) and timed with the kernel the
trainer runs on CSR blocks, ``softmax_spark.core.kernels.loss_and_gradient_sums_any``: logits X Wᵀ
(sparse × dense), softmax, and the gradient Xᵀ(P − Y) (a CSC-view product), chunked like the
job (≤ ``--block-rows`` rows and ≤ ``distributed.CHUNK_NNZ`` stored values per call). scipy's
sparse products run on one thread, so for CSR the default modes are ``threads1`` and ``procsN``.

Reads the benchmark's Parquet into numpy once, then times full passes of
``softmax_spark.core.loss.loss_and_gradient_sums`` over blocks of ``--block-rows`` rows (the same
kernel and, by default, the same chunk size ``softmax_spark.spark.distributed.CHUNK_ROWS`` the Spark
job runs inside its Python workers, summed with ``LossAccumulator``), for
float64 and float32 features (the kernel up-casts each float32 block to float64 before the BLAS
calls, as it does inside the job). No Spark, no serialisation, no I/O: what is left is the
arithmetic and the memory traffic, so the Spark job's time per pass cannot beat this on this box.

Three ways of using the machine's cores are timed:

- ``threads1``: one process, BLAS limited to 1 thread (threadpoolctl);
- ``threadsN``: one process, BLAS with N threads (only the matrix products are parallel; the
  exp/log of the softmax stay single-threaded in numpy);
- ``procsN``: N forked processes with 1 BLAS thread each, each over its contiguous 1/N of the
  rows, sums merged in the parent — the closest analogue of Spark's local[N] Python workers.

Each is warmed up once and then timed ``--passes`` times; the JSON gives every time, the median,
and ``bound_seconds`` = the smallest median per dtype.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_data import load_numpy, read_manifest  # noqa: E402

from softmax_spark.core.kernels import loss_and_gradient_sums_any  # noqa: E402
from softmax_spark.core.loss import LossAccumulator  # noqa: E402

def default_block_rows() -> int:
    """The trainer's rows per dense kernel call (softmax_spark.spark.distributed.CHUNK_ROWS), else 4096.
    The block size matters (the per-block temporaries fall out of cache: see CHUNK_ROWS), so the
    bound uses the same chunking as the job."""
    try:
        from softmax_spark.spark.distributed import CHUNK_ROWS

        return int(CHUNK_ROWS)
    except Exception:
        return 4096


# Set in the parent before forking; workers read them (copy-on-write, never written).
_X = None
_Y = None
_COEF = None
_INTERCEPT = None
_BLOCK_ROWS = 65536


def default_chunk_nnz() -> int:
    """The trainer's cap on stored values per CSR kernel call (distributed.CHUNK_NNZ), else 4M."""
    try:
        from softmax_spark.spark.distributed import CHUNK_NNZ

        return int(CHUNK_NNZ)
    except Exception:
        return 1 << 22


def is_sparse(X) -> bool:
    return not isinstance(X, np.ndarray)


def matrix_nbytes(X) -> int:
    """Bytes held by X: the array, or a CSR matrix's data, indices and indptr."""
    if is_sparse(X):
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(X.nbytes)


def default_csr_block_rows() -> int:
    """The trainer's rows per CSR kernel call (distributed.CSR_CHUNK_ROWS), else 32768."""
    try:
        from softmax_spark.spark.distributed import CSR_CHUNK_ROWS

        return int(CSR_CHUNK_ROWS)
    except Exception:
        return 32768


def chunk_bounds(X, block_rows, start, stop, chunk_nnz=None):
    """Row bounds of the kernel calls over rows [start, stop): ≤ block_rows rows each and, for
    CSR, ≤ chunk_nnz stored values (at least one row) — ``distributed.row_chunks``'s rule."""
    if not is_sparse(X):
        return list(range(start, stop, block_rows)) + [stop]
    chunk_nnz = chunk_nnz or default_chunk_nnz()
    indptr = X.indptr
    bounds, s = [start], start
    while s < stop:
        by_nnz = int(np.searchsorted(indptr, indptr[s] + chunk_nnz, side="right")) - 1
        s = min(stop, s + block_rows, max(by_nnz, s + 1))
        bounds.append(s)
    return bounds


def full_pass(X, y, coef, intercept, block_rows, start=0, stop=None):
    """Sums of the data term over rows [start, stop) in chunks; returns a LossAccumulator.
    Dense X: ``loss.loss_and_gradient_sums``; CSR X: ``kernels.loss_and_gradient_sums_any``."""
    stop = X.shape[0] if stop is None else stop
    acc = LossAccumulator(*coef.shape)
    bounds = chunk_bounds(X, block_rows, start, stop)
    for s, e in zip(bounds[:-1], bounds[1:]):
        if is_sparse(X):
            acc.add_sums(loss_and_gradient_sums_any(coef, intercept, X[s:e], y[s:e]), e - s)
        else:
            acc.add(coef, intercept, X[s:e], y[s:e])
    return acc


def _worker_init():
    # one BLAS thread per worker process, like Spark's Python workers (OMP_NUM_THREADS=1 per task)
    threadpool_limits(limits=1, user_api="blas")


def _worker_pass(bounds):
    start, stop = bounds
    t0 = time.perf_counter()
    acc = full_pass(_X, _Y, _COEF, _INTERCEPT, _BLOCK_ROWS, start, stop)
    return acc, time.perf_counter() - t0


def time_in_process(X, y, coef, intercept, block_rows, threads, passes):
    times = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for i in range(passes + 1):  # pass 0 is the warm-up
            t0 = time.perf_counter()
            acc = full_pass(X, y, coef, intercept, block_rows)
            acc.result()
            if i:
                times.append(time.perf_counter() - t0)
    return times


def time_in_processes(X, y, coef, intercept, block_rows, procs, passes):
    global _X, _Y, _COEF, _INTERCEPT, _BLOCK_ROWS
    _X, _Y, _COEF, _INTERCEPT, _BLOCK_ROWS = X, y, coef, intercept, block_rows
    n = X.shape[0]
    cuts = [round(k * n / procs) for k in range(procs + 1)]
    bounds = [(cuts[k], cuts[k + 1]) for k in range(procs)]
    times, inner = [], []
    ctx = mp.get_context("fork")
    try:
        with ctx.Pool(procs, initializer=_worker_init) as pool:
            for i in range(passes + 1):
                t0 = time.perf_counter()
                parts = pool.map(_worker_pass, bounds, chunksize=1)
                total = LossAccumulator(*coef.shape)
                for acc, _ in parts:
                    total.merge(acc)
                total.result()
                if i:
                    times.append(time.perf_counter() - t0)
                    inner.append(max(s for _, s in parts))
    finally:
        _X = _Y = None
    return times, inner


def summarise(times):
    return {"seconds": [round(t, 6) for t in times], "median_seconds": statistics.median(times)}


def measure(X, y, n_classes, block_rows, passes, thread_counts, procs, seed=0):
    rng = np.random.default_rng(seed)
    coef = rng.normal(0.0, 0.05, size=(n_classes, X.shape[1]))
    intercept = rng.normal(0.0, 0.05, size=n_classes)
    # the answer must not depend on how the work is split: check once
    ref = full_pass(X, y, coef, intercept, block_rows).result()[0]
    out = {}
    for t in thread_counts:
        out[f"threads{t}"] = summarise(time_in_process(X, y, coef, intercept, block_rows, t, passes))
    if procs and procs > 1:
        times, inner = time_in_processes(X, y, coef, intercept, block_rows, procs, passes)
        out[f"procs{procs}"] = summarise(times)
        out[f"procs{procs}"]["worker_median_seconds"] = statistics.median(inner)
    out["bound_seconds"] = min(v["median_seconds"] for v in out.values() if isinstance(v, dict))
    out["rows_per_second"] = X.shape[0] / out["bound_seconds"]
    out["check_mean_loss"] = ref
    return out


def run(data_dir, dtypes=("float64", "float32"), block_rows=None, passes=5, thread_counts=None,
        procs=None, log=print):
    manifest = read_manifest(data_dir + ".json")
    if manifest is None:
        raise FileNotFoundError(f"{data_dir}.json is missing: generate the data with bench/make_data.py")
    cores = os.cpu_count() or 1
    p = manifest["params"]
    sparse = p.get("kind") == "sparse"
    block_rows = block_rows or (default_csr_block_rows() if sparse else default_block_rows())
    # scipy's sparse products are single-threaded: more BLAS threads would time the same code
    thread_counts = thread_counts or ([1] if sparse else sorted({1, cores}))
    procs = cores if procs is None else procs
    result = {
        "tool": "bench/numpy_bound.py",
        "input": data_dir,
        "rows": p["rows"],
        "features": p["features"],
        "classes": p["classes"],
        "format": "csr" if sparse else "dense",
        "block_rows": block_rows,
        "chunk_nnz": default_chunk_nnz() if sparse else None,
        "passes": passes,
        "cores": cores,
        "blas": [
            {k: i.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
            for i in threadpool_info()
        ],
        "dtypes": {},
    }
    X64 = None
    for dtype in dtypes:
        t0 = time.perf_counter()
        if dtype == "float64" or X64 is None:
            X64, y = load_numpy(data_dir, manifest, np.float64)
        X = X64 if dtype == "float64" else X64.astype(np.dtype(dtype))
        load_s = time.perf_counter() - t0
        log(f"numpy_bound: {dtype}: {X.shape[0]} rows loaded in {load_s:.1f}s "
            f"({matrix_nbytes(X) / 2**20:.0f} MiB{', CSR' if sparse else ''})")
        r = measure(X, y, p["classes"], block_rows, passes, thread_counts, procs)
        r["prepare_seconds"] = load_s  # float64: read from Parquet; other dtypes: the conversion
        r["bytes"] = matrix_nbytes(X)
        result["dtypes"][dtype] = r
        log(
            f"numpy_bound: {dtype}: "
            + ", ".join(f"{k} {v['median_seconds']:.4f}s" for k, v in r.items() if isinstance(v, dict))
            + f" -> bound {r['bound_seconds']:.4f}s/pass"
        )
        del X
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="numpy gradient-pass bound over the benchmark data")
    ap.add_argument("--input", required=True, help="data directory written by bench/make_data.py")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--block-rows", type=int, default=None,
                    help="rows per kernel call (default: the trainer's CHUNK_ROWS, CSR: CSR_CHUNK_ROWS)")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--threads", default=None, help="comma list of BLAS thread counts (default 1,<cores>)")
    ap.add_argument("--procs", type=int, default=None, help="forked worker processes (default <cores>; 0 skips)")
    ap.add_argument("--out", default=None, help="write the JSON here (default: stdout)")
    a = ap.parse_args(argv)
    threads = [int(t) for t in a.threads.split(",")] if a.threads else None
    result = run(
        a.input.rstrip("/"), [d.strip() for d in a.dtypes.split(",") if d.strip()], a.block_rows,
        a.passes, threads, a.procs, log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    text = json.dumps(result, indent=2)
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
