"""softmax_spark.resident: passes on tasks that stay for a fit give the sums of a Spark job per pass,
bit for bit; they give the cores back (close, idle timeout) and fall back to a job when they fail."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import make_data, to_df
from softmax_spark import resident
from softmax_spark.config import TrainConfig
from softmax_spark.distributed import DistributedLoss
from softmax_spark.features import FeatureSpec
from softmax_spark.ingest import ingest
from softmax_spark.kernels import LossGradKernel
from softmax_spark.training import fit_dataframe


@pytest.fixture
def ingested(spark):
    X, y = make_data(n=600, d=5, c=3, seed=3)
    data = ingest(to_df(spark, X, y), FeatureSpec(features_col="features"), "label", [0, 1, 2], None,
                  "float64", 2)
    yield data
    data.release()
    resident.close()


def _params(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 5)), rng.normal(size=3)


@pytest.mark.parametrize("master, cores", [("local", 1), ("local[2]", 2), ("local[3, 2]", 3), ("local[*]", None),
                                           ("spark://127.0.0.1:7077", None), ("local-cluster[2,1,1024]", None),
                                           ("yarn", None), ("", None)])
def test_local_cores_reads_spark_master_urls(master, cores):
    import os

    expected = (os.cpu_count() or 1) if master == "local[*]" else cores
    assert resident.local_cores(master) == expected


def test_resident_passes_give_the_sums_of_a_job_per_pass(spark, ingested):
    by_job = DistributedLoss(ingested, 3, 5, resident=False)
    on_tasks = DistributedLoss(ingested, 3, 5)
    for seed in range(3):
        a, b = by_job(*_params(seed)), on_tasks(*_params(seed))
        assert a.loss == b.loss and a.weight_sum == b.weight_sum and a.n_rows == b.n_rows == 600
        assert np.array_equal(a.grad_coef, b.grad_coef) and np.array_equal(a.grad_intercept, b.grad_intercept)
    # minibatches draw the same rows
    a = by_job(*_params(7), iteration=4, batch_fraction=0.3, seed=1)
    b = on_tasks(*_params(7), iteration=4, batch_fraction=0.3, seed=1)
    assert a.n_rows == b.n_rows and a.loss == b.loss and np.array_equal(a.grad_coef, b.grad_coef)
    assert on_tasks.passes == 4 and resident._pool is not None
    # (each pass of by_job closed the tasks first: a job needs the cores they hold)
    for _ in range(3):
        on_tasks(*_params(0))
    assert resident._pool.passes == 4  # the minibatch pass started these tasks


def test_close_gives_the_cores_back_at_once(spark, ingested):
    DistributedLoss(ingested, 3, 5)(*_params(0))
    assert resident._pool is not None
    resident.close()
    assert resident._pool is None
    started = time.perf_counter()
    assert spark.sparkContext.parallelize(range(4), 2).sum() == 6
    assert time.perf_counter() - started < resident.IDLE_SECONDS


def test_idle_tasks_end_by_themselves(spark, ingested, monkeypatch):
    monkeypatch.setattr(resident, "IDLE_SECONDS", 0.3)
    loss = DistributedLoss(ingested, 3, 5)
    first = loss(*_params(0))
    pool = resident._pool
    pool.thread.join(30)
    assert not pool.thread.is_alive() and pool.error is None  # the job ended: every task returned
    again = loss(*_params(0))  # new tasks, same sums
    assert resident._pool is not pool and again.loss == first.loss


def test_a_failing_task_falls_back_to_a_spark_job(spark, ingested):
    class FailsOnResidentTasks(LossGradKernel):
        def add(self, acc, payload, X, y, w):
            from pyspark import TaskContext

            if "softmax_spark-resident" in (TaskContext.get().getLocalProperty("spark.job.tags") or ""):
                raise RuntimeError("only on a resident task")
            return super().add(acc, payload, X, y, w)

    loss = DistributedLoss(ingested, 3, 5)
    reference = loss(*_params(0))
    assert resident._pool is not None
    acc = loss.run(FailsOnResidentTasks(True), _params(0))  # a local class: pickled by value, as Spark does
    assert acc.result()[0] == reference.loss
    assert resident._pool is None and not loss.resident  # closed; this loss runs jobs from now on
    assert loss(*_params(0)).loss == reference.loss and resident._pool is None


def test_more_partitions_than_cores_are_spread_over_the_cores(spark):
    X, y = make_data(n=300, d=5, c=3, seed=4)
    data = ingest(to_df(spark, X, y, partitions=3), FeatureSpec(features_col="features"), "label", [0, 1, 2],
                  None, "float64", 3)
    try:
        by_job = DistributedLoss(data, 3, 5, resident=False)(*_params(0))
        on_tasks = DistributedLoss(data, 3, 5)(*_params(0))
        assert resident._pool.n_tasks == 2
        assert on_tasks.loss == by_job.loss and np.array_equal(on_tasks.grad_coef, by_job.grad_coef)
    finally:
        data.release()


def test_training_with_and_without_resident_tasks_gives_the_same_model(spark, tmp_path):
    X, y = make_data(n=500, d=4, c=3, seed=8)
    df = to_df(spark, X, y)
    models = [fit_dataframe(spark, TrainConfig(input="<df>", l2=1e-3, optimizer="lbfgs", resident_tasks=flag),
                            df=df, write=False) for flag in (False, True)]
    assert np.array_equal(models[0].coef, models[1].coef)
    assert np.array_equal(models[0].intercept, models[1].intercept)
    assert models[0].metadata["passes"] == models[1].metadata["passes"]
    assert resident._pool is None  # the fit's end gave the cores back


def test_tasks_of_an_interrupted_pass_never_serve_another(spark, ingested):
    loss = DistributedLoss(ingested, 3, 5)
    first = loss(*_params(0))
    pool = resident._pool
    pool.busy = True  # what a KeyboardInterrupt while waiting for the answers leaves
    assert not pool.fresh()
    again = loss(*_params(0))  # new tasks: the old ones' late answers are never read
    assert resident._pool is not pool and again.loss == first.loss


def test_the_resident_job_stays_in_the_callers_job_group(spark, ingested):
    """Cancelling the caller's job group (a notebook's cell cancel) reaches the resident tasks, as
    it reached each pass's job."""
    sc = spark.sparkContext
    sc.setJobGroup("softmax_spark-test-group", "a caller's group")
    try:
        DistributedLoss(ingested, 3, 5)(*_params(0))
        jobs = sc.statusTracker().getJobIdsForGroup("softmax_spark-test-group")
        assert resident._pool is not None and len(jobs) == 2  # the descriptors' collect and the resident job
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
