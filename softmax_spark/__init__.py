"""softmax_spark: distributed softmax (multinomial logistic) regression on Apache Spark.

The numpy core (``model``, ``loss``, ``model_io``, ``optim``) imports no Spark; the Spark parts
(``SoftmaxRegression``) are imported lazily.
"""

from .errors import InputError, ModelFormatError
from .model import SoftmaxModel
from .model_io import load_model, save_model

__version__ = "0.1.0"

__all__ = ["SoftmaxModel", "load_model", "save_model", "InputError", "ModelFormatError", "SoftmaxRegression",
           "score_dataframe"]


def __getattr__(name):
    if name == "SoftmaxRegression":
        from .estimator import SoftmaxRegression

        return SoftmaxRegression
    if name == "score_dataframe":  # the Spark ML classes live in softmax_spark.ml
        from .scoring import score_dataframe

        return score_dataframe
    raise AttributeError(name)
