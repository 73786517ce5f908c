"""Old home of the plain Python API, kept for imports: see ``softmax_spark.fit.trainer``.

``softmax_spark.fit.estimator.SoftmaxRegression`` is ``softmax_spark.fit.trainer.SoftmaxRegression``,
the deprecated name of ``SoftmaxTrainer`` (a ``DeprecationWarning`` on construction).
"""

from softmax_spark.fit.trainer import SoftmaxRegression, SoftmaxTrainer, train

__all__ = ["SoftmaxRegression", "SoftmaxTrainer", "train"]
