"""The Spark ML API, in place of ``pyspark.ml.classification.LogisticRegression``::

    from softmax_spark.ml import SoftmaxRegression, SoftmaxRegressionModel, SoftmaxRegressionCV

The public, stable path of the Spark ML classes: saved models, Pipelines and CrossValidators record
``softmax_spark.ml.<Class>`` in their metadata, so this module re-exports them whichever module of
``softmax_spark.sparkml`` holds the code (``classification``: the Estimator and Model; ``tuning``: the
cross-validated path; ``summary``: the training summaries).
"""

from softmax_spark.sparkml.classification import SoftmaxRegression, SoftmaxRegressionModel, read_model_dir
from softmax_spark.sparkml.summary import (BinarySoftmaxRegressionSummary, BinarySoftmaxRegressionTrainingSummary,
                                           SoftmaxRegressionSummary, SoftmaxRegressionTrainingSummary)
from softmax_spark.sparkml.tuning import SoftmaxRegressionCV, SoftmaxRegressionCVModel

__all__ = ["SoftmaxRegression", "SoftmaxRegressionModel", "SoftmaxRegressionCV", "SoftmaxRegressionCVModel",
           "SoftmaxRegressionSummary", "SoftmaxRegressionTrainingSummary", "BinarySoftmaxRegressionSummary",
           "BinarySoftmaxRegressionTrainingSummary", "read_model_dir"]
