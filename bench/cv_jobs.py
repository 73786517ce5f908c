"""Spark jobs and stages of one CrossValidator.fit over SoftmaxRegression (2,000 × 20 × 5, 3 folds; the
regParam grid and a regParam × elasticNetParam grid), counted with a job group: a load-independent
measure beside bench/cv_speed.py's wall times. Run with PYTHONPATH pointing at the softmax_spark to count:

    PYTHONPATH=. .venv/bin/python bench/cv_jobs.py
"""

import sys, time, numpy as np
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from softmax_spark.spark.session import build_session
from softmax_spark.ml import SoftmaxRegression
s = build_session("jobs", master="local[2]", conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
s.sparkContext.setLogLevel("ERROR")
import logging; logging.getLogger("softmax_spark").setLevel(logging.WARNING)
rng = np.random.default_rng(3); n, D, C = 2000, 20, 5
X = rng.normal(size=(n, D)) * np.logspace(-1, 2, D); W = rng.normal(size=(C, D)) / np.logspace(-1, 2, D)
Z = X @ W.T; P = np.exp(Z - Z.max(1, keepdims=True)); P /= P.sum(1, keepdims=True); y = (P.cumsum(1) > rng.random((n, 1))).argmax(1)
df = s.createDataFrame([(Vectors.dense(r.tolist()), float(k)) for r, k in zip(X, y)], ["features", "label"]).cache(); df.count()
ev = MulticlassClassificationEvaluator(metricName="logLoss"); est = SoftmaxRegression(standardization=False)
sc = s.sparkContext
for name, grid in (("l2", ParamGridBuilder().addGrid(est.regParam, [1e-1, 1e-2, 1e-3, 1e-4]).build()),
                   ("enet", ParamGridBuilder().addGrid(est.regParam, [1e-2, 1e-3]).addGrid(est.elasticNetParam, [0.0, 0.5]).build())):
    cv = CrossValidator(estimator=est, estimatorParamMaps=grid, evaluator=ev, numFolds=3, seed=11)
    cv.fit(df)
    sc.setJobGroup(name, name)
    tasks0 = None
    c0 = time.process_time(); t0 = time.perf_counter()
    cv.fit(df)
    jobs = sc.statusTracker().getJobIdsForGroup(name)
    stages = sum(len(sc.statusTracker().getJobInfo(j).stageIds) for j in jobs)
    print(f"RESULT {name}: jobs {len(jobs)} stages {stages} driver-python-cpu {time.process_time() - c0:.2f}s wall {time.perf_counter() - t0:.2f}s", flush=True)
