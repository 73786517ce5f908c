"""Scoring from Spark SQL: ``register(spark, model, name)`` makes a fitted model callable in SQL.

    from softmax_spark.spark.sql import register
    register(spark, model, name="softmax_predict")
    spark.sql("SELECT id, softmax_predict(features) AS prediction, "
              "softmax_predict_proba(features) AS p FROM scored_table")

Three functions are registered (session-scoped, as ``spark.udf.register`` does):

- ``<name>(features)``        → double: the class index, ``transform``'s ``prediction`` column
  (``model.classes[i]`` is the label; thresholds and the binomial rule as in ``transform``);
- ``<name>_proba(features)``  → array<double> of length C: ``transform``'s ``probability``;
- ``<name>_raw(features)``    → array<double>: ``transform``'s ``rawPrediction``.

``features`` is an ml Vector (dense or sparse rows) or an array<double>/array<float> column of
length D = the model's number of features. A null features value gives null. The functions are
row-at-a-time Python UDFs (Arrow UDFs refuse ml Vector input in streaming queries) computing with
``scoring.score_arrays``, the code ``transform`` runs, so the values are the same
(``tests/test_sql.py`` checks |Δ| ≤ 1e-12); they work in batch and streaming queries alike. For
large batch scoring ``model.transform`` (Arrow batches, ``mapInArrow``) is the faster path. A
row with another length, or a non-finite value, fails the task with an ``InputError`` naming the
function.
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.errors import InputError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.spark.scoring import check_thresholds
from softmax_spark.spark.scoring import score_arrays
from softmax_spark.spark.shipping import our_tasks

__all__ = ["register"]


def _model_parts(model):
    """(coef (C, D), intercept (C,), thresholds or None, binomial) of a ``softmax_spark.sparkml.classification``
    ``SoftmaxRegressionModel`` (its Params decide thresholds / binomial, as in ``transform``) or a
    plain ``softmax_spark.SoftmaxModel``."""
    if isinstance(model, SoftmaxModel):
        return np.asarray(model.coef, np.float64), np.asarray(model.intercept, np.float64), None, False
    inner = getattr(model, "softmaxModel", None)
    if not isinstance(inner, SoftmaxModel):
        raise TypeError(f"register: expected a softmax_spark.ml.SoftmaxRegressionModel or a softmax_spark."
                        f"SoftmaxModel, got {type(model).__name__}")
    thresholds = check_thresholds(model._thresholds(), inner.n_classes)
    return (np.asarray(inner.coef, np.float64), np.asarray(inner.intercept, np.float64), thresholds,
            bool(model.isBinomial))


def _features_row(value, n_features: int, function: str):
    """(1, D) float64 from one ml Vector (dense or sparse) or array value; None for null."""
    if value is None:
        return None
    if hasattr(value, "toArray"):
        if value.size != n_features:
            raise InputError(f"{function}: a vector of size {value.size}, the model expects {n_features}")
        x = value.toArray()
    else:
        x = np.asarray(value, dtype=np.float64)
        if x.shape != (n_features,):
            raise InputError(f"{function}: an array of {x.size} features, the model expects {n_features}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{function}: a non-finite feature value")
    return np.asarray(x, dtype=np.float64).reshape(1, -1)


def register(spark, model, name: str = "softmax_predict") -> list[str]:
    """Register ``name``, ``name_proba`` and ``name_raw`` as SQL functions of ``spark`` scoring
    with ``model`` (see the module docstring). Returns the three names.

    model : a fitted ``softmax_spark.ml.SoftmaxRegressionModel`` (its ``thresholds`` and binomial
        form apply, as in its ``transform``) or a ``softmax_spark.SoftmaxModel``.
    name  : a SQL identifier (letters, digits, ``_``; not starting with a digit).
    The coefficients travel in the UDF's closure (C·D doubles, 8 bytes each).
    Raises ``ValueError`` for a bad name, ``TypeError`` for another kind of model.
    """
    import re

    from pyspark.sql import types as T
    from pyspark.sql.functions import udf


    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"register: name must be a SQL identifier (letters, digits, _), got {name!r}")
    coef, intercept, thresholds, binomial = _model_parts(model)
    n_features = coef.shape[1]

    def make(what: str, function: str, return_type):
        def score(value):
            x = _features_row(value, n_features, function)
            if x is None:
                return None
            raw, proba, index = score_arrays(x, coef, intercept, thresholds, binomial)
            if what == "prediction":
                return float(index[0])
            return (raw if what == "raw" else proba)[0].tolist()

        # row-at-a-time (pickled rows), not Arrow: Arrow UDFs refuse ml Vector (UDT) input in
        # streaming queries (Spark 4.3: UNSUPPORTED_DATATYPE), and these functions must take Vectors there
        return udf(score, return_type, useArrow=False)

    names = [name, f"{name}_proba", f"{name}_raw"]
    kinds = [("prediction", T.DoubleType()), ("probability", T.ArrayType(T.DoubleType(), False)),
             ("raw", T.ArrayType(T.DoubleType(), False))]

    with our_tasks(spark):  # a function keeps the workers' Python it was registered with
        for function, (what, return_type) in zip(names, kinds):
            spark.udf.register(function, make(what, function, return_type))
    return names
