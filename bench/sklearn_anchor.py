"""Anchor: what a user would run instead — scikit-learn in one process, on the benchmark's Parquet.

    python bench/sklearn_anchor.py --input bench/data/synth_r1000000_f64_c10_s42 --l2 1e-4 \
        --solver lbfgs|newton-cholesky [--tol 1e-10] [--max-iter 1000] [--out result.json]

The whole process is what is timed by the orchestrator (bench/run.py runs it like the Spark jobs);
inside it, ``read_seconds`` (pyarrow → numpy, ``make_data.load_numpy``) and ``fit_seconds``
(``LogisticRegression.fit``) are reported separately. The objective is the bench's J: mean
log-loss + λ‖W‖²_F, which scikit-learn's multinomial LogisticRegression minimises with
C = 1/(2λN) (its objective is C·Σ loss + ½‖W‖²; README "Equivalent peers"); J of the solution is
computed here with ``objective_and_gradient`` of tests/core_helpers.py on the same rows, so it compares
with ours and MLlib's. newton-cholesky materialises the (C·(D+1))² Hessian: refused above
``--newton-max-params`` (default 4096, ``solvers.auto.NEWTON_MAX_PARAMS``).

H2O GLM (``h2o`` from PyPI) is an optional further anchor, not run here (no Spark 4 build; it needs
its own JVM cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, os.path.dirname(BENCH_DIR))

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="a bench/make_data.py data set directory")
    p.add_argument("--l2", type=float, default=1e-4, help="λ of J = mean log-loss + λ‖W‖²_F (> 0)")
    p.add_argument("--solver", choices=["lbfgs", "newton-cholesky"], default="lbfgs")
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--newton-max-params", type=int, default=4096)
    p.add_argument("--out", help="JSON result path")
    a = p.parse_args(argv)
    if not a.l2 > 0:
        print("sklearn_anchor: --l2 must be > 0 (C = 1/(2λN))", file=sys.stderr)
        return 2
    import make_data
    from sklearn.linear_model import LogisticRegression

    from solvers import reference_objective

    t_read = time.perf_counter()
    X, y = make_data.load_numpy(a.input)
    read_seconds = time.perf_counter() - t_read
    n, d = X.shape
    classes = np.unique(y)
    params = len(classes) * (d + 1)
    result = {"solver": a.solver, "rows": n, "features": d, "classes": int(len(classes)), "l2": a.l2}
    if a.solver == "newton-cholesky" and params > a.newton_max_params:
        result["skipped"] = f"C·(D+1) = {params} > {a.newton_max_params}: the Hessian does not fit"
    else:
        est = LogisticRegression(C=1.0 / (2.0 * a.l2 * n), solver=a.solver, tol=a.tol, max_iter=a.max_iter)
        t_fit = time.perf_counter()
        est.fit(X, y)
        fit_seconds = time.perf_counter() - t_fit
        coef, intercept = est.coef_, est.intercept_
        if len(classes) == 2:  # one row v = w₁ − w₀ → the centred 2-row model
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        y_index = np.searchsorted(classes, y)
        J, _, _ = reference_objective()(coef, intercept, X, y_index, l2=a.l2)
        result.update(read_seconds=read_seconds, fit_seconds=fit_seconds, objective=float(J),
                      n_iter=int(np.max(est.n_iter_)))
    result["process_seconds"] = time.perf_counter() - T0
    line = " ".join(f"{k}={v}" for k, v in result.items() if isinstance(v, (int, float)))
    print(f"sklearn_anchor: {line}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
