"""spark.backend: one Backend per session, chosen once; spark.losses: the loss on that backend."""

import numpy as np

from softmax_spark.core.kernels import LossGradKernel
from softmax_spark.spark import losses
from softmax_spark.spark.backend import ResidentBackend, backend_for, default_parallelism
from softmax_spark.spark.driver_data import DriverLoss


def test_one_backend_per_session_whatever_handle_is_given(spark):
    backend = backend_for(spark)
    assert isinstance(backend, ResidentBackend)  # the suite's session is local[…]
    assert backend.kind == "resident" and backend.has_rdd and backend.has_jvm
    df = spark.range(3)
    assert backend_for(df) is backend and backend_for(spark.sparkContext) is backend
    assert backend_for(df.rdd) is backend
    assert default_parallelism(spark) == spark.sparkContext.defaultParallelism


def test_make_loss_runs_a_pass_on_the_sessions_backend(spark):
    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.fit.training import TrainingData

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, size=60)
    df = spark.createDataFrame([(x.tolist(), int(c)) for x, c in zip(X, y)], "features array<double>, label long")
    with TrainingData(TrainConfig(), [0, 1, 2], 2) as data:
        data.add("train", df)
        ingested = data.sets["train"]
        loss = losses.make_loss(ingested, 3, 3)
        assert not isinstance(loss, DriverLoss)
        coef, intercept = np.zeros((3, 3)), np.zeros(3)
        acc = loss.run(LossGradKernel(True), (coef, intercept), label="test pass")
    # at W = 0, b = 0 every row's loss is log 3
    assert acc.count == 60 and np.isclose(acc.loss_sum / acc.weight_sum, np.log(3))
