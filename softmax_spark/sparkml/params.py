"""The Params of ``SoftmaxRegression`` / ``SoftmaxRegressionModel`` / ``SoftmaxRegressionCV``, built
from the option declarations of ``softmax_spark.fit.config``.

Each ``TrainConfig`` option declared with ``param=`` (``_opt(..., param="lbfgsMemory")``) is a Param
here, and nothing else needs writing for it:

- ``param_kind=PARAM_OURS`` (ours: lbfgsMemory, gtol, powerT, …): the Param is generated — its name,
  its doc (``param_doc``, else the option's help), its type converter (from the option's type), its
  default (the option's default, when not None) and its ``setX`` / ``getX``;
- ``param_kind=PARAM_MLLIB`` (maxIter, regParam, featuresCol, …): MLlib's own Param from pyspark's
  ``Has*`` mixin, with MLlib's name, doc and default (``param_default="option"``: the option's default,
  e.g. ``solver="auto"``, ``seed=0``, ``checkpointInterval=10``).

``options_from_params`` reads every declared option back from the Params (what the Estimator's
``_train_config`` builds its ``TrainConfig`` from), and ``softmax_spark.sparkml.diagnostics``
derives its flag → Param table from the same declarations.

The Params that are not options — MLlib's label and prediction Params (family, thresholds, the
bounds, maxBlockSizeInMB) and the Estimator-only ones (labelIndexing, predictedLabelCol, verbose,
maxDriverBytes) — are declared in the classes below. ``_SharedParams`` is what the single fit and
the cross-validated path (``tuning.SoftmaxRegressionCV``) both take; ``_SoftmaxRegressionParams``
adds the rest of the single fit's.
"""

from __future__ import annotations

import typing

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasAggregationDepth, HasCheckpointInterval, HasElasticNetParam, HasFeaturesCol, HasFitIntercept,
    HasLabelCol, HasMaxIter, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol, HasRegParam, HasSeed,
    HasSolver, HasStandardization, HasThreshold, HasThresholds, HasTol, HasValidationIndicatorCol, HasWeightCol,
)

from softmax_spark.fit import config
from softmax_spark.fit.config import PARAM_OURS, TrainConfig
from softmax_spark.spark.driver_data import DRIVER_MAX_BYTES

__all__ = ["options_from_params", "param_names", "generated_param", "jsonable_params", "LABEL_INDEXING", "FAMILIES"]

LABEL_INDEXING = ("auto", "mllib", "sorted")
FAMILIES = ("auto", "binomial", "multinomial")


# -- type converters ----------------------------------------------------------------------------
def _to_class_weight(value):
    """classWeight: None, "balanced", or a map label → weight ≥ 0 (keys kept as given)."""
    if value is None or value == "balanced":
        return value
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"classWeight must be 'balanced' or a dict label → weight, got {value!r}")


def _to_matrix(value):
    """A pyspark.ml Matrix, or the JSON form our writers save it as ({"numRows", "numCols", "values"},
    column-major as DenseMatrix)."""
    if isinstance(value, dict) and {"numRows", "numCols", "values"} <= set(value):
        from pyspark.ml.linalg import DenseMatrix

        return DenseMatrix(int(value["numRows"]), int(value["numCols"]), [float(v) for v in value["values"]])
    return TypeConverters.toMatrix(value)


def _to_vector(value):
    """A pyspark.ml Vector, or the JSON form our writers save it as ({"values": [...]})."""
    if isinstance(value, dict) and "values" in value:
        from pyspark.ml.linalg import DenseVector

        return DenseVector([float(v) for v in value["values"]])
    return TypeConverters.toVector(value)


def _to_optional_str(value):
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r}")


# an option whose type says nothing a converter can use (``typing.Any``): its Param's converter
_ANY_CONVERTERS = {"class_weight": _to_class_weight}


def _converter(name: str, annotation):
    """The Param type converter of option ``name`` from its annotation: int → toInt, float →
    toFloat, bool → toBoolean, str → toString (``str | None`` → None or a string), list → toList."""
    if annotation is typing.Any:
        return _ANY_CONVERTERS[name]
    members = config._members(annotation)
    optional = len(members) < len(typing.get_args(annotation) or (annotation,))
    tp = members[0]
    origin = typing.get_origin(tp)
    if tp is bool:
        return TypeConverters.toBoolean
    if tp is int:
        return TypeConverters.toInt
    if tp is float:
        return TypeConverters.toFloat
    if tp is str:
        return _to_optional_str if optional else TypeConverters.toString
    if tp is list or origin in (list, tuple):
        return TypeConverters.toList
    raise TypeError(f"option {name}: no Param type converter for {annotation!r}")


def generated_param(name: str) -> Param:
    """The Param of ``TrainConfig`` option ``name`` (declared ``param=…``, ``PARAM_OURS``)."""
    f = config.option_params()[name]
    hints = typing.get_type_hints(TrainConfig)
    return Param(Params._dummy(), f.metadata["param"], f.metadata["param_doc"],
                 typeConverter=_converter(name, hints[name]))


def _declare(cls, options=None):
    """Attach the generated Params of ``options`` (default: every ``PARAM_OURS`` option) to ``cls``."""
    declared = config.option_params()
    for name in options or [n for n, f in declared.items() if f.metadata["param_kind"] == PARAM_OURS]:
        setattr(cls, declared[name].metadata["param"], generated_param(name))
    return cls


def _option_defaults(instance) -> dict:
    """``{Param name: option default}`` for the declared Params of ``instance`` whose default is the
    option's (``param_default="option"``) and not None."""
    out = {}
    for f in config.option_params().values():
        if f.metadata["param_default"] == "option" and f.default is not None and instance.hasParam(f.metadata["param"]):
            out[f.metadata["param"]] = f.default
    return out


def options_from_params(instance) -> dict:
    """``{option name: value}`` for every declared option whose Param ``instance`` has: the Param's
    value or default, None when it has neither."""
    out = {}
    for name, f in config.option_params().items():
        if instance.hasParam(f.metadata["param"]):
            param = instance.getParam(f.metadata["param"])
            out[name] = instance.getOrDefault(param) if instance.isDefined(param) else None
    return out


def param_names(cls) -> set:
    return {name for name in dir(cls) if isinstance(getattr(cls, name), Param)}


def _add_setters(cls):
    """setX / getX for every Param without a hand-written one (MLlib's setter names)."""
    for name in param_names(cls):
        setter = "set" + name[0].upper() + name[1:]
        if not hasattr(cls, setter):
            def make(param_name):
                def set_value(self, value):
                    return self._set(**{param_name: value})

                set_value.__name__ = "set" + param_name[0].upper() + param_name[1:]
                set_value.__doc__ = f"Sets the value of :py:attr:`{param_name}`."
                return set_value

            setattr(cls, setter, make(name))
        getter = "get" + name[0].upper() + name[1:]
        if not hasattr(cls, getter):
            setattr(cls, getter, (lambda n: lambda self: self.getOrDefault(getattr(self, n)))(name))
    return cls


# -- the Params classes -------------------------------------------------------------------------
class _SharedParams(
    HasFeaturesCol, HasLabelCol, HasWeightCol, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol,
    HasMaxIter, HasTol, HasFitIntercept, HasStandardization, HasAggregationDepth, HasSeed, HasSolver,
):
    """The Params of one fit that ``SoftmaxRegression`` and ``SoftmaxRegressionCV`` share (the CV
    passes them on to each fold's ``SoftmaxRegression``: ``tuning._SHARED``)."""
    family = Param(Params._dummy(), "family",
                   "label distribution: auto (binomial for ≤ 2 classes, else multinomial), binomial or multinomial",
                   typeConverter=TypeConverters.toString)
    labelIndexing = Param(Params._dummy(), "labelIndexing",
                          "how labels become classes: auto, mllib (integers 0..K−1, K = max + 1 or the column's "
                          "ML metadata) or sorted (the sorted distinct labels)", typeConverter=TypeConverters.toString)

    def __init__(self, *args):
        super().__init__(*args)
        # MLlib's defaults for MLlib's Params, the options' for the rest (param_default="option")
        self._setDefault(maxIter=100, family="auto", labelIndexing="auto")
        self._setDefault(**_option_defaults(self))

    def getFamily(self) -> str:
        return self.getOrDefault(self.family)

    def _value(self, param):
        """The Param's value, or None when it has neither a value nor a default."""
        return self.getOrDefault(param) if self.isDefined(param) else None


_declare(_SharedParams, ["num_partitions", "resident_tasks"])


class _SoftmaxRegressionParams(
    _SharedParams, HasThresholds, HasThreshold, HasRegParam, HasElasticNetParam, HasValidationIndicatorCol,
    HasCheckpointInterval,
):
    """Params of ``SoftmaxRegression`` and ``SoftmaxRegressionModel`` (see ``classification``'s
    docstring); the options' Params are generated (``_declare``)."""
    predictedLabelCol = Param(Params._dummy(), "predictedLabelCol",
                              "output column holding the predicted original label (not produced when unset or '')",
                              typeConverter=TypeConverters.toString)
    lowerBoundsOnCoefficients = Param(Params._dummy(), "lowerBoundsOnCoefficients",
                                      "MLlib's: lower bounds on coefficients (Matrix, numClasses × numFeatures; "
                                      "binomial 1 × numFeatures); L2 only", typeConverter=_to_matrix)
    upperBoundsOnCoefficients = Param(Params._dummy(), "upperBoundsOnCoefficients",
                                      "MLlib's: upper bounds on coefficients (Matrix, as lowerBoundsOnCoefficients)",
                                      typeConverter=_to_matrix)
    lowerBoundsOnIntercepts = Param(Params._dummy(), "lowerBoundsOnIntercepts",
                                    "MLlib's: lower bounds on intercepts (Vector of numClasses; binomial 1)",
                                    typeConverter=_to_vector)
    upperBoundsOnIntercepts = Param(Params._dummy(), "upperBoundsOnIntercepts",
                                    "MLlib's: upper bounds on intercepts (Vector of numClasses; binomial 1)",
                                    typeConverter=_to_vector)
    maxBlockSizeInMB = Param(Params._dummy(), "maxBlockSizeInMB",
                             "MLlib's block size for stacking rows; accepted and ignored here (our blocks are sized "
                             "by the ingest; the result does not depend on it)", typeConverter=TypeConverters.toFloat)
    maxDriverBytes = Param(Params._dummy(), "maxDriverBytes",
                           "a training set whose size Spark estimates at ≤ this many bytes (and ≤ 200,000 rows) is "
                           "read into the driver and fitted there, without Python workers (driver_data); 0: always "
                           "ingest into the executors", typeConverter=TypeConverters.toInt)
    verbose = Param(Params._dummy(), "verbose",
                    "log each iteration at INFO (as the spark-submit jobs do); false: at DEBUG, and a fit "
                    "prints one summary line (softmax_spark.spark.fit_output)", typeConverter=TypeConverters.toBoolean)

    def __init__(self, *args):
        super().__init__(*args)

        # MLlib's LogisticRegression defaults for its Params (the options' are set by _SharedParams)
        self._setDefault(regParam=0.0, tol=1e-6, threshold=0.5, maxBlockSizeInMB=0.0)
        self._setDefault(verbose=False, maxDriverBytes=DRIVER_MAX_BYTES)

    # threshold / thresholds as MLlib's LogisticRegression relates them (binary: t ↔ [1 − t, t])
    def setThreshold(self, value: float):
        self._set(threshold=value)
        self.clear(self.thresholds)
        return self

    def setThresholds(self, value):
        self._set(thresholds=value)
        self.clear(self.threshold)
        return self

    def getThreshold(self) -> float:
        """The binary threshold: from ``thresholds`` (1 / (1 + t_0 / t_1)) when set, else ``threshold``."""
        self._check_threshold_consistency()
        if self.isSet(self.thresholds):
            ts = self.getOrDefault(self.thresholds)
            if len(ts) != 2:
                raise ValueError(f"getThreshold only applies to binary classification, but thresholds has "
                                 f"length {len(ts)}: {ts}")
            return 1.0 / (1.0 + ts[0] / ts[1])
        return self.getOrDefault(self.threshold)

    def getThresholds(self):
        """``thresholds`` when set; else [1 − threshold, threshold] when ``threshold`` is set."""
        self._check_threshold_consistency()
        if not self.isSet(self.thresholds) and self.isSet(self.threshold):
            t = self.getOrDefault(self.threshold)
            return [1.0 - t, t]
        return self.getOrDefault(self.thresholds)

    def _check_threshold_consistency(self):
        if self.isSet(self.threshold) and self.isSet(self.thresholds):
            ts = self.getOrDefault(self.thresholds)
            if len(ts) != 2:
                raise ValueError(f"threshold is set for binary classification, but thresholds has length {len(ts)}")
            t = 1.0 / (1.0 + ts[0] / ts[1])
            if abs(self.getOrDefault(self.threshold) - t) >= 1e-5:
                raise ValueError(f"inconsistent threshold ({self.getOrDefault(self.threshold)}) and thresholds "
                                 f"(equivalent to {t})")


_declare(_SoftmaxRegressionParams)
_add_setters(_SoftmaxRegressionParams)


def jsonable_params(instance):
    """A copy of ``instance`` whose Matrix / Vector Param values are in ``_to_matrix`` /
    ``_to_vector``'s JSON form (DefaultParamsWriter's json.dumps takes no linalg objects)."""
    from pyspark.ml.linalg import Matrix, Vector

    that = instance.copy()
    for param, value in list(that._paramMap.items()):
        if isinstance(value, Matrix):
            dense = value.toArray()
            that._paramMap[param] = {"numRows": dense.shape[0], "numCols": dense.shape[1],
                                     "values": dense.ravel(order="F").tolist()}
        elif isinstance(value, Vector):
            that._paramMap[param] = {"values": value.toArray().tolist()}
    return that
