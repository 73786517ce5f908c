"""MLlib baseline: multinomial ``LogisticRegression`` on the benchmark's Parquet, run by spark-submit.

    spark-submit --master local[2] --driver-memory 8g bench/mllib_fit.py \
        --input bench/data/synth_r1000000_f64_c10_s42 --out result.json

The array<double> column ``features`` is turned into an ml Vector with
``pyspark.ml.functions.array_to_vector`` (a JVM expression: no Python worker touches the rows),
``label`` is cast to double, and the estimator is fitted with

    family="multinomial", regParam=2e-4, elasticNetParam=0, standardization=False,
    tol=1e-6, maxIter=1000, fitIntercept=True

With elasticNetParam=0 and standardization=False, MLlib minimises
mean log-loss + regParam/2 · ‖W‖²_F (intercepts unpenalised), i.e. our J with l2 = regParam/2.

What the JSON at ``--out`` holds (the orchestrator bench/run.py reads it):

- ``fit_seconds``: wall time of ``LogisticRegression.fit`` alone (the summariser pass over the
  Parquet, blockifying + caching the standardised instances, the L-BFGS iterations);
  ``session_seconds`` / ``read_setup_seconds`` the parts before it.
- ``save_seconds``: ``model.write().overwrite().save(--model-dir)`` when ``--model-dir`` is given
  (the orchestrator always gives it: our trainer writes its model too).
- ``total_iterations`` (the training summary's, = len(objectiveHistory) − 1 in Spark ≥ 3.1) and
  ``objective_history`` (MLlib's own objective after each iteration, in the same units as J).
- ``loss_evals``: the Spark jobs named ``treeAggregate at RDDLossFunction.scala`` — one per
  evaluation of the loss and gradient (L-BFGS's line search may evaluate more than once per
  iteration), with their count, each one's duration from Spark's status store (ms resolution), and
  the median without the first (the first also reads the Parquet and fills the cache).
- ``cached``: the training blocks MLlib caches (MEMORY_AND_DISK, named "<uid>: training blocks"):
  the largest ``memSize``/``diskSize`` seen by polling ``SparkContext.getRDDStorageInfo`` every
  0.2 s during the fit (MLlib unpersists them before ``fit`` returns), plus an estimate from the
  layout in Spark's source (each block holds the labels, a dense n×D matrix of doubles, and the
  weights only when they are not all 1: ≈ 8·n·(D+1) bytes).
- ``coef`` (C×D) and ``intercept`` (C): the fitted model, so the orchestrator computes our J for
  MLlib's solution in numpy on the same data.
- ``blas``: which netlib implementation the JVM uses (native BLAS or the Java fallback).

A line ``cached_bytes=<n>`` and one ``mllib_fit: ...`` summary line are printed to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="MLlib multinomial LogisticRegression baseline")
    p.add_argument("--input", required=True, help="Parquet directory (features array<double>, label int)")
    p.add_argument("--out", required=True, help="where to write the result JSON")
    p.add_argument("--reg-param", type=float, default=2e-4)
    p.add_argument("--elastic-net-param", type=float, default=0.0,
                   help="MLlib's α: the penalty is regParam·(α‖W‖₁ + (1−α)/2‖W‖²) (our --l1 regParam·α, --l2 regParam·(1−α)/2)")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--poll-seconds", type=float, default=0.2)
    p.add_argument("--model-dir", default=None,
                   help="save the fitted model here (model.write().overwrite().save), as a training job "
                   "does: our jobs/train.py always writes its model, so the whole processes compare "
                   "the same work")
    return p.parse_args(argv)


class StoragePoller:
    """Polls the cached-RDD sizes in a thread; keeps, per RDD name, the largest sizes seen."""

    def __init__(self, jsc, interval: float):
        self._jsc, self._interval = jsc, interval
        self._stop = threading.Event()
        self.peaks: dict[str, dict] = {}
        self.polls = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="storage-poller", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for info in self._jsc.getRDDStorageInfo():
                    name, mem, disk = info.name(), int(info.memSize()), int(info.diskSize())
                    prev = self.peaks.get(name)
                    if prev is None or mem + disk > prev["mem_bytes"] + prev["disk_bytes"]:
                        self.peaks[name] = {
                            "rdd_id": int(info.id()),
                            "mem_bytes": mem,
                            "disk_bytes": disk,
                            "cached_partitions": int(info.numCachedPartitions()),
                            "partitions": int(info.numPartitions()),
                            "storage_level": str(info.storageLevel().description()),
                        }
                self.polls += 1
            except Exception as exc:  # the JVM going away at the end, mostly
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def fit_jobs(jsc, since_ms: float, until_ms: float):
    """The Spark jobs submitted during the fit, from the status store: the durations (s) of the
    RDDLossFunction jobs, oldest first; a count of the others by name; and where the fit's wall
    time went (before the first job, inside jobs, between jobs, after the last)."""
    store = jsc.statusStore()
    it = store.jobsList(None).iterator()
    loss, other, spans = [], {}, []
    while it.hasNext():
        job = it.next()
        name = str(job.name())
        sub, comp = job.submissionTime(), job.completionTime()
        if sub.isEmpty():
            continue
        start = sub.get().getTime()
        if start < since_ms or start > until_ms:
            continue
        end = comp.get().getTime() if not comp.isEmpty() else start
        spans.append((start, end))
        if "RDDLossFunction" in name:
            loss.append((int(job.jobId()), (end - start) / 1000.0))
        else:
            other[name] = other.get(name, 0) + 1
    loss.sort()
    spans.sort()
    timeline = None
    if spans:
        busy, cur_s, cur_e = 0.0, spans[0][0], spans[0][1]
        for s, e in spans[1:]:
            if s > cur_e:
                busy += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        busy += cur_e - cur_s
        first, last = spans[0][0], max(e for _, e in spans)
        timeline = {
            "jobs": len(spans),
            "before_first_job_seconds": (first - since_ms) / 1000.0,
            "in_jobs_seconds": busy / 1000.0,
            "between_jobs_seconds": (last - first - busy) / 1000.0,
            "after_last_job_seconds": (until_ms - last) / 1000.0,
        }
    return [d for _, d in loss], other, timeline


def blas_info(jvm) -> dict:
    info = {}
    try:
        info["java"] = str(jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName())
    except Exception as exc:
        info["java"] = f"unknown ({type(exc).__name__})"
    try:
        info["native"] = str(jvm.dev.ludovic.netlib.blas.NativeBLAS.getInstance().getClass().getName())
    except Exception:
        info["native"] = None  # no native BLAS library found: MLlib's level-3 calls run in Java
    return info


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("bench-mllib-logreg").getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("WARN")
    jsc = sc._jsc.sc()
    t_session = time.perf_counter()

    raw = spark.read.parquet(args.input)
    # an ml Vector column (the sparse workload) is used as it is; an array<double> is converted
    is_array = raw.schema["features"].dataType.typeName() == "array"
    df = raw.select(
        (array_to_vector(F.col("features")) if is_array else F.col("features")).alias("features"),
        F.col("label").cast("double").alias("label"),
    )
    lr = LogisticRegression(
        featuresCol="features",
        labelCol="label",
        family="multinomial",
        regParam=args.reg_param,
        elasticNetParam=args.elastic_net_param,
        standardization=False,
        tol=args.tol,
        maxIter=args.max_iter,
        fitIntercept=True,
    )
    t_setup = time.perf_counter()
    with StoragePoller(jsc, args.poll_seconds) as poller:
        since_ms = time.time() * 1000.0
        t0 = time.perf_counter()
        model = lr.fit(df)
        fit_seconds = time.perf_counter() - t0
        until_ms = time.time() * 1000.0
    save_seconds = None
    if args.model_dir:
        t_save = time.perf_counter()
        model.write().overwrite().save(args.model_dir)
        save_seconds = time.perf_counter() - t_save
    summary = model.summary
    history = [float(v) for v in summary.objectiveHistory]
    total_iterations = int(summary.totalIterations)
    durations, other_jobs, timeline = fit_jobs(jsc, since_ms - 1.0, until_ms + 1.0)
    done = [d for d in durations if d is not None]
    coef = model.coefficientMatrix.toArray()
    intercept = model.interceptVector.toArray()

    blocks = {name: v for name, v in poller.peaks.items() if "training blocks" in name}
    num_features = int(model.numFeatures)
    cached_measured = max((v["mem_bytes"] + v["disk_bytes"] for v in blocks.values()), default=None)
    result = {
        "tool": "bench/mllib_fit.py",
        "spark_version": spark.version,
        "master": sc.master,
        "default_parallelism": sc.defaultParallelism,
        "input": os.path.abspath(args.input),
        "input_partitions": df.rdd.getNumPartitions(),
        "params": {
            "family": "multinomial",
            "regParam": args.reg_param,
            "elasticNetParam": args.elastic_net_param,
            "standardization": False,
            "tol": args.tol,
            "maxIter": args.max_iter,
            "fitIntercept": True,
            "equivalent_l2": args.reg_param * (1.0 - args.elastic_net_param) / 2.0,
            "equivalent_l1": args.reg_param * args.elastic_net_param,
        },
        "session_seconds": t_session - t_start,
        "read_setup_seconds": t_setup - t_session,
        "fit_seconds": fit_seconds,
        "model_dir": args.model_dir,
        "save_seconds": save_seconds,
        "total_iterations": total_iterations,
        "objective_history": history,
        "final_objective_mllib": history[-1] if history else None,
        "seconds_per_iteration": fit_seconds / total_iterations if total_iterations > 0 else None,
        "loss_evals": {
            "count": len(durations),
            "seconds": done,
            "first_seconds": done[0] if done else None,
            "median_seconds_after_first": statistics.median(done[1:]) if len(done) > 1 else None,
            "total_seconds": sum(done),
            "other_jobs": other_jobs,
            "fit_timeline": timeline,
            "source": "Spark status store (jobs named 'treeAggregate at RDDLossFunction.scala')",
        },
        "cached": {
            "measured_bytes": cached_measured,
            "measured_how": "peak memSize+diskSize of the '<uid>: training blocks' RDD, "
            "SparkContext.getRDDStorageInfo polled every %.1fs during fit" % args.poll_seconds,
            "rdds": blocks,
            "all_rdds_seen": poller.peaks,
            "polls": poller.polls,
            "poll_error": poller.error,
            "estimate_from_source_bytes_per_row": 8 * (num_features + 1),
            "estimate_from_source": "InstanceBlock: labels + dense n×D double matrix "
            "(+ weights only when not all 1) ≈ 8·n·(D+1) bytes, deserialized MEMORY_AND_DISK",
        },
        "n_classes": int(model.numClasses),
        "n_features": num_features,
        "coef": coef.tolist(),
        "intercept": intercept.tolist(),
        "blas": blas_info(sc._jvm),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, args.out)
    if cached_measured is not None:
        print(f"cached_bytes={cached_measured}")
    median = result["loss_evals"]["median_seconds_after_first"]
    print(
        f"mllib_fit: fit {fit_seconds:.2f}s, {total_iterations} iterations, {len(durations)} loss evals "
        f"(median {median if median is None else round(median, 4)}s), "
        f"objective {result['final_objective_mllib']!r}, cached {cached_measured} bytes",
        flush=True,
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
