"""First fit of a fresh session, ours against MLlib's (issue 29): ``python bench/cold_start.py [--repeats 3]``.

Each run is a new ``local[2]`` Python process (own SparkSession, ``PYSPARK_PYTHON`` unset, as a
notebook user has it) that builds the ``fresh-notebook`` acceptance check's data (2,000 rows, two
string columns with nulls, three numbers, five string labels), fits the pre-stages (StringIndexer →
OneHotEncoder → VectorAssembler), then times the estimator's fit: ``softmax_spark.ml.SoftmaxRegression``
or ``pyspark.ml.classification.LogisticRegression`` at regParam 0.01. Ours and MLlib's alternate;
prints each run and the medians. Not part of ``make bench`` (whose runs are spark-submit jobs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

RUN = r'''
import sys, time, numpy as np
from pyspark.sql import SparkSession
from pyspark.ml import Pipeline
from pyspark.ml.feature import StringIndexer, OneHotEncoder, VectorAssembler
s = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
     .config("spark.ui.showConsoleProgress", "false").getOrCreate())
s.sparkContext.setLogLevel("ERROR")
rng = np.random.default_rng(5); n = 2000
a = [None if rng.random() < 0.05 else f"a{int(v)}" for v in rng.integers(0, 6, n)]
b = [f"b{int(v)}" for v in rng.integers(0, 4, n)]
x = rng.normal(size=(n, 3))
lab = [f"k{int(v)}" for v in (x[:, 0] + (np.array([len(v or '') for v in a]) > 1) + rng.normal(size=n) > 0.5)
       + rng.integers(0, 3, n)]
df = s.createDataFrame([(a[i], b[i], *map(float, x[i]), lab[i]) for i in range(n)], ["a", "b", "x0", "x1", "x2", "kind"])
stages = [StringIndexer(inputCols=["a", "b", "kind"], outputCols=["ai", "bi", "label"], handleInvalid="keep"),
          OneHotEncoder(inputCols=["ai", "bi"], outputCols=["ao", "bo"]),
          VectorAssembler(inputCols=["ao", "bo", "x0", "x1", "x2"], outputCol="features")]
data = Pipeline(stages=stages).fit(df).transform(df)
if sys.argv[1] == "ours":
    from softmax_spark.sparkml.classification import SoftmaxRegression as Est
else:
    from pyspark.ml.classification import LogisticRegression as Est
t = time.perf_counter(); Est(regParam=0.01).fit(data); t = time.perf_counter() - t
print(f"FIT {t:.3f}")
'''


def one(which: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    done = subprocess.run([sys.executable, "-c", RUN, which], capture_output=True, text=True, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("FIT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"{which} run failed:\n{done.stderr[-2000:]}")
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {"ours": [], "mllib": []}
    for i in range(args.repeats):
        for which in (("ours", "mllib") if i % 2 == 0 else ("mllib", "ours")):
            times[which].append(one(which))
            print(f"run {i + 1} {which}: {times[which][-1]:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    for which, values in times.items():
        print(f"median first fit {which}: {statistics.median(values):.2f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
