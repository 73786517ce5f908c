"""softmax_spark: distributed softmax (multinomial logistic) regression on Apache Spark.

The package is layered (``docs/reference/api/layers.md``, checked by ``.importlinter``): the numpy
core (``softmax_spark.core``: model, loss, curvature, …) and ``softmax_spark.solvers`` import no
Spark. This module is the facade on top. Every public name but the errors is imported on first
use, so ``import softmax_spark`` loads nothing else —
``python -m softmax_spark.worker_daemon`` runs before PySpark's daemon forks its workers, where
numpy's and pyarrow's threads must not exist yet.
"""

from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.version import __version__

__all__ = ["SoftmaxModel", "load_model", "save_model", "read_model", "InputError", "ModelFormatError", "SoftmaxTrainer",
           "train", "SoftmaxRegression", "score_dataframe", "coefficient_table"]


def __getattr__(name):
    if name == "SoftmaxModel":
        from softmax_spark.core.model import SoftmaxModel

        return SoftmaxModel
    if name in ("load_model", "save_model", "read_model"):
        from softmax_spark.io import model_io

        return getattr(model_io, name)
    if name in ("SoftmaxTrainer", "train", "SoftmaxRegression"):  # SoftmaxRegression: deprecated name
        from softmax_spark.fit import trainer

        return getattr(trainer, name)
    if name == "coefficient_table":  # SoftmaxModel.coefficient_table before the layers
        from softmax_spark.fit.coefficients import coefficient_table

        return coefficient_table
    if name == "score_dataframe":  # the Spark ML classes live in softmax_spark.sparkml.classification
        from softmax_spark.spark.scoring import score_dataframe

        return score_dataframe
    raise AttributeError(name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
