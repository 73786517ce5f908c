"""(issue 24) Per-pass time of resident passes (DistributedLoss) and of a pool start, for whichever softmax_spark
PYTHONPATH names; a small (2,000 × 20 × 5) and a wide (20,000 × 784 × 10) workload in one session."""
import json, os, sys, time
import numpy as np
import pyarrow as pa, pyarrow.parquet as pq


def make(rows, d, c):
    path = f"/tmp/softmax_spark-bench-data_{rows}_{d}_{c}.parquet"
    if not os.path.exists(path):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(rows, d)) * (10.0 ** rng.uniform(-2, 3, size=d))
        y = rng.integers(0, c, size=rows)
        tmp = path + ".tmp"
        pq.write_table(pa.table({"features": pa.array(list(X), type=pa.list_(pa.float64())), "label": y}), tmp,
                       row_group_size=8192)
        os.rename(tmp, path)
    return path


import softmax_spark
from softmax_spark.spark import resident
from softmax_spark.spark.distributed import DistributedLoss
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.ingest import ingest
from softmax_spark.spark.session import build_session

spark = build_session("rbench", master="local[2]", conf={"spark.ui.enabled": "false", "spark.driver.memory": "2g",
                                                          "spark.ui.showConsoleProgress": "false"})
spark.sparkContext.setLogLevel("ERROR")
out = {"src": os.path.dirname(softmax_spark.__file__)}
for name, (rows, d, c, n_passes) in {"small": (2000, 20, 5, 60), "wide": (20000, 784, 10, 30)}.items():
    df = spark.read.parquet(make(rows, d, c)).repartition(2)
    data = ingest(df, FeatureSpec(features_col="features"), "label", list(range(c)), None, "float64", 2)
    loss = DistributedLoss(data, c, d)
    rng = np.random.default_rng(0)
    coef, b = rng.normal(size=(c, d)) * 1e-3, np.zeros(c)
    loss(coef, b)  # start the pool
    times = []
    for i in range(n_passes):
        t = time.perf_counter(); loss(coef * (1 + 1e-3 * i), b); times.append(time.perf_counter() - t)
    starts = []
    for i in range(5):
        resident.close()
        t = time.perf_counter(); loss(coef, b); starts.append(time.perf_counter() - t)
    assert loss.resident
    out[name] = {"pass_median": float(np.median(times)), "start_median": float(np.median(starts)),
                 "load": os.getloadavg()[0]}
    resident.close(); data.release()
print(json.dumps(out))
spark.stop()
