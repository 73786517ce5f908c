"""Optional anchor: H2O GLM (``h2o`` from PyPI, its own local JVM cluster) on the benchmark's Parquet.

    python bench/h2o_anchor.py --input bench/data/synth_r200000_f64_c10_s42 --l2 1e-4 [--out result.json]

Needs ``h2o`` importable (``pip install h2o``: the client with ``h2o.jar`` inside, ~300 MB; it runs
under Java 17) — bench/anchors.py runs this only when it is. The whole process is timed by the
orchestrator; inside, ``init_seconds`` (``h2o.init``: the H2O JVM's start), ``read_seconds``
(Parquet → numpy → an H2OFrame upload, as ``make_data.load_numpy`` reads it) and ``fit_seconds``
(``H2OGeneralizedLinearEstimator.train``) are reported separately.

The objective: H2O's multinomial GLM minimises −loglik/N + λ_H(α‖β‖₁ + (1−α)/2‖β‖²) (intercepts
not penalised), so α = 0 and λ_H = 2λ is the bench's J = mean log-loss + λ‖W‖²_F; standardize off,
solver IRLSM (H2O's Newton) or L_BFGS, ``lambda_search`` off, its default objective tolerance.
J of the solution is computed here with ``softmax_spark.core.loss.objective_and_gradient``.
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
    p.add_argument("--solver", choices=["IRLSM", "L_BFGS"], default="IRLSM")
    p.add_argument("--max-mem", default="4G", help="h2o.init max_mem_size")
    p.add_argument("--out", help="JSON result path")
    a = p.parse_args(argv)
    import h2o
    import pandas as pd
    from h2o.estimators import H2OGeneralizedLinearEstimator

    import make_data
    from softmax_spark.core.loss import objective_and_gradient

    t = time.perf_counter()
    h2o.init(max_mem_size=a.max_mem, nthreads=-1, verbose=False)
    init_seconds = time.perf_counter() - t
    try:
        t = time.perf_counter()
        X, y = make_data.load_numpy(a.input)
        n, d = X.shape
        names = [f"x{j}" for j in range(d)]
        frame = h2o.H2OFrame(pd.DataFrame(X, columns=names).assign(label=y.astype(str)))
        frame["label"] = frame["label"].asfactor()
        read_seconds = time.perf_counter() - t
        classes = sorted(np.unique(y).tolist())
        est = H2OGeneralizedLinearEstimator(family="multinomial", alpha=0.0, lambda_=2.0 * a.l2, standardize=False,
                                            solver=a.solver, lambda_search=False, max_iterations=1000)
        t = time.perf_counter()
        est.train(x=names, y="label", training_frame=frame)
        fit_seconds = time.perf_counter() - t
        coef = np.zeros((len(classes), d))
        intercept = np.zeros(len(classes))
        for key, values in est.coef().items():  # {"coefs_class_<label>": {"Intercept": b, "x0": w, …}}
            c = classes.index(int(key[len("coefs_class_"):]))
            intercept[c] = values.get("Intercept", 0.0)
            for j, name in enumerate(names):
                coef[c, j] = values.get(name, 0.0)
        J, _, _ = objective_and_gradient(coef, intercept, X, np.searchsorted(classes, y), l2=a.l2)
        result = {"solver": f"h2o-{a.solver}", "rows": n, "features": d, "classes": len(classes), "l2": a.l2,
                  "init_seconds": init_seconds, "read_seconds": read_seconds, "fit_seconds": fit_seconds,
                  "objective": float(J)}
    finally:
        h2o.cluster().shutdown()
    result["process_seconds"] = time.perf_counter() - T0
    print("h2o_anchor: " + " ".join(f"{k}={v}" for k, v in result.items() if isinstance(v, (int, float))))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
