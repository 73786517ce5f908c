"""Issue 28's path target: 5-fold CV along 20 regParams against one default fit at the chosen regParam.

    .venv/bin/python bench/cv_path.py [--rows 200000] [--folds 5] [--num-reg-params 20] [--repeats 2]

One process, one local[2] SparkSession (the machine's two cores), the dense ``bench/make_data.py`` data
(``--rows`` × 64 × 10, seed 42; written if missing) cached as a VectorUDT column. Timed, in order:
``SoftmaxRegressionCV(numFolds, numRegParams, standardization=False).fit`` once, then ``--repeats``
fits of ``SoftmaxRegression(regParam=<the chosen one>, standardization=False)`` at the Estimator's
defaults. The package imported is the one on ``PYTHONPATH`` (an older checkout's, to compare), else this
checkout's. Printed: both wall times, their ratio against each single fit (the target: ≤ 3×), the chosen
regParam, the path's passes and solver, and each single fit's solver and iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--num-reg-params", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--elastic-net", type=float, default=0.0, help="elasticNetParam of the path and the single fits")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    a = p.parse_args(argv)

    name = f"synth_r{a.rows}_f64_c10_s42"
    path = os.path.join(BENCH_DIR, "data", name)
    if not os.path.isdir(path):
        subprocess.run([sys.executable, os.path.join(BENCH_DIR, "make_data.py"), "--rows", str(a.rows)], check=True)

    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession

    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionCV

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "6g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    raw = spark.read.parquet(path)
    df = raw.select(array_to_vector("features").alias("features"), raw["label"].cast("double").alias("label")).cache()
    df.count()

    t = time.perf_counter()
    cv_model = SoftmaxRegressionCV(numFolds=a.folds, numRegParams=a.num_reg_params, standardization=False,
                                   elasticNetParams=[a.elastic_net]).fit(df)
    cv_seconds = time.perf_counter() - t
    meta = cv_model.bestModel.softmaxModel.metadata["cross_validation"]
    chosen = float(cv_model.bestRegParam)
    singles = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        m = SoftmaxRegression(regParam=chosen, elasticNetParam=a.elastic_net, standardization=False).fit(df)
        singles.append({"seconds": time.perf_counter() - t, "solver": m.softmaxModel.metadata.get("solver"),
                        "iterations": len(m.softmaxModel.history)})
    import softmax_spark

    out = {"code": os.path.dirname(os.path.dirname(softmax_spark.__file__)), "rows": a.rows, "folds": a.folds, "num_reg_params": a.num_reg_params, "cv_seconds": cv_seconds,
           "chosen_regParam": chosen, "path_passes": meta["path_passes"], "passes": meta["passes"],
           "cv_solver": meta["solver"], "cv_l1_solver": meta.get("l1_solver"), "elastic_net": a.elastic_net,
           "singles": singles,
           "ratios": [cv_seconds / s["seconds"] for s in singles], "loadavg": os.getloadavg()}
    print(json.dumps(out, indent=1))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
