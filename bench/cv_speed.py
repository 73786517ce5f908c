"""CrossValidator over SoftmaxRegression: this checkout against an older commit, side by side.

    .venv/bin/python bench/cv_speed.py --old-commit <rev> [--rows 2000] [--processes 2] [--repeats 3]

The old code is ``git archive <rev> softmax_spark`` unpacked in a temporary directory; each side
runs in its own Python process (its own local[2] SparkSession, ``PYTHONPATH`` pointing at its
``softmax_spark``), old and new processes alternating (``--processes`` of each). In a process: the
data (the model-selection acceptance generator: badly scaled features, classes drawn from a
softmax model; ``--rows`` × 20 features × 5 classes) is cached, one untimed warm-up
``CrossValidator.fit`` per grid, then ``--repeats`` timed fits per grid:

- ``l2``: 3 folds × regParam ∈ {1e-1, 1e-2, 1e-3, 1e-4} (logLoss);
- ``enet``: 3 folds × regParam ∈ {1e-2, 1e-3} × elasticNetParam ∈ {0, 0.5} (logLoss).

Reported per side and grid: the median wall time of ``CrossValidator.fit`` over every timed fit,
the ratio old/new, and the largest difference between the two sides' ``avgMetrics`` (the target:
≥ 3× and ≤ 1e-6). ``--out`` writes the raw times as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)

CHILD = r'''
import json, os, sys, time
import numpy as np
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
try:
    from softmax_spark.spark.session import build_session
except ImportError:  # an old commit, before the layered subpackages
    from softmax_spark.session import build_session
from softmax_spark.ml import SoftmaxRegression
rows, repeats = int(sys.argv[1]), int(sys.argv[2])
s = build_session("cv_speed", master="local[2]", conf={"spark.sql.shuffle.partitions": "2",
                  "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
s.sparkContext.setLogLevel("ERROR")
import logging; logging.getLogger("softmax_spark").setLevel(logging.WARNING)
rng = np.random.default_rng(3); n, D, C = rows, 20, 5
X = rng.normal(size=(n, D)) * np.logspace(-1, 2, D); W = rng.normal(size=(C, D)) / np.logspace(-1, 2, D)
Z = X @ W.T; P = np.exp(Z - Z.max(1, keepdims=True)); P /= P.sum(1, keepdims=True)
y = (P.cumsum(1) > rng.random((n, 1))).argmax(1)
df = s.createDataFrame([(Vectors.dense(r.tolist()), float(k)) for r, k in zip(X, y)], ["features", "label"]).cache()
df.count()
ev = MulticlassClassificationEvaluator(metricName="logLoss")
est = SoftmaxRegression(standardization=False)
grids = {"l2": ParamGridBuilder().addGrid(est.regParam, [1e-1, 1e-2, 1e-3, 1e-4]).build(),
         "enet": ParamGridBuilder().addGrid(est.regParam, [1e-2, 1e-3]).addGrid(est.elasticNetParam, [0.0, 0.5]).build()}
out = {}
for name, grid in grids.items():
    cv = CrossValidator(estimator=est, estimatorParamMaps=grid, evaluator=ev, numFolds=3, seed=11)
    cv.fit(df)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); m = cv.fit(df); times.append(time.perf_counter() - t)
    out[name] = {"seconds": times, "avgMetrics": [float(v) for v in m.avgMetrics]}
print("RESULT " + json.dumps(out), flush=True)
'''


def _unpack(rev: str, into: str) -> str:
    archive = os.path.join(into, "old.tar")
    subprocess.run(["git", "-C", REPO, "archive", "-o", archive, rev, "softmax_spark"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(os.path.join(into, "old"))
    return os.path.join(into, "old")


def _run(src: str, rows: int, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(repeats)], env=env, capture_output=True,
                          text=True, cwd=src)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"cv_speed: the run with {src} failed (exit {proc.returncode})")
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old-commit", required=True, help="the commit to compare against (git rev)")
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--processes", type=int, default=2, help="processes per side, old and new alternating")
    p.add_argument("--repeats", type=int, default=3, help="timed CrossValidator fits per grid and process")
    p.add_argument("--out", help="JSON path for the raw times")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cv_speed-") as tmp:
        old_src = _unpack(a.old_commit, tmp)
        runs: dict = {"old": [], "new": []}
        for i in range(a.processes):
            for side, src in (("old", old_src), ("new", REPO)) if i % 2 == 0 else (("new", REPO), ("old", old_src)):
                t = time.perf_counter()
                runs[side].append(_run(src, a.rows, a.repeats))
                print(f"[cv_speed] {side} process {i + 1}/{a.processes} done in {time.perf_counter() - t:.0f} s",
                      flush=True)
    summary = {}
    for grid in runs["old"][0]:
        med = {side: statistics.median([t for r in runs[side] for t in r[grid]["seconds"]]) for side in runs}
        diff = max(abs(o - n) for o, n in zip(runs["old"][0][grid]["avgMetrics"], runs["new"][0][grid]["avgMetrics"]))
        summary[grid] = {"old_median_s": med["old"], "new_median_s": med["new"], "ratio": med["old"] / med["new"],
                         "max_avgMetrics_diff": diff}
        print(f"{grid}: old {med['old']:.2f} s, new {med['new']:.2f} s (medians of "
              f"{a.processes * a.repeats}): {med['old'] / med['new']:.2f}x faster; avgMetrics differ by {diff:.1e}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"runs": runs, "summary": summary, "old_commit": a.old_commit, "rows": a.rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
