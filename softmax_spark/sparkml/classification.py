"""Spark ML API: ``SoftmaxRegression`` (Estimator) and ``SoftmaxRegressionModel`` (Model).

A drop-in for ``pyspark.ml.classification.LogisticRegression`` in Pipelines, CrossValidator /
TrainValidationSplit and saved PipelineModels:

    from softmax_spark.sparkml.classification import SoftmaxRegression          # instead of LogisticRegression
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
≤ 1e-3·tol (or J's relative decrease over 5 iterations ≤ tol²), lbfgs and sgd with ``tol`` itself.

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

import logging
import os
import tempfile

import numpy as np
from pyspark.ml.base import Estimator
from pyspark.ml.util import DefaultParamsReader, MLReadable, MLReader, MLWritable, MLWriter

from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.fit.config import TrainConfig, option_params
from softmax_spark.sparkml.labels import resolve_classes
from softmax_spark.sparkml.model import SoftmaxRegressionModel
from softmax_spark.sparkml.params import FAMILIES, _SoftmaxRegressionParams, options_from_params, param_names
from softmax_spark.sparkml.params import LABEL_INDEXING  # noqa: F401  (a public name of this module)
from softmax_spark.sparkml.persistence import MODEL_CLASS, _EstimatorWriter, _metadata_class, read_model_dir
from softmax_spark.sparkml.persistence import (FORMAT_NAME, FORMAT_VERSION,  # noqa: F401  (this module's names
                                               _read_saved_local, _softmax_model)  # before the split)
from softmax_spark.sparkml.summary import SoftmaxRegressionTrainingSummary

__all__ = ["SoftmaxRegression", "SoftmaxRegressionModel", "SoftmaxRegressionTrainingSummary", "read_model_dir",
           "resolve_classes"]

log = logging.getLogger("softmax_spark")

# callables (estimator, model) run at the end of every SoftmaxRegression fit (softmax_spark.sparkml.mlflow_support)
FIT_LISTENERS: list = []


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
        unknown = sorted(set(kwargs) - param_names(type(self)))
        if unknown:
            from softmax_spark.sparkml.diagnostics import unknown_params_message

            raise TypeError(unknown_params_message(unknown, param_names(type(self))))
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
        choices = option_params()["optimizer"].metadata.get("choices")
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
        """The ``TrainConfig`` of this fit: every option declared with a Param (``fit.config``'s
        ``param=``) from its Param, then what the Estimator computes itself — the penalty (λ, λ₁ from
        regParam / elasticNetParam and the family), the classes, the warm start it wrote
        (``initModelClasses`` already applied), the bounds, ``mllib_tol`` = tol — and no files."""
        values = options_from_params(self)
        values.update(
            input="<DataFrame>", model_dir="<not written>", write_mllib=False, classes=list(classes),
            weight_col=values["weight_col"] or None, checkpoint_every=max(1, values["checkpoint_every"]),
            l2=lam, l1=l1, init_model=init_model, init_model_classes=None, mllib_tol=self.getTol(),
            **(bounds or {}),
        )
        return TrainConfig(**values).validate()

    def _fit(self, dataset) -> "SoftmaxRegressionModel":
        import time

        from softmax_spark.spark.fit_output import quiet_fit
        from softmax_spark.spark.shipping import ensure_workers, workers_python

        started = time.perf_counter()
        self._check_params()
        ensure_workers(dataset.sparkSession)  # the package to executors that lack it (shipping)
        with quiet_fit(self.getOrDefault(self.verbose)), workers_python(dataset.sparkSession):
            model = self._fit_dataframe(dataset)
        self._log_summary(model, time.perf_counter() - started)
        return model

    def _log_summary(self, model, seconds: float) -> None:
        from softmax_spark.spark.fit_output import summary

        meta = model.softmaxModel.metadata or {}
        data = meta.get("data_summary") or {}
        summary("SoftmaxRegression fit: %s rows × %d features, %d classes; %s, %d iterations (%s) in %.1f s",
                data.get("rows", "?"), model.numFeatures, model.numClasses, meta.get("solver", "?"),
                len(model.softmaxModel.history or ()), meta.get("stop_reason", "?"), seconds)

    def _fit_dataframe(self, dataset) -> "SoftmaxRegressionModel":
        """The fit, step by step: classes and family (``_classes``), the penalty
        (``_penalty``), the validation split (``_split``), training (``_train``: the shared
        ``fit.training.fit_dataframe``), MLlib's centring (``_mllib_centred``), the Model."""
        self._check_params()
        table = self._collect_small(dataset)  # small data: read once, classes from it (driver_data)
        classes, mllib_labels, binomial = self._classes(dataset, table)
        lam, l1 = self._penalty(binomial)
        bounds = self._bounds_config(len(classes), self._num_features(dataset), binomial)
        train_df, validation_df = self._split(dataset)
        fitted = self._train(dataset, train_df, validation_df, table, classes, mllib_labels, lam, l1, bounds)
        fitted = _mllib_centred(fitted, l1, bounds)
        model = SoftmaxRegressionModel(fitted, binomial=binomial)
        model._resetUid(self.uid)  # MLlib: the model has its estimator's uid
        self._copyValues(model)
        model._summary = _training_summary(model, dataset, fitted, train_df)
        for listener in list(FIT_LISTENERS):  # e.g. softmax_spark.sparkml.mlflow_support's autolog metrics
            listener(self, model)
        return model

    def _classes(self, dataset, table=None) -> tuple:
        """(classes, whether they follow MLlib's 0..K−1 convention, binomial) of ``dataset``'s
        labels (``table``: its columns already collected to the driver, else one Spark job).
        ``InputError`` for a one-class problem, family="binomial" with more than 2 classes, or
        ``thresholds`` of the wrong length (before training, as in MLlib)."""
        from softmax_spark.sparkml.diagnostics import one_class_problem

        values = None
        if table is not None:
            from softmax_spark.spark.driver_data import table_classes

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
        return classes, mllib_labels, binomial

    def _penalty(self, binomial: bool) -> tuple:
        """(λ₂, λ₁) of our objective for MLlib's regParam and elasticNetParam.

        MLlib: ½·regParam·‖W‖² (multinomial) = λ‖W‖² → λ = regParam/2; binomial ½·regParam·‖v‖² on
        our centred 2-row model (‖W‖² = ‖v‖²/2) → λ = regParam. Elastic net: regParam·(α‖W‖₁ +
        (1−α)/2‖W‖²) → λ₁ = α·regParam, λ₂ = (1−α)·(the λ above); binomial: the centred 2-row
        optimum has |w_0j| + |w_1j| = |v_j|, so λ₁ = α·regParam there too."""
        lam = self.getRegParam() if binomial else self.getRegParam() / 2.0
        alpha = self.getElasticNetParam() if self.getRegParam() > 0 else 0.0
        return (1.0 - alpha) * lam, alpha * self.getRegParam()

    def _split(self, dataset) -> tuple:
        """(training rows, validation rows or None): ``validationIndicatorCol`` true → validation
        (null counts as false), as MLlib."""
        from pyspark.sql import functions as F

        indicator = self._value(self.validationIndicatorCol)
        if not indicator:
            return dataset, None
        if indicator not in dataset.columns:
            raise InputError(f"validationIndicatorCol '{indicator}' not found; the input has columns: "
                             f"{', '.join(dataset.columns)}")
        flag = F.coalesce(F.col(indicator).cast("boolean"), F.lit(False))
        return dataset.filter(~flag), dataset.filter(flag)

    def _train(self, dataset, train_df, validation_df, table, classes, mllib_labels, lam, l1, bounds) -> SoftmaxModel:
        """The fitted ``SoftmaxModel`` (``fit.training.fit_dataframe`` with ``_train_config``); its
        errors and stop reason reworded in the Params' names (``diagnostics.to_params``)."""
        from softmax_spark.fit.training import fit_dataframe
        from softmax_spark.sparkml.diagnostics import to_params

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
        return fitted

    def fitMultiple(self, dataset, paramMaps):
        """One model per param map, as ``Estimator.fitMultiple`` (what CrossValidator calls per fold):
        maps differing only in regParam share one ingest and a warm-started path, strongest penalty
        first (``softmax_spark.sparkml.fit_multiple``); a thread-safe iterator of (index, model)."""
        from softmax_spark.sparkml.fit_multiple import fit_multiple

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
        from softmax_spark.spark.driver_data import collect_small
        from softmax_spark.core.features import FeatureSpec

        weight = self._value(self.weightCol) or None
        needed = [self.getFeaturesCol(), self.getLabelCol()] + ([weight] if weight else [])
        if (self.getOrDefault(self.maxDriverBytes) <= 0 or self._value(self.validationIndicatorCol)
                or self.getOrDefault(self.validationFraction) or not set(needed) <= set(dataset.columns)):
            return None
        return collect_small(dataset, FeatureSpec(self.getFeaturesCol()), self.getLabelCol(), weight,
                             self.getOrDefault(self.maxDriverBytes))

    def _model_thresholds(self, n_classes, binomial):
        from softmax_spark.spark.scoring import check_thresholds

        if self.isSet(self.thresholds):
            check_thresholds(self.getOrDefault(self.thresholds), n_classes)

    def _initial_model_dir(self, spark, tmp: str, classes=None, mllib_labels: bool = False) -> str | None:
        """A directory ``training`` reads for the warm start: ours as given, or a
        SoftmaxRegressionModel (instance or saved directory) or an MLlib LogisticRegressionModel
        written to ``tmp`` in our format. An MLlib model's label indices are matched to ``classes``
        through ``initModelClasses``, else as the identity when the classes are MLlib's 0..K−1
        (``mllib_labels``)."""
        from softmax_spark.io.model_io import is_mllib_model_dir, load_any_model, save_model

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


def _mllib_centred(fitted: SoftmaxModel, l1: float, bounds: dict) -> SoftmaxModel:
    """MLlib returns centred multinomial coefficients and intercepts (Σ_c w_c = 0, Σ_c b_c = 0);
    the probabilities do not change. Under bounds MLlib centres nothing; with an L1 part only the
    (unpenalised) intercepts, as shifting W would change the L1 term and the zeros."""
    if bounds:
        return fitted
    centred = fitted.centered()
    return centred if l1 == 0 else fitted._with(fitted.coef, centred.intercept)


def _training_summary(model, dataset, fitted, train_df):
    """``model.summary`` after ``fit``: MLlib's fields over ``model.transform(dataset)``, ours
    (history, certificate) and coefficient inference over ``train_df`` (``summary.py``)."""
    from softmax_spark.sparkml.summary import training_summary

    def inference(reference_class, parameterization, alpha, covariance):
        from softmax_spark.spark.inference_pass import coefficient_table_for

        return coefficient_table_for(train_df.sparkSession, fitted, train_df, reference_class=reference_class,
                                     parameterization=parameterization, alpha=alpha, covariance=covariance)

    return training_summary(model, dataset, fitted.history, fitted.metadata.get("stop_reason"),
                            certificate=fitted.metadata.get("certificate"), inference=inference)


def _document() -> None:
    from softmax_spark.sparkml.diagnostics import document_params

    document_params(SoftmaxRegression)  # help(): real signatures and the Params list


_document()

# Pipelines and CrossValidators record a stage's class path (DefaultParamsWriter: ``__module__`` +
# name); the public module softmax_spark.ml is that path, whichever module holds the code.
SoftmaxRegression.__module__ = SoftmaxRegressionModel.__module__ = "softmax_spark.ml"
