"""The old home of the plain Python API (``fit.estimator``) and its deprecated name."""

import pytest

from softmax_spark.fit import estimator, trainer


def test_old_names_are_the_trainer_and_warn():
    assert estimator.SoftmaxTrainer is trainer.SoftmaxTrainer and estimator.train is trainer.train
    with pytest.warns(DeprecationWarning):
        estimator.SoftmaxRegression(l2=0.1)
