"""Spark ML API: ``SoftmaxRegression`` (Estimator) and ``SoftmaxRegressionModel`` (Model).

A drop-in for ``pyspark.ml.classification.LogisticRegression`` in Pipelines, CrossValidator /
TrainValidationSplit and saved PipelineModels:

    from softmax_spark.ml import SoftmaxRegression          # instead of LogisticRegression
    model = SoftmaxRegression(regParam=0.01, standardization=False).fit(df)
    model.transform(df)       # + rawPrediction, probability (ml Vectors), prediction (double)

Params shared with MLlib keep MLlib's names, meanings and defaults (``pyspark.ml.classification.
_LogisticRegressionParams``): featuresCol, labelCol, weightCol, predictionCol, probabilityCol,
rawPredictionCol, regParam (0.0), elasticNetParam (0.0), maxIter (100), tol (1e-6),
fitIntercept (True), standardization (True), aggregationDepth (2), family ("auto"), threshold
(0.5), thresholds. MLlib's objective is

    mean weighted log-loss + ½·regParam·‖W‖²_F          (multinomial)
    mean weighted log-loss + ½·regParam·‖v‖²            (binomial, v the single coefficient row)

(standardization=True: each w_cj scaled by column j's standard deviation inside the penalty).
Ours is mean log-loss + λ‖W‖²_F over C rows, so multinomial λ = regParam / 2; a binomial model is
our 2-row model, whose optimum is centred (w_0 = −v/2, w_1 = v/2, ‖W‖² = ‖v‖²/2), so λ = regParam.
With elasticNetParam α > 0 the objective is MLlib's elastic net, mean log-loss + regParam·(α‖W‖₁ +
(1−α)/2‖W‖²) (binomial: on v), solved by ``prox-newton`` or ``owlqn`` (``solvers.auto``); the bounds
Params (lowerBoundsOnCoefficients, upperBoundsOnCoefficients, lowerBoundsOnIntercepts,
upperBoundsOnIntercepts) follow MLlib's shapes and rules — see docs/elastic-net-and-bounds.md.
``maxBlockSizeInMB`` is accepted and ignored (our blocks are sized by ``ingest``; it changes no result).
``tol`` keeps MLlib's default 1e-6 but each solver reads it with a meaning stricter than MLlib's
relative change of the objective (``TrainConfig.mllib_tol``): newton / newton-cg stop when the Newton
decrement ½gᵀH⁻¹g/max(|J|,1) ≤ 1e-4·tol² (1e-16 at the default: J within ~1e-16 of its minimum,
the probabilities to ~1e-8), prox-newton when the KKT residual ≤ 1e-4·tol, owlqn when it is
≤ 1e-3·tol (or J's relative decrease over 5 iterations ≤ tol²), qn-newton-cg when it is ≤ 1e-3·tol and
its last Newton step moved θ by ≤ 1e-7 (``solver="auto"`` runs it wherever it would pick lbfgs), lbfgs
and sgd with ``tol`` itself.

Labels. MLlib's convention — a numeric label holding integers 0..K−1, K = max + 1, or K from the
column's ML attribute metadata (``StringIndexer`` output) — works as in MLlib: classes are
0..K−1 even when some are absent, and ``prediction`` equals the label value. Any other labels
(strings, booleans, 10/20/30) are accepted too: classes are the sorted distinct values, the model
exposes them as ``classes``, ``prediction`` is the class index and ``predictedLabelCol`` (when set)
holds the original label. ``labelIndexing`` decides: "auto" (default) uses MLlib's convention for
numeric labels that are all integers ≥ 0 when the column has ML metadata or when max + 1 ≤ 2 × the
number of distinct labels (so 0/1/3 → classes 0..3, 10/20/30 → classes [10, 20, 30]); "mllib" and
"sorted" force either rule.

family: "multinomial"; "binomial" (at most 2 classes, else an error, as MLlib); "auto" (MLlib's:
binomial when there are at most 2 classes). A binomial model has MLlib's shapes
(``coefficientMatrix`` 1 × D, ``interceptVector`` of size 1, ``coefficients``, ``intercept``), its
rawPrediction [−m, m] and the ``threshold`` rule.

Our extras, as Params: solver (``TrainConfig.optimizer``), batchFraction, learningRate, schedule,
powerT, decayRate, decayEvery, momentum, nesterov, average, nIterNoChange, lbfgsMemory, gtol,
classWeight, validationFraction / validationIndicatorCol + patience (early stopping),
checkpointDir + checkpointInterval, initialModel (a model directory — ours, a saved
SoftmaxRegressionModel or MLlib's LogisticRegressionModel — or a ``SoftmaxRegressionModel``
through ``setInitialModel``), initModelClasses (an MLlib initialModel's labels in label-index
order; unset: the identity when the classes are MLlib's 0..K−1), numPartitions, residentTasks,
seed, predictedLabelCol. Errors name these Params (``ml_diagnostics``); ``prediction`` carries
MLlib's nominal ML attribute (num_vals = number of classes).

Persistence (``MLWritable`` / ``MLReadable``), through Spark only, so any Hadoop URI works
(hdfs://, s3a://, viewfs://, file:): ``<dir>/metadata`` is ``DefaultParamsWriter``'s JSON (class,
uid, Params) plus ``softmaxSparkFormat``; ``<dir>/data`` is a one-row Parquet file written by Spark
(numClasses, numFeatures, isBinomial, coefficients (C·D row-major doubles), intercept (C),
classes (JSON), history (JSON), stopReason) — the way MLlib stores its model data. Nothing is
pickled. Inside a Pipeline/CrossValidator, pyspark's Python writers save these stages the same
way. Every read and write is a DataFrame operation, so the same works on a Spark Connect session
(paths are then the server's); there an existing path is checked and overwritten by the server
(pyspark's ML Connect helper), as for MLlib's own stages. ``read_model_dir(path)`` reads such a directory into a ``softmax_spark.SoftmaxModel``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile

import numpy as np
from pyspark.ml.base import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasAggregationDepth, HasCheckpointInterval, HasElasticNetParam, HasFeaturesCol, HasFitIntercept,
    HasLabelCol, HasMaxIter, HasPredictionCol, HasProbabilityCol, HasRawPredictionCol, HasRegParam, HasSeed,
    HasSolver, HasStandardization, HasThreshold, HasThresholds, HasTol, HasValidationIndicatorCol, HasWeightCol,
)
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter

from .config import TrainConfig
from .errors import InputError, ModelFormatError
from .model import SoftmaxModel

__all__ = ["SoftmaxRegression", "SoftmaxRegressionModel", "SoftmaxRegressionTrainingSummary", "read_model_dir"]

log = logging.getLogger("softmax_spark")

FORMAT_NAME = "softmax_spark.ml.SoftmaxRegressionModel"
FORMAT_VERSION = 1
MODEL_CLASS = "softmax_spark.ml.SoftmaxRegressionModel"
LABEL_INDEXING = ("auto", "mllib", "sorted")
FAMILIES = ("auto", "binomial", "multinomial")

_CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
# callables (estimator, model) run at the end of every SoftmaxRegression fit (softmax_spark.mlflow_support)
FIT_LISTENERS: list = []


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


def _jsonable_params(instance):
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


def _to_optional_str(value):
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r}")


class _SoftmaxRegressionParams(
    HasFeaturesCol, HasLabelCol, HasPredictionCol, HasRawPredictionCol, HasProbabilityCol, HasThresholds,
    HasThreshold, HasRegParam, HasElasticNetParam, HasMaxIter, HasTol, HasFitIntercept, HasStandardization,
    HasWeightCol, HasAggregationDepth, HasSeed, HasSolver, HasValidationIndicatorCol, HasCheckpointInterval,
):
    """Params of ``SoftmaxRegression`` and ``SoftmaxRegressionModel`` (see the module docstring)."""

    family = Param(Params._dummy(), "family",
                   "label distribution: auto (binomial for ≤ 2 classes, else multinomial), binomial or multinomial",
                   typeConverter=TypeConverters.toString)
    labelIndexing = Param(Params._dummy(), "labelIndexing",
                          "how labels become classes: auto, mllib (integers 0..K−1, K = max + 1 or the column's "
                          "ML metadata) or sorted (the sorted distinct labels)", typeConverter=TypeConverters.toString)
    predictedLabelCol = Param(Params._dummy(), "predictedLabelCol",
                              "output column holding the predicted original label (not produced when unset or '')",
                              typeConverter=TypeConverters.toString)
    batchFraction = Param(Params._dummy(), "batchFraction", "sgd: fraction of rows per step, in (0, 1]",
                          typeConverter=TypeConverters.toFloat)
    learningRate = Param(Params._dummy(), "learningRate",
                         "sgd: step size η (unset: 1/L, L the curvature bound computed at ingest)",
                         typeConverter=TypeConverters.toFloat)
    schedule = Param(Params._dummy(), "schedule", "sgd learning-rate schedule: constant, invscaling or step",
                     typeConverter=TypeConverters.toString)
    powerT = Param(Params._dummy(), "powerT", "sgd: invscaling exponent", typeConverter=TypeConverters.toFloat)
    decayRate = Param(Params._dummy(), "decayRate", "sgd: step-schedule factor", typeConverter=TypeConverters.toFloat)
    decayEvery = Param(Params._dummy(), "decayEvery", "sgd: step-schedule period (iterations)",
                       typeConverter=TypeConverters.toInt)
    momentum = Param(Params._dummy(), "momentum", "sgd: momentum in [0, 1)", typeConverter=TypeConverters.toFloat)
    nesterov = Param(Params._dummy(), "nesterov", "sgd: Nesterov momentum", typeConverter=TypeConverters.toBoolean)
    average = Param(Params._dummy(), "average", "sgd: return the Polyak–Ruppert average of the iterates",
                    typeConverter=TypeConverters.toBoolean)
    nIterNoChange = Param(Params._dummy(), "nIterNoChange",
                          "sgd: iterations without improvement (by tol) before stopping",
                          typeConverter=TypeConverters.toInt)
    lbfgsMemory = Param(Params._dummy(), "lbfgsMemory", "L-BFGS history size", typeConverter=TypeConverters.toInt)
    gtol = Param(Params._dummy(), "gtol", "lbfgs also stops when the largest gradient component is ≤ gtol",
                 typeConverter=TypeConverters.toFloat)
    classWeight = Param(Params._dummy(), "classWeight",
                        "'balanced' (n / (C·n_c)) or a dict label → weight; multiplies the sample weights",
                        typeConverter=_to_class_weight)
    validationFraction = Param(Params._dummy(), "validationFraction",
                               "hold out this fraction of the rows for early stopping on validation log-loss",
                               typeConverter=TypeConverters.toFloat)
    patience = Param(Params._dummy(), "patience",
                     "early stopping: iterations without a better validation loss before stopping",
                     typeConverter=TypeConverters.toInt)
    checkpointDir = Param(Params._dummy(), "checkpointDir",
                          "checkpoint directory; fitting again with the same data and Params resumes from it",
                          typeConverter=_to_optional_str)
    initialModel = Param(Params._dummy(), "initialModel",
                         "warm start: a saved SoftmaxRegressionModel, softmax_spark model or MLlib "
                         "LogisticRegressionModel directory", typeConverter=_to_optional_str)
    initModelClasses = Param(Params._dummy(), "initModelClasses",
                             "an MLlib initialModel's class labels in its label-index order 0, 1, …, K−1 (MLlib "
                             "models carry no label names; unset: the identity when the training classes are "
                             "MLlib's 0..K−1)", typeConverter=TypeConverters.toList)
    numPartitions = Param(Params._dummy(), "numPartitions",
                          "coalesce the input to at most this many partitions (unset: Spark's default parallelism)",
                          typeConverter=TypeConverters.toInt)

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

    residentTasks = Param(Params._dummy(), "residentTasks",
                          "under a local master, one task per core stays for the whole fit and runs every "
                          "pass (the same sums); false: a Spark job per pass",
                          typeConverter=TypeConverters.toBoolean)
    maxDriverBytes = Param(Params._dummy(), "maxDriverBytes",
                           "a training set whose size Spark estimates at ≤ this many bytes (and ≤ 200,000 rows) is "
                           "read into the driver and fitted there, without Python workers (driver_data); 0: always "
                           "ingest into the executors", typeConverter=TypeConverters.toInt)
    verbose = Param(Params._dummy(), "verbose",
                    "log each iteration at INFO (as the spark-submit jobs do); false: at DEBUG, and a fit "
                    "prints one summary line (softmax_spark.fit_output)", typeConverter=TypeConverters.toBoolean)

    def __init__(self, *args):
        super().__init__(*args)
        c = _CONFIG_DEFAULTS
        # MLlib's defaults (LogisticRegression) for the shared Params, TrainConfig's for ours
        self._setDefault(
            maxIter=100, regParam=0.0, tol=1e-6, threshold=0.5, family="auto", solver=c["optimizer"],
            seed=c["seed"], checkpointInterval=c["checkpoint_every"], labelIndexing="auto",
            batchFraction=c["batch_fraction"], schedule=c["schedule"], powerT=c["power_t"],
            decayRate=c["decay_rate"], decayEvery=c["decay_every"], momentum=c["momentum"],
            nesterov=c["nesterov"], average=c["average"], nIterNoChange=c["n_iter_no_change"],
            lbfgsMemory=c["lbfgs_memory"], gtol=c["gtol"], validationFraction=c["validation_fraction"],
            patience=c["patience"], residentTasks=c["resident_tasks"], maxBlockSizeInMB=0.0,
        )
        from .driver_data import DRIVER_MAX_BYTES

        self._setDefault(verbose=False, maxDriverBytes=DRIVER_MAX_BYTES)

    def getFamily(self) -> str:
        return self.getOrDefault(self.family)

    def _value(self, param):
        """The Param's value, or None when it has neither a value nor a default."""
        return self.getOrDefault(param) if self.isDefined(param) else None

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


# setX for every Param without a hand-written one (MLlib's setter names)
def _add_setters(cls):
    names = [name for name in dir(cls) if isinstance(getattr(cls, name), Param)]
    for name in names:
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


_add_setters(_SoftmaxRegressionParams)


def _param_names(cls) -> set:
    return {name for name in dir(cls) if isinstance(getattr(cls, name), Param)}


# -- labels -------------------------------------------------------------------------------------
def _metadata_num_classes(field) -> int | None:
    """K from a label column's ML attribute metadata (StringIndexer output), as MLlib's
    ``MetadataUtils.getNumClasses``: nominal → number of values, binary → 2, otherwise None."""
    attr = (field.metadata or {}).get("ml_attr") or {}
    kind = attr.get("type")
    if kind == "binary":
        return 2
    if kind == "nominal":
        if "vals" in attr:
            return len(attr["vals"])
        if "num_vals" in attr:
            return int(attr["num_vals"])
    return None


def resolve_classes(df, label_col: str, mode: str = "auto", values=None, with_present: bool = False) -> tuple:
    """(classes, uses MLlib's convention) for ``df[label_col]`` (one distinct-labels Spark job).

    MLlib's convention: classes 0..K−1 (in the column's type: float for floating columns, int for
    integral ones), K = the column's ML metadata count, else max label + 1. See the module
    docstring for "auto". Raises ``InputError`` for a missing column, no labels, or ``mode="mllib"``
    with labels that are not integers ≥ 0. ``with_present``: also return the sorted distinct
    labels of the data (a third item). ``values``: the distinct labels when already known (read
    from rows collected to the driver), else one Spark job finds them.
    """
    from pyspark.sql import types as T

    from .labels import discover_classes, label_family
    from .schema import check_columns

    if mode not in LABEL_INDEXING:
        raise InputError(f"labelIndexing must be one of {', '.join(LABEL_INDEXING)}, got {mode!r}")
    check_columns(df.schema, label_col=label_col)  # exists, and an orderable type
    field = df.schema[label_col]
    values = discover_classes(df, label_col) if values is None else values  # values: from collected rows
    if not values:
        raise InputError(f"the input has 0 labelled rows in column '{label_col}'; expected at least one")
    numeric = label_family(field.dataType) == "numeric"
    integral = numeric and all(float(v).is_integer() and v >= 0 for v in values)
    meta_k = _metadata_num_classes(field) if numeric else None
    top = int(max(values)) + 1 if integral else 0
    if mode == "auto":
        mllib = integral and (meta_k is not None or top <= 2 * len(values))
    else:
        mllib = mode == "mllib"
    if not mllib:
        return (values, False, values) if with_present else (values, False)
    if not integral:
        bad = next(v for v in values if not (numeric and float(v).is_integer() and v >= 0))
        raise InputError(f"column '{label_col}': label {bad!r} is not an integer ≥ 0, which labelIndexing='mllib' "
                         "(MLlib's convention) expects; use labelIndexing='sorted' or a StringIndexer")
    if meta_k is not None and top > meta_k:
        raise InputError(f"column '{label_col}': label {top - 1} but the column's metadata gives {meta_k} classes")
    k = max(top, meta_k or 0)
    kind = int if isinstance(field.dataType, T.IntegralType) else float
    classes = [kind(i) for i in range(k)]
    return (classes, True, values) if with_present else (classes, True)


# -- the Estimator ------------------------------------------------------------------------------
class SoftmaxRegression(Estimator, _SoftmaxRegressionParams, MLWritable, MLReadable):
    """Softmax (multinomial logistic) regression as a Spark ML Estimator; see the module docstring.

    ``SoftmaxRegression(**params)`` takes any Param by name (``regParam=0.01``, ``labelCol="y"``);
    ``fit(df)`` returns a ``SoftmaxRegressionModel``. Raises ``InputError`` for bad Params or data
    (one line naming the column/Param and what was expected).
    """

    def __init__(self, **kwargs):
        super().__init__()
        self._initial_model_instance = None
        self.setParams(**kwargs)

    def setParams(self, **kwargs):
        """Sets Params by name; an unknown name is a TypeError listing the known ones."""
        unknown = sorted(set(kwargs) - _param_names(type(self)))
        if unknown:
            from .ml_diagnostics import unknown_params_message

            raise TypeError(unknown_params_message(unknown, _param_names(type(self))))
        if "initialModel" in kwargs:
            self.setInitialModel(kwargs.pop("initialModel"))
        if "threshold" in kwargs and "thresholds" not in kwargs:
            self.setThreshold(kwargs.pop("threshold"))
        if "thresholds" in kwargs and "threshold" not in kwargs:
            self.setThresholds(kwargs.pop("thresholds"))
        return self._set(**kwargs)

    def setInitialModel(self, value):
        """Warm start from a directory (str; ours, a saved SoftmaxRegressionModel or MLlib's) or a
        ``SoftmaxRegressionModel`` (kept in memory; not saved with the estimator)."""
        if isinstance(value, SoftmaxRegressionModel):
            self._initial_model_instance = value
            self.clear(self.initialModel)
            return self
        self._initial_model_instance = None
        return self._set(initialModel=value)

    # -- fit -----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        reg, enet = self.getRegParam(), self.getElasticNetParam()
        if reg < 0:
            raise InputError(f"regParam must be ≥ 0, got {reg}")
        if not 0 <= enet <= 1:
            raise InputError(f"elasticNetParam must be in [0, 1], got {enet}")
        if self._bounded() and enet != 0:  # MLlib's rule (LogisticRegression.validateAndTransformSchema)
            raise InputError("Fitting under bound constrained optimization only supports L2 regularization, "
                             f"but got elasticNetParam = {enet}.")
        if not self.getFitIntercept() and (self.isSet(self.lowerBoundsOnIntercepts)
                                           or self.isSet(self.upperBoundsOnIntercepts)):
            raise InputError("Please don't set bounds on intercepts if fitting without intercept.")
        if self.getOrDefault(self.maxBlockSizeInMB) < 0:
            raise InputError(f"maxBlockSizeInMB must be ≥ 0, got {self.getOrDefault(self.maxBlockSizeInMB)}")
        if self.getFamily() not in FAMILIES:
            raise InputError(f"family must be one of {', '.join(FAMILIES)}, got {self.getFamily()!r}")
        solvers = dataclasses.fields(TrainConfig)
        choices = next(f for f in solvers if f.name == "optimizer").metadata.get("choices")
        if choices and self.getSolver() not in choices:
            raise InputError(f"solver must be one of {', '.join(choices)}, got {self.getSolver()!r}")
        if self.isDefined(self.validationIndicatorCol) and self.getValidationIndicatorCol() \
                and self.getValidationFraction():
            raise InputError("give validationIndicatorCol or validationFraction, not both")

    def _bounded(self) -> bool:
        """MLlib's ``usingBoundConstrainedOptimization``: any of the four bounds Params is set."""
        return any(self.isSet(p) for p in (self.lowerBoundsOnCoefficients, self.upperBoundsOnCoefficients,
                                           self.lowerBoundsOnIntercepts, self.upperBoundsOnIntercepts))

    def _bounds_config(self, n_classes: int, n_features: int, binomial: bool) -> dict:
        """TrainConfig's bound fields from MLlib's Params, shapes checked with MLlib's messages.

        Multinomial: the (C, D) / (C,) bounds apply to W and b as given. Binomial: MLlib bounds
        v = w_1 − w_0 and c = b_1 − b_0; our 2-row model is then trained with row 1 pinned at 0
        (``parametrization="reference"``), so w_0 = −v: the bounds on row 0 are the negated,
        swapped ones and row 1 is left free (it is pinned at 0)."""
        if not self._bounded():
            return {}
        sets = 1 if binomial else n_classes
        out = {}
        for name, param, upper in (("lower_bounds", self.lowerBoundsOnCoefficients, False),
                                   ("upper_bounds", self.upperBoundsOnCoefficients, True)):
            if not self.isSet(param):
                continue
            m = self.getOrDefault(param)
            if (m.numRows, m.numCols) != (sets, n_features):
                which = "LowerBoundsOnCoefficients" if not upper else "upperBoundsOnCoefficients"
                raise InputError(f"The shape of {which} must be compatible with (1, number of features) for "
                                 "binomial regression, or (number of classes, number of features) for multinomial "
                                 f"regression, but found: ({m.numRows}, {m.numCols}).")
            out[name] = m.toArray()
        for name, param in (("lower_bounds_intercept", self.lowerBoundsOnIntercepts),
                            ("upper_bounds_intercept", self.upperBoundsOnIntercepts)):
            if not self.isSet(param):
                continue
            v = self.getOrDefault(param).toArray()
            if v.size != sets:
                raise InputError(f"The size of {param.name} must be equal to 1 for binomial regression, or the "
                                 f"number of classes for multinomial regression, but found: {v.size}.")
            out[name] = v
        for lo, hi, label in (("lower_bounds", "upper_bounds", "Coefficients"),
                              ("lower_bounds_intercept", "upper_bounds_intercept", "Intercepts")):
            if lo in out and hi in out and np.any(out[lo] > out[hi]):
                raise InputError(f"LowerBoundsOn{label} should always be less than or equal to "
                                 f"upperBoundsOn{label}.")
        if binomial:
            mapped = {}
            for name, value in out.items():
                # w_0 = −v, b_0 = −c: a lower bound on v is an upper bound on w_0 and vice versa;
                # row 1 (pinned at 0) gets an infinite bound
                swapped = name.replace("lower", "upper") if name.startswith("lower") else name.replace("upper", "lower")
                free = np.inf if swapped.startswith("upper") else -np.inf
                mapped[swapped] = np.concatenate([-value.reshape(1, -1), np.full((1, value.size), free)])
                if name.endswith("intercept"):
                    mapped[swapped] = mapped[swapped].ravel()
            out = mapped
            out["parametrization"] = "reference"
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}

    def _train_config(self, classes, lam: float, init_model: str | None, l1: float = 0.0,
                      bounds: dict | None = None) -> TrainConfig:
        weight_col = self._value(self.weightCol) or None
        cfg = TrainConfig(
            input="<DataFrame>", model_dir="<not written>", features_col=self.getFeaturesCol(),
            label_col=self.getLabelCol(), weight_col=weight_col, classes=list(classes),
            aggregation_depth=self.getAggregationDepth(), optimizer=self.getSolver(), l2=lam,
            fit_intercept=self.getFitIntercept(), standardize=self.getStandardization(),
            class_weight=self._value(self.classWeight), init_model=init_model, seed=self.getSeed(),
            max_iter=self.getMaxIter(), tol=self.getTol(), gtol=self.getOrDefault(self.gtol),
            lbfgs_memory=self.getOrDefault(self.lbfgsMemory), batch_fraction=self.getOrDefault(self.batchFraction),
            learning_rate=self._value(self.learningRate), schedule=self.getOrDefault(self.schedule),
            power_t=self.getOrDefault(self.powerT), decay_rate=self.getOrDefault(self.decayRate),
            decay_every=self.getOrDefault(self.decayEvery), momentum=self.getOrDefault(self.momentum),
            nesterov=self.getOrDefault(self.nesterov), average=self.getOrDefault(self.average),
            n_iter_no_change=self.getOrDefault(self.nIterNoChange),
            validation_fraction=self.getOrDefault(self.validationFraction),
            patience=self.getOrDefault(self.patience), checkpoint_dir=self._value(self.checkpointDir),
            checkpoint_every=max(1, self.getCheckpointInterval()),
            num_partitions=self._value(self.numPartitions), write_mllib=False,
            resident_tasks=self.getOrDefault(self.residentTasks),
            l1=l1, mllib_tol=self.getTol(), **(bounds or {}),
        )
        return cfg.validate()

    def _fit(self, dataset) -> "SoftmaxRegressionModel":
        import time

        from .fit_output import quiet_fit
        from .shipping import ensure_workers, workers_python

        started = time.perf_counter()
        self._check_params()
        ensure_workers(dataset.sparkSession)  # the package to executors that lack it (shipping)
        with quiet_fit(self.getOrDefault(self.verbose)), workers_python(dataset.sparkSession):
            model = self._fit_dataframe(dataset)
        self._log_summary(model, time.perf_counter() - started)
        return model

    def _log_summary(self, model, seconds: float) -> None:
        from .fit_output import summary

        meta = model.softmaxModel.metadata or {}
        data = meta.get("data_summary") or {}
        summary("SoftmaxRegression fit: %s rows × %d features, %d classes; %s, %d iterations (%s) in %.1f s",
                data.get("rows", "?"), model.numFeatures, model.numClasses, meta.get("solver", "?"),
                len(model.softmaxModel.history or ()), meta.get("stop_reason", "?"), seconds)

    def _fit_dataframe(self, dataset) -> "SoftmaxRegressionModel":
        from pyspark.sql import functions as F

        from .ml_diagnostics import one_class_problem, to_params
        from .training import fit_dataframe

        self._check_params()
        table = self._collect_small(dataset)  # small data: read once, classes from it (driver_data)
        values = None
        if table is not None:
            from .driver_data import table_classes

            values = table_classes(table, self.getLabelCol())
        classes, mllib_labels, present = resolve_classes(dataset, self.getLabelCol(),
                                                         self.getOrDefault(self.labelIndexing), values,
                                                         with_present=True)
        n_classes = len(classes)
        problem = one_class_problem(present, classes, self.getLabelCol(), self.getFitIntercept())
        if problem:
            raise InputError(problem)
        family = self.getFamily()
        if family == "binomial" and n_classes > 2:
            raise InputError(f"family='binomial' supports 1 or 2 classes, column '{self.getLabelCol()}' has "
                             f"{n_classes}; use family='multinomial'")
        binomial = family == "binomial" or (family == "auto" and n_classes <= 2)
        self._model_thresholds(n_classes, binomial)  # a wrong length fails before training, as in MLlib
        # MLlib: ½·regParam·‖W‖² (multinomial) = λ‖W‖² → λ = regParam/2; binomial ½·regParam·‖v‖² on
        # our centred 2-row model (‖W‖² = ‖v‖²/2) → λ = regParam
        lam = self.getRegParam() if binomial else self.getRegParam() / 2.0
        # elastic net: regParam·(α‖W‖₁ + (1−α)/2‖W‖²) → λ₁ = α·regParam, λ₂ = (1−α)·(the λ above); binomial:
        # the centred 2-row optimum has |w_0j| + |w_1j| = |v_j|, so λ₁ = α·regParam there too
        alpha = self.getElasticNetParam() if self.getRegParam() > 0 else 0.0
        l1, lam = alpha * self.getRegParam(), (1.0 - alpha) * lam
        bounds = self._bounds_config(n_classes, self._num_features(dataset), binomial)

        train_df, validation_df = dataset, None
        indicator = self._value(self.validationIndicatorCol)
        if indicator:
            if indicator not in dataset.columns:
                raise InputError(f"validationIndicatorCol '{indicator}' not found; the input has columns: "
                                 f"{', '.join(dataset.columns)}")
            flag = F.coalesce(F.col(indicator).cast("boolean"), F.lit(False))
            train_df, validation_df = dataset.filter(~flag), dataset.filter(flag)

        try:
            with tempfile.TemporaryDirectory(prefix="softmax_spark-init-") as tmp:
                init = self._initial_model_dir(dataset.sparkSession, tmp, classes, mllib_labels)
                cfg = self._train_config(classes, lam, init, l1, bounds)
                fitted = fit_dataframe(dataset.sparkSession, cfg, df=train_df, validation_df=validation_df,
                                       write=False, driver_bytes=self.getOrDefault(self.maxDriverBytes),
                                       driver_table=table)
        except (InputError, ModelFormatError) as exc:  # the training code speaks the job's flags; say the Params
            raise type(exc)(to_params(str(exc))) from None
        if fitted.metadata.get("stop_reason"):
            fitted.metadata["stop_reason"] = to_params(str(fitted.metadata["stop_reason"]))
        # MLlib returns centred multinomial coefficients and intercepts (Σ_c w_c = 0, Σ_c b_c = 0);
        # the probabilities do not change. Under bounds MLlib centres nothing; with an L1 part only
        # the (unpenalised) intercepts, as shifting W would change the L1 term and the zeros
        if not bounds:
            centred = fitted.centered()
            fitted = centred if l1 == 0 else fitted._with(fitted.coef, centred.intercept)
        model = SoftmaxRegressionModel(fitted, binomial=binomial)
        model._resetUid(self.uid)  # MLlib: the model has its estimator's uid
        self._copyValues(model)
        model._summary = _training_summary(model, dataset, fitted, train_df)
        for listener in list(FIT_LISTENERS):  # e.g. softmax_spark.mlflow_support's autolog metrics
            listener(self, model)
        return model

    def fitMultiple(self, dataset, paramMaps):
        """One model per param map, as ``Estimator.fitMultiple`` (what CrossValidator calls per fold):
        maps differing only in regParam share one ingest and a warm-started path, strongest penalty
        first (``softmax_spark.fit_multiple``); a thread-safe iterator of (index, model)."""
        from .fit_multiple import fit_multiple

        return fit_multiple(self, dataset, paramMaps)

    def _num_features(self, dataset) -> int:
        """D from the features column's ML attribute metadata, else from the first row (only read
        when bounds are set)."""
        if not self._bounded():
            return 0
        field = dataset.schema[self.getFeaturesCol()]
        size = ((field.metadata or {}).get("ml_attr") or {}).get("num_attrs")
        if size is None:
            first = dataset.select(self.getFeaturesCol()).first()
            if first is None:
                raise InputError("the input has no rows")
            value = first[0]
            size = value.size if hasattr(value, "size") and not isinstance(value, list) else len(value)
        return int(size)

    def _collect_small(self, dataset):
        """``driver_data.collect_small`` of the training columns when the whole ``dataset`` is
        the training set (no validation split) and the columns exist (else the usual checks
        report them); else None."""
        from .driver_data import collect_small
        from .features import FeatureSpec

        weight = self._value(self.weightCol) or None
        needed = [self.getFeaturesCol(), self.getLabelCol()] + ([weight] if weight else [])
        if (self.getOrDefault(self.maxDriverBytes) <= 0 or self._value(self.validationIndicatorCol)
                or self.getOrDefault(self.validationFraction) or not set(needed) <= set(dataset.columns)):
            return None
        return collect_small(dataset, FeatureSpec(self.getFeaturesCol()), self.getLabelCol(), weight,
                             self.getOrDefault(self.maxDriverBytes))

    def _model_thresholds(self, n_classes, binomial):
        from .scoring import check_thresholds

        if self.isSet(self.thresholds):
            check_thresholds(self.getOrDefault(self.thresholds), n_classes)

    def _initial_model_dir(self, spark, tmp: str, classes=None, mllib_labels: bool = False) -> str | None:
        """A directory ``training`` reads for the warm start: ours as given, or a
        SoftmaxRegressionModel (instance or saved directory) or an MLlib LogisticRegressionModel
        written to ``tmp`` in our format. An MLlib model's label indices are matched to ``classes``
        through ``initModelClasses``, else as the identity when the classes are MLlib's 0..K−1
        (``mllib_labels``)."""
        from .model_io import is_mllib_model_dir, load_any_model, save_model

        if self._initial_model_instance is not None:
            model = self._initial_model_instance.softmaxModel
        else:
            path = self._value(self.initialModel)
            if not path:
                return None
            if _metadata_class(spark, path) == MODEL_CLASS:
                model = read_model_dir(path, spark)
            elif classes is not None and is_mllib_model_dir(path, spark):
                given = self._value(self.initModelClasses)
                if given is None and mllib_labels:
                    given = list(classes)
                model = load_any_model(path, spark=spark, classes=list(classes), mllib_classes=given,
                                       what="initialModel", class_flag="initModelClasses")
            else:
                return path
        target = os.path.join(tmp, "init")
        save_model(SoftmaxModel(model.coef, model.intercept, model.classes), target)
        return target

    # -- persistence ---------------------------------------------------------------------------
    def write(self) -> MLWriter:
        if self._initial_model_instance is not None:
            log.warning("initialModel was given as a model instance; it is not saved with the estimator")
        return _EstimatorWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return DefaultParamsReader(cls)

    def copy(self, extra=None):
        that = super().copy(extra)
        that._initial_model_instance = self._initial_model_instance
        return that


def _training_summary(model, dataset, fitted, train_df):
    """``model.summary`` after ``fit``: MLlib's fields over ``model.transform(dataset)``, ours
    (history, certificate) and coefficient inference over ``train_df`` (``summary.py``)."""
    from .summary import training_summary

    def inference(reference_class, parameterization, alpha, covariance):
        from .inference_pass import coefficient_table_for

        return coefficient_table_for(train_df.sparkSession, fitted, train_df, reference_class=reference_class,
                                     parameterization=parameterization, alpha=alpha, covariance=covariance)

    return training_summary(model, dataset, fitted.history, fitted.metadata.get("stop_reason"),
                            certificate=fitted.metadata.get("certificate"), inference=inference)


def _metadata_class(spark, path: str) -> str | None:
    """The ``class`` in ``<path>/metadata`` (DefaultParamsWriter JSON), or None when there is none."""
    try:
        return DefaultParamsReader.loadMetadata(path, spark).get("class")
    except Exception:  # no metadata directory: not an ML-persistence directory
        return None


# -- the Model ----------------------------------------------------------------------------------
# the summary classes (MLlib's fields, ours on top) live in ``summary.py``
from .summary import SoftmaxRegressionTrainingSummary  # noqa: E402  (a public name of this module)


class SoftmaxRegressionModel(Model, _SoftmaxRegressionParams, MLWritable, MLReadable):
    """A fitted softmax model as a Spark ML Model (see the module docstring).

    ``transform(df)`` appends rawPrediction, probability (ml Vectors) and prediction (double =
    class index), and ``predictedLabelCol`` when set, through ``scoring.score_dataframe``.
    """

    def __init__(self, model: SoftmaxModel | None = None, binomial: bool = False):
        super().__init__()
        self._model = model
        self._binomial = bool(binomial)
        self._summary = None

    # -- MLlib's attributes --------------------------------------------------------------------
    @property
    def softmaxModel(self) -> SoftmaxModel:
        """The fitted ``softmax_spark.SoftmaxModel`` (coef (C, D), intercept (C,), classes, history)."""
        if self._model is None:
            raise RuntimeError("this SoftmaxRegressionModel holds no fitted model")
        return self._model

    @property
    def classes(self) -> list:
        """Label values; class index c (``prediction``) is ``classes[c]``."""
        return list(self.softmaxModel.classes)

    @property
    def numClasses(self) -> int:
        return self.softmaxModel.n_classes

    @property
    def numFeatures(self) -> int:
        return self.softmaxModel.n_features

    @property
    def isBinomial(self) -> bool:
        return self._binomial

    def _mllib_coef(self):
        m = self.softmaxModel
        if self._binomial:
            v, c = m.log_odds(1, 0)
            return v.reshape(1, -1), np.array([c])
        return m.coef, m.intercept

    @property
    def coefficientMatrix(self):
        """pyspark.ml.linalg.DenseMatrix: C × D (binomial: 1 × D, the row v = w_1 − w_0)."""
        from pyspark.ml.linalg import DenseMatrix

        coef, _ = self._mllib_coef()
        return DenseMatrix(coef.shape[0], coef.shape[1], coef.ravel(order="F").tolist())

    @property
    def interceptVector(self):
        """pyspark.ml.linalg.DenseVector of size C (binomial: 1)."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._mllib_coef()[1])

    @property
    def coefficients(self):
        """Binomial models only (as MLlib): the coefficient vector v."""
        from pyspark.ml.linalg import DenseVector

        if not self._binomial:
            raise RuntimeError("multinomial models have a matrix of coefficients; use coefficientMatrix")
        return DenseVector(self._mllib_coef()[0][0])

    @property
    def intercept(self) -> float:
        """Binomial models only (as MLlib): the intercept c."""
        if not self._binomial:
            raise RuntimeError("multinomial models have a vector of intercepts; use interceptVector")
        return float(self._mllib_coef()[1][0])

    @property
    def hasSummary(self) -> bool:
        """True after ``fit`` and after a load (a loaded summary holds the saved fields only; see
        ``summary.py``)."""
        return self._summary is not None

    @property
    def summary(self) -> SoftmaxRegressionTrainingSummary:
        """MLlib's (Binary)LogisticRegressionTrainingSummary fields and ours (``summary.py``)."""
        if self._summary is None:
            raise RuntimeError("no training summary available for this SoftmaxRegressionModel")
        return self._summary

    def evaluate(self, dataset):
        """MLlib's ``evaluate``: the (Binary)LogisticRegressionSummary of this model on ``dataset``
        (lazy; see ``summary.py``)."""
        from .summary import make_summary

        return make_summary(self, dataset, training=False, certificate=self.softmaxModel.metadata.get("certificate"))

    # -- prediction ----------------------------------------------------------------------------
    def _thresholds(self):
        if self._binomial:
            if self.isSet(self.thresholds) or self.isSet(self.threshold):
                return self.getThresholds()
            return None
        return self.getOrDefault(self.thresholds) if self.isSet(self.thresholds) else None

    def _score_one(self, value):
        from .scoring import check_thresholds, score_arrays

        x = np.asarray(value.toArray() if hasattr(value, "toArray") else value, dtype=np.float64).reshape(1, -1)
        if x.shape[1] != self.numFeatures:
            raise InputError(f"the vector has {x.shape[1]} features, the model expects {self.numFeatures}")
        m = self.softmaxModel
        t = check_thresholds(self._thresholds(), self.numClasses)
        return score_arrays(x, m.coef, m.intercept, t, self._binomial)

    def predictRaw(self, value):
        """rawPrediction (DenseVector) for one feature vector, as MLlib's ``predictRaw``."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._score_one(value)[0][0])

    def predictProbability(self, value):
        """probability (DenseVector) for one feature vector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._score_one(value)[1][0])

    def predict(self, value) -> float:
        """prediction (class index, float) for one feature vector."""
        return float(self._score_one(value)[2][0])

    def _transform(self, dataset):
        from .ml_diagnostics import prediction_metadata
        from .scoring import score_dataframe
        from .shipping import ensure_workers, workers_python

        ensure_workers(dataset.sparkSession)  # the scoring function is wrapped now, run later
        with workers_python(dataset.sparkSession):
            scored = score_dataframe(
                dataset, self.softmaxModel, featuresCol=self.getFeaturesCol(),
                rawPredictionCol=self.getRawPredictionCol(), probabilityCol=self.getProbabilityCol(),
                predictionCol=self.getPredictionCol(), predictedLabelCol=self._value(self.predictedLabelCol),
                thresholds=self._thresholds(), binomial=self._binomial,
            )
        if self.getPredictionCol():  # MLlib's nominal attribute (num_vals = number of classes)
            scored = scored.withMetadata(self.getPredictionCol(), prediction_metadata(self.numClasses))
        return scored

    # -- persistence ---------------------------------------------------------------------------
    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


# -- persistence ----------------------------------------------------------------------------------
def _hadoop_exists(spark, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hpath))


def _prepare_target(writer: MLWriter, path: str) -> None:
    """Before a save: refuse an existing ``path`` (``InputError``) unless the writer overwrites,
    in which case delete it. Classic session: Hadoop's FileSystem in the driver JVM. Spark
    Connect (no JVM on the client): the server's ``FileSystemOverwrite`` through pyspark's ML
    Connect helper, as pyspark's own Connect writers do (``RemoteMLWriter.handleOverwrite``)."""
    from .connect_backend import is_connect

    spark = writer.sparkSession
    refused = InputError(f"{path} already exists; use .write().overwrite().save(path) to replace it")
    if is_connect(spark):
        from pyspark.ml.util import invoke_helper_attr

        try:  # overwrite: deletes path; else raises (IOException "Path … already exists") when it exists
            invoke_helper_attr("handleOverwrite", path, bool(writer.shouldOverwrite))
        except Exception as exc:
            if not writer.shouldOverwrite and "already exists" in str(exc):
                raise refused from None
            raise
        return
    if not writer.shouldOverwrite and _hadoop_exists(spark, path):
        raise refused
    if writer.shouldOverwrite:
        writer._handleOverwrite(path)


class _PreparedSave:
    """A writer mixin: ``save`` = ``_prepare_target`` (existing path refused or overwritten, on a
    classic or a Spark Connect session) then ``saveImpl``."""

    def save(self, path: str) -> None:
        _prepare_target(self, path)
        self.saveImpl(path)


class _EstimatorWriter(_PreparedSave, DefaultParamsWriter):
    """``DefaultParamsWriter`` (``<path>/metadata``, written by Spark) with ``_PreparedSave``."""

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(_jsonable_params(self.instance), path, self.sparkSession)


class _ModelWriter(_PreparedSave, MLWriter):
    """``<path>/metadata`` (DefaultParamsWriter) + ``<path>/data`` (one-row Parquet), both by Spark
    (DataFrame writes: the same on a classic and a Spark Connect session)."""

    def __init__(self, instance: SoftmaxRegressionModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        import pyarrow as pa

        spark = self.sparkSession
        m = self.instance.softmaxModel
        summary = self.instance._summary
        DefaultParamsWriter.saveMetadata(_jsonable_params(self.instance), path, spark,
                                         extraMetadata={"softmaxSparkFormat": FORMAT_NAME,
                                                        "softmaxSparkFormatVersion": FORMAT_VERSION})
        table = pa.table({
            "numClasses": pa.array([m.n_classes], pa.int32()),
            "numFeatures": pa.array([m.n_features], pa.int32()),
            "isBinomial": pa.array([self.instance.isBinomial]),
            "coefficients": pa.array([m.coef.ravel()], pa.list_(pa.float64())),
            "intercept": pa.array([m.intercept], pa.list_(pa.float64())),
            "classes": pa.array([json.dumps(list(m.classes))]),
            "history": pa.array([json.dumps(summary.history if summary else m.history)]),
            "stopReason": pa.array([summary.stopReason if summary else m.metadata.get("stop_reason")], pa.string()),
            "certificate": pa.array([json.dumps(summary.certificate if summary else m.metadata.get("certificate"))]),
        })
        spark.createDataFrame(table).coalesce(1).write.parquet(os.path.join(path, "data"))


class _ModelReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> SoftmaxRegressionModel:
        metadata, row = _read_saved(path, self.sparkSession)
        model = self.cls(_softmax_model(metadata, row, path), binomial=bool(row["isBinomial"]))
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        history = json.loads(row["history"] or "[]")
        if history:
            from .summary import loaded_summary

            model._summary = loaded_summary(model.numClasses, history, row["stopReason"],
                                            model.softmaxModel.metadata.get("certificate"))
        return model


def _read_saved(path: str, spark) -> tuple[dict, dict]:
    """(metadata dict, data row dict) of a saved SoftmaxRegressionModel, read by Spark."""
    try:
        metadata = DefaultParamsReader.loadMetadata(path, spark)
    except Exception as exc:
        raise ModelFormatError(f"{path} is not a saved SoftmaxRegressionModel (no readable metadata: "
                               f"{str(exc).splitlines()[0][:200]})") from None
    _check_metadata(metadata, path)
    rows = spark.read.parquet(os.path.join(path, "data")).collect()
    if len(rows) != 1:
        raise ModelFormatError(f"{path}/data holds {len(rows)} rows, expected 1")
    return metadata, rows[0].asDict()


def _check_metadata(metadata: dict, path: str) -> None:
    if metadata.get("class") != MODEL_CLASS or metadata.get("softmaxSparkFormat") != FORMAT_NAME:
        raise ModelFormatError(f"{path} holds {metadata.get('class')!r}, expected a saved {MODEL_CLASS}")
    if metadata.get("softmaxSparkFormatVersion") != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format version {metadata.get('softmaxSparkFormatVersion')!r}, "
                               f"this softmax_spark reads version {FORMAT_VERSION}")


def _softmax_model(metadata: dict, row: dict, path: str) -> SoftmaxModel:
    """SoftmaxModel from the data row, its shapes and values checked."""
    try:
        n_classes, n_features = int(row["numClasses"]), int(row["numFeatures"])
        coef = np.asarray(row["coefficients"], dtype=np.float64)
        intercept = np.asarray(row["intercept"], dtype=np.float64)
        classes = json.loads(row["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}/data: unreadable model data ({exc})") from None
    if coef.shape != (n_classes * n_features,) or intercept.shape != (n_classes,) or len(classes) != n_classes:
        raise ModelFormatError(f"{path}/data: shapes do not match {n_classes} classes × {n_features} features")
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFormatError(f"{path}/data: non-finite coefficients")
    meta = {"ml_params": {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})},
            "binomial": bool(row["isBinomial"]), "stop_reason": row.get("stopReason"),
            "certificate": json.loads(row.get("certificate") or "null")}
    return SoftmaxModel(coef.reshape(n_classes, n_features), intercept, classes,
                        history=json.loads(row.get("history") or "[]"), metadata=meta)


def read_model_dir(path: str, spark=None) -> SoftmaxModel:
    """A saved ``SoftmaxRegressionModel`` directory → ``softmax_spark.SoftmaxModel``.

    Reads through ``spark`` (or the active SparkSession), so any Hadoop URI works; with no
    session, a local path is read with pyarrow. A binomial model comes back as its 2-row centred
    form (the same probabilities). Raises ``ModelFormatError`` for anything else.
    """
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    if spark is not None:
        metadata, row = _read_saved(path, spark)
    else:
        metadata, row = _read_saved_local(path)
    return _softmax_model(metadata, row, path)


def _read_saved_local(path: str) -> tuple[dict, dict]:
    import glob

    import pyarrow.parquet as pq

    local = path[len("file://"):] if path.startswith("file://") else path
    if "://" in local or local.startswith("file:"):
        raise ModelFormatError(f"{path}: reading a non-local model directory needs a SparkSession")
    parts = sorted(glob.glob(os.path.join(local, "metadata", "part-*")))
    text = next((open(p).read().strip() for p in parts if os.path.getsize(p) > 0), None)
    if text is None:
        raise ModelFormatError(f"{path} is not a saved SoftmaxRegressionModel (no metadata)")
    metadata = json.loads(text.splitlines()[0])
    _check_metadata(metadata, path)
    files = sorted(glob.glob(os.path.join(local, "data", "*.parquet")))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    if len(rows) != 1:
        raise ModelFormatError(f"{path}/data holds {len(rows)} rows, expected 1")
    return metadata, rows[0]


def _document() -> None:
    from .ml_diagnostics import document_params

    document_params(SoftmaxRegression)  # help(): real signatures and the Params list


_document()

# the cross-validated path estimator lives in its own module (it imports this one)
from .ml_cv import SoftmaxRegressionCV, SoftmaxRegressionCVModel  # noqa: E402

__all__ += ["SoftmaxRegressionCV", "SoftmaxRegressionCVModel"]
