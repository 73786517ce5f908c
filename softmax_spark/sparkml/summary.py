"""MLlib's model summary on ``SoftmaxRegressionModel``: ``model.summary`` and ``model.evaluate(df)``.

The classes here subclass pyspark's own (``pyspark.ml.classification.LogisticRegressionSummary``,
``LogisticRegressionTrainingSummary``, ``BinaryLogisticRegressionSummary``,
``BinaryLogisticRegressionTrainingSummary``), so every field has MLlib's name, type and meaning:
predictions, predictionCol, probabilityCol, labelCol, featuresCol, weightCol, labels, accuracy,
truePositiveRateByLabel, falsePositiveRateByLabel, precisionByLabel, recallByLabel,
fMeasureByLabel(beta), weighted{TruePositiveRate,FalsePositiveRate,Precision,Recall},
weightedFMeasure(beta); binomial models (≤ 2 classes, as MLlib) add scoreCol, roc, areaUnderROC, pr,
fMeasureByThreshold, precisionByThreshold, recallByThreshold.

How the numbers are computed. On a classic session, by MLlib's own code: the summary builds
``org.apache.spark.ml.classification.(Binary)LogisticRegression(Training)SummaryImpl`` in the
driver JVM over our model's ``transform`` output (the same constructor MLlib's ``fit`` and
``evaluate`` call: predictions, probabilityCol, predictionCol, labelCol, featuresCol, weightCol
[, objectiveHistory]), so each value is MLlib's ``MulticlassMetrics`` /
``BinaryClassificationMetrics`` (100 bins, as MLlib's binary summary) over our probabilities.
The JVM object is built lazily, on the first field that needs the predictions.

On a Spark Connect session (no driver JVM in the client) the multiclass fields are computed here
in numpy from one aggregate — the weighted count of every (label, prediction) pair — with
``MulticlassMetrics``' formulas (``_ConfusionMetrics``); the binary curve fields (roc, pr,
areaUnderROC, *ByThreshold) raise ``NotImplementedError`` there, naming the way out (a classic
session, or ``pyspark.ml.evaluation.BinaryClassificationEvaluator`` for the area).

Ours on top (every summary class): ``objectiveHistory`` (our objective after each iteration;
MLlib's list also starts with the initial objective), ``totalIterations``, ``history`` (one dict
per iteration), ``stopReason``, ``optimalityGapBound`` and ``certificate`` (see
``certificate.py``), ``coefficientTable(referenceClass=…)`` (see ``inference.py``).

Saved and loaded models. MLlib's loaded model has no summary (``hasSummary`` False). Ours keeps
what was saved with it — objectiveHistory, totalIterations, history, stopReason, the certificate —
so ``hasSummary`` stays True, but the predictions are not saved: a field that needs them raises
``RuntimeError`` pointing at ``model.evaluate(df)``.

Labels. MLlib's fields compare the label column with the prediction column (a class index). When
the model's classes are MLlib's 0..K−1 (``labelIndexing`` "auto"/"mllib" on integer labels) the
label column is used as is; otherwise (classes such as 10/20/30 or strings) the summary's
predictions gain a column ``<labelCol>_index`` holding the class index and ``labelCol`` names it,
so ``labels`` are class indices.
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.classification import (
    BinaryLogisticRegressionSummary, BinaryLogisticRegressionTrainingSummary, LogisticRegressionSummary,
    LogisticRegressionTrainingSummary,
)
from softmax_spark.spark.backend import backend_for

__all__ = [
    "SoftmaxRegressionSummary", "SoftmaxRegressionTrainingSummary", "BinarySoftmaxRegressionSummary",
    "BinarySoftmaxRegressionTrainingSummary", "make_summary", "training_summary", "loaded_summary",
]

_JVM_PACKAGE = "org.apache.spark.ml.classification."
_BINARY_FIELDS = ("roc", "areaUnderROC", "pr", "fMeasureByThreshold", "precisionByThreshold", "recallByThreshold")
_NO_PREDICTIONS = ("this summary came with a loaded model: the predictions are not saved with a model (MLlib's "
                   "loaded models have no summary at all); use model.evaluate(df) for the metrics")


class _Source:
    """What a summary is computed from: the scored DataFrame and its column names (MLlib's
    constructor arguments), or nothing (a loaded model's summary)."""

    def __init__(self, predictions=None, probability_col="probability", prediction_col="prediction",
                 label_col="label", features_col="features", weight_col="weightCol"):
        self.predictions = predictions
        self.probability_col, self.prediction_col = probability_col, prediction_col
        self.label_col, self.features_col, self.weight_col = label_col, features_col, weight_col


class _SoftmaxSummaryMixin:
    """Our fields, and the dispatch of MLlib's fields to the JVM implementation (classic) or to
    ``_ConfusionMetrics`` (Spark Connect)."""

    _impl_class = "LogisticRegressionSummaryImpl"
    _is_binary = False
    _is_training = False

    def _init_softmax(self, source: _Source, history=None, stop_reason=None, certificate=None, inference=None):
        self._source = source
        self.history = list(history or [])
        self.stopReason = stop_reason
        self._certificate = certificate
        self._inference = inference  # callable(referenceClass, centred, alpha) → pandas table, or None
        self._local = None

    # -- our fields ---------------------------------------------------------------------------
    @property
    def objectiveHistory(self) -> list:
        """Our objective J after each iteration (MLlib's list also starts with the initial one)."""
        return [float(h["objective"]) for h in self.history]

    @property
    def totalIterations(self) -> int:
        return len(self.history)

    @property
    def certificate(self) -> dict | None:
        """The optimality certificate recorded at training (``certificate.gap_certificate``'s dict:
        bound, newton_decrement, mu, kappa, status, …), or None when the model has none."""
        return self._certificate

    @property
    def optimalityGapBound(self) -> float | None:
        """An upper bound on J(θ̂) − min J for the returned model (same units as objectiveHistory);
        None when no certificate could be computed (its ``certificate['status']`` says why)."""
        c = self._certificate
        return None if not c or c.get("bound") is None else float(c["bound"])

    def coefficientTable(self, referenceClass=None, parameterization: str = "reference", alpha: float = 0.05,
                         covariance: str = "auto"):
        """Wald inference for every coefficient and intercept as a Spark DataFrame with columns
        class, feature, coefficient, std_error, z, p_value, ci_low, ci_high (see
        ``inference.coefficient_table`` for the meaning, shapes and errors). ``referenceClass`` is
        a class label (default: the first class); ``parameterization`` "reference" or "centred";
        ``covariance`` "auto", "hessian" (H⁻¹) or "sandwich" (H⁻¹ J H⁻¹).

        Raises ``RuntimeError`` when the summary has no training data (a loaded model's, or
        ``evaluate``'s), ``inference.InferenceError`` when the estimate does not exist (separable
        data) or P is too large for the exact Hessian."""
        if self._inference is None:
            raise RuntimeError("coefficientTable needs the training data: it exists on the summary of a model "
                               "fitted in this session (model.summary), not on a loaded model's or evaluate()'s; "
                               "use softmax_spark.coefficient_table(model.softmaxModel, df) on the training data instead")
        table = self._inference(referenceClass, parameterization, alpha, covariance)
        spark = self._spark()
        return spark.createDataFrame(table)

    def _spark(self):
        from pyspark.sql import SparkSession

        df = self._source.predictions
        return df.sparkSession if df is not None else SparkSession.getActiveSession()

    # -- MLlib's fields ----------------------------------------------------------------------
    @property
    def predictions(self):
        """The scored DataFrame (``model.transform`` of the data the summary is about)."""
        if self._source.predictions is None:
            raise RuntimeError(_NO_PREDICTIONS)
        return self._source.predictions

    @property
    def probabilityCol(self) -> str:
        return self._source.probability_col

    @property
    def predictionCol(self) -> str:
        return self._source.prediction_col

    @property
    def labelCol(self) -> str:
        return self._source.label_col

    @property
    def featuresCol(self) -> str:
        return self._source.features_col

    @property
    def weightCol(self) -> str:
        return self._source.weight_col

    def _call_java(self, name, *args):
        """MLlib's field ``name``: from the JVM summary (classic) or ``_ConfusionMetrics`` (Connect)."""
        df = self.predictions  # raises for a loaded model's summary
        if not backend_for(df).has_jvm:  # Spark Connect: no driver JVM in this process
            if name in _BINARY_FIELDS:
                raise NotImplementedError(
                    f"summary.{name} is computed by MLlib's BinaryClassificationMetrics in the driver JVM, which a "
                    "Spark Connect client does not have; use a classic session, or pyspark.ml.evaluation."
                    "BinaryClassificationEvaluator on summary.predictions for the area")
            if self._local is None:
                self._local = _ConfusionMetrics.from_predictions(self._source)
            return self._local.value(name, *args)
        if self._java_obj is None:
            self._java_obj = self._new_jvm_summary(df)
        return super()._call_java(name, *args)

    def _new_jvm_summary(self, df):
        from pyspark.core.context import SparkContext

        sc = SparkContext._active_spark_context
        s = self._source
        args = [df._jdf, s.probability_col, s.prediction_col, s.label_col, s.features_col, s.weight_col]
        if self._is_training:
            history = self.objectiveHistory
            arr = sc._gateway.new_array(sc._jvm.double, len(history))
            for i, v in enumerate(history):
                arr[i] = float(v)
            args.append(arr)
        name = ("Binary" if self._is_binary else "") + "LogisticRegression" + \
            ("Training" if self._is_training else "") + "SummaryImpl"
        cls = sc._jvm
        for part in (_JVM_PACKAGE + name).split("."):
            cls = getattr(cls, part)
        return cls(*args)

    def __repr__(self):
        kind = type(self).__name__
        bound = self.optimalityGapBound
        return f"{kind}(totalIterations={self.totalIterations}, optimalityGapBound={bound})"


class SoftmaxRegressionSummary(_SoftmaxSummaryMixin, LogisticRegressionSummary):
    """MLlib's ``LogisticRegressionSummary`` (multinomial, > 2 classes) of ``model.evaluate(df)``."""

    def __init__(self, source, **kw):
        LogisticRegressionSummary.__init__(self, None)
        self._init_softmax(source, **kw)


class SoftmaxRegressionTrainingSummary(_SoftmaxSummaryMixin, LogisticRegressionTrainingSummary):
    """MLlib's ``LogisticRegressionTrainingSummary`` (multinomial, > 2 classes) of ``model.summary``."""

    _is_training = True

    def __init__(self, history=None, stop_reason=None, source=None, **kw):
        LogisticRegressionTrainingSummary.__init__(self, None)
        self._init_softmax(source or _Source(), history=history, stop_reason=stop_reason, **kw)


class BinarySoftmaxRegressionSummary(_SoftmaxSummaryMixin, BinaryLogisticRegressionSummary):
    """MLlib's ``BinaryLogisticRegressionSummary`` (≤ 2 classes) of ``model.evaluate(df)``."""

    _is_binary = True

    def __init__(self, source, **kw):
        BinaryLogisticRegressionSummary.__init__(self, None)
        self._init_softmax(source, **kw)

    @property
    def scoreCol(self) -> str:
        return self._source.probability_col


class BinarySoftmaxRegressionTrainingSummary(_SoftmaxSummaryMixin, BinaryLogisticRegressionTrainingSummary):
    """MLlib's ``BinaryLogisticRegressionTrainingSummary`` (≤ 2 classes) of ``model.summary``."""

    _is_binary = True
    _is_training = True

    def __init__(self, history=None, stop_reason=None, source=None, **kw):
        BinaryLogisticRegressionTrainingSummary.__init__(self, None)
        self._init_softmax(source or _Source(), history=history, stop_reason=stop_reason, **kw)

    @property
    def scoreCol(self) -> str:
        return self._source.probability_col


# -- building summaries ---------------------------------------------------------------------------
def _scored_source(model, dataset) -> _Source:
    """``model.transform(dataset)`` with MLlib's summary column rules (``findSummaryModel``: an
    empty probabilityCol / predictionCol gets a temporary name) and, when the classes are not
    0..K−1, a ``<labelCol>_index`` column (see the module docstring)."""
    import uuid

    from pyspark.sql import functions as F

    scorer = model.copy()
    prob, pred = model.getProbabilityCol(), model.getPredictionCol()
    if not prob:
        prob = "probability_" + uuid.uuid4().hex[:12]
        scorer._set(probabilityCol=prob)
    if not pred:
        pred = "prediction_" + uuid.uuid4().hex[:12]
        scorer._set(predictionCol=pred)
    predictions = scorer.transform(dataset)
    label = model.getLabelCol()
    classes = model.classes
    if classes != [type(c)(i) if isinstance(c, (int, float)) and not isinstance(c, bool) else None
                   for i, c in enumerate(classes)]:
        mapping = F.create_map(*[x for i, c in enumerate(classes) for x in (F.lit(c), F.lit(float(i)))])
        label_index = label + "_index"
        predictions = predictions.withColumn(label_index, mapping[F.col(label)])
        label = label_index
    weight = model._value(model.weightCol) if model.isDefined(model.weightCol) else None
    # MLlib passes the name "weightCol" when the Param is unset: a column that does not exist, so weight 1
    return _Source(predictions, prob, pred, label, model.getFeaturesCol(), weight or "weightCol")


def make_summary(model, dataset, training: bool = False, **kw):
    """The summary of ``model`` (a ``SoftmaxRegressionModel``) on ``dataset``: binary when the
    model has ≤ 2 classes (MLlib's rule), training or not. Lazy: nothing runs until a field is read."""
    source = _scored_source(model, dataset)
    binary = model.numClasses <= 2
    if training:
        cls = BinarySoftmaxRegressionTrainingSummary if binary else SoftmaxRegressionTrainingSummary
        return cls(source=source, **kw)
    cls = BinarySoftmaxRegressionSummary if binary else SoftmaxRegressionSummary
    return cls(source, **kw)


def training_summary(model, dataset, history, stop_reason, certificate=None, inference=None):
    return make_summary(model, dataset, training=True, history=history, stop_reason=stop_reason,
                        certificate=certificate, inference=inference)


def loaded_summary(n_classes: int, history, stop_reason, certificate=None):
    """The summary of a loaded model: saved fields only (see the module docstring)."""
    cls = BinarySoftmaxRegressionTrainingSummary if n_classes <= 2 else SoftmaxRegressionTrainingSummary
    return cls(history=history, stop_reason=stop_reason, certificate=certificate)


# -- Spark Connect: MulticlassMetrics' formulas over the weighted confusion counts ----------------
class _ConfusionMetrics:
    """``org.apache.spark.mllib.evaluation.MulticlassMetrics``' definitions over the weighted
    confusion counts w[(label, prediction)]: labels are the distinct label values (sorted);
    TP_c = w(c, c), FP_c = Σ_{l≠c} w(l, c), N_c = Σ_p w(c, p), N = Σ N_c; recall = TPR = TP/N_c,
    FPR = FP/(N − N_c), precision = TP/(TP + FP) (0 when 0/0), F_β = (1+β²)·P·R/(β²·P + R) (0 when
    P + R = 0), accuracy = Σ TP / N, weighted X = Σ_c X_c·N_c/N."""
    def __init__(self, counts: dict):
        self.labels = sorted({label for label, _ in counts})
        n_c = {c: 0.0 for c in self.labels}
        tp = {c: 0.0 for c in self.labels}
        fp: dict = {}
        for (label, pred), w in counts.items():
            n_c[label] += w
            if label == pred:
                tp[label] += w
            else:
                fp[pred] = fp.get(pred, 0.0) + w
        self.n_c, self.tp, self.fp, self.n = n_c, tp, fp, sum(n_c.values())

    @classmethod
    def from_predictions(cls, source: _Source) -> "_ConfusionMetrics":
        from pyspark.sql import functions as F

        df = source.predictions
        w = F.col(source.weight_col).cast("double") if source.weight_col in df.columns else F.lit(1.0)
        rows = (df.select(F.col(source.label_col).cast("double").alias("l"),
                          F.col(source.prediction_col).cast("double").alias("p"), w.alias("w"))
                .groupBy("l", "p").agg(F.sum("w").alias("w")).collect())
        return cls({(float(r["l"]), float(r["p"])): float(r["w"]) for r in rows})

    def _precision(self, c):
        tp, fp = self.tp[c], self.fp.get(c, 0.0)
        return 0.0 if tp + fp == 0 else tp / (tp + fp)

    def _recall(self, c):
        return self.tp[c] / self.n_c[c]

    def _fpr(self, c):
        fp, negatives = self.fp.get(c, 0.0), self.n - self.n_c[c]
        if negatives == 0:  # the JVM's double division: 0/0 = NaN (a one-class data set), x/0 = ∞
            return float("nan") if fp == 0 else float("inf")
        return fp / negatives

    def _f(self, c, beta):
        p, r, b2 = self._precision(c), self._recall(c), beta * beta
        return 0.0 if p + r == 0 else (1 + b2) * p * r / (b2 * p + r)

    def _weighted(self, per_label):
        return float(sum(per_label(c) * self.n_c[c] / self.n for c in self.labels))

    def value(self, name, *args):
        by_label = {"truePositiveRateByLabel": self._recall, "recallByLabel": self._recall,
                    "falsePositiveRateByLabel": self._fpr, "precisionByLabel": self._precision}
        if name == "labels":
            return list(self.labels)
        if name in by_label:
            return [by_label[name](c) for c in self.labels]
        if name == "fMeasureByLabel":
            return [self._f(c, float(args[0] if args else 1.0)) for c in self.labels]
        if name == "accuracy":
            return float(sum(self.tp.values()) / self.n)
        weighted = {"weightedTruePositiveRate": self._recall, "weightedRecall": self._recall,
                    "weightedFalsePositiveRate": self._fpr, "weightedPrecision": self._precision}
        if name in weighted:
            return self._weighted(weighted[name])
        if name == "weightedFMeasure":
            beta = float(args[0] if args else 1.0)
            return self._weighted(lambda c: self._f(c, beta))
        raise AttributeError(f"summary field {name!r} is not available on a Spark Connect session")
