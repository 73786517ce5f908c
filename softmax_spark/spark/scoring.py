"""Scoring as a DataFrame function: ``score_dataframe(df, model) -> DataFrame``, MLlib's columns.

Lazy (nothing runs until an action) and vectorised: one ``mapInArrow`` over the input's Arrow
batches; per batch the features go through ``features.features_to_numpy`` (the training formats:
an ml Vector, array<double>/array<float>, or several numeric columns), then one ``X Wᵀ + b``
product and a log-sum-exp softmax. No per-row Python.

Output: every input column unchanged, then the columns of MLlib's
``ProbabilisticClassificationModel.transform`` (``pyspark.ml.classification``), so MLlib's
evaluators, ``IndexToString`` and later stages accept them:

| column | type | content |
|---|---|---|
| ``rawPredictionCol`` | ml Vector (dense, size C) | logits ``W x + b``; binomial: MLlib's margins ``[−m, m]``, ``m = v·x + c`` |
| ``probabilityCol`` | ml Vector (dense, size C) | ``p(class c | x)``, c in the model's ``classes`` order |
| ``predictionCol`` | double | the class index c (MLlib's rule, below) |
| ``predictedLabelCol`` | the labels' type | ``classes[c]`` (only when given) |

Prediction (MLlib ``ProbabilisticClassificationModel``): without ``thresholds``, the argmax of
the raw prediction (first on a tie); with ``thresholds`` t (one per class, ≥ 0, at most one 0),
the argmax of ``p_c / t_c`` where a class with ``t_c = 0`` wins unless its ``p_c = 0``.
A column name given as ``None`` or ``""`` is not produced (MLlib's "empty name disables").

The ml Vector columns are written straight from Arrow: VectorUDT's Arrow form is
struct<type: int8, size: int32, indices: list<int32>, values: list<double>> with type 1 = dense
(``pyspark.ml.linalg.VectorUDT.sqlType``); ``mapInArrow`` accepts the UDT in its output schema.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np
import pyarrow as pa

from softmax_spark.core.errors import InputError
from softmax_spark.core.labels import arrow_type, check_known, class_kind, class_values
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.schema import check_columns, spark_type
from softmax_spark.spark.shipping import our_tasks
from softmax_spark.spark.tasks import limit_task_blas_threads
from softmax_spark.core.features import FeatureSpec, features_to_numpy
from softmax_spark.core.model_record import model_feature_spec
from softmax_spark.core.loss import softmax

__all__ = ["score_dataframe", "score_arrays", "check_thresholds", "ScoringKernel"]

# SparseVector rows as a csr_matrix (X @ Wᵀ stays sparse × dense) once features_to_numpy offers it
_SPARSE = {"sparse": "auto"} if "sparse" in inspect.signature(features_to_numpy).parameters else {}


def check_thresholds(thresholds, n_classes: int) -> np.ndarray | None:
    """``thresholds`` as float64 (n_classes,), checked as MLlib does (``HasThresholds``): one per
    class, each ≥ 0, at most one equal to 0. ``None`` stays ``None``. Raises ``InputError``."""
    if thresholds is None:
        return None
    t = np.asarray(list(thresholds), dtype=np.float64)
    if t.shape != (n_classes,):
        raise InputError(f"thresholds has {t.size} values, expected one per class ({n_classes})")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError(f"thresholds must be finite and ≥ 0, got {t.tolist()}")
    if np.sum(t == 0) > 1:
        raise InputError(f"thresholds may hold at most one 0, got {t.tolist()}")
    return t


def score_arrays(X, coef: np.ndarray, intercept: np.ndarray, thresholds: np.ndarray | None = None,
                 binomial: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw (n, C), probability (n, C), prediction index (n,) int64) for a feature block.

    ``X``: ndarray or scipy.sparse matrix of shape (n, D); ``coef`` (C, D); ``intercept`` (C,).
    ``binomial`` (C = 2): raw = [−m, m] and p = [1 − σ(m), σ(m)] with m = z_1 − z_0, the margin of
    MLlib's binomial model (its ``rawPrediction``), instead of the logits z; with thresholds, the
    prediction is MLlib's binomial rule m > log(t / (1 − t)) for t = 1 / (1 + t_0 / t_1).
    """
    logits = np.asarray(X @ coef.T, dtype=np.float64) + intercept  # works for dense and CSR X
    if binomial:
        margin = logits[:, 1] - logits[:, 0]
        raw = np.column_stack([-margin, margin])
        p1 = 0.5 * (1.0 + np.tanh(0.5 * margin))  # σ(m) without overflow
        proba = np.column_stack([1.0 - p1, p1])
    else:
        raw = logits
        proba = softmax(logits.copy())
    if thresholds is None:
        prediction = raw.argmax(axis=1)
    elif binomial:
        # MLlib's binomial rule: margin > log(t / (1 − t)), t = 1 / (1 + t_0 / t_1) the threshold
        t0, t1 = float(thresholds[0]), float(thresholds[1])
        t = 0.0 if t1 == 0 else (1.0 if t0 == 0 else 1.0 / (1.0 + t0 / t1))
        raw_threshold = -np.inf if t == 0 else (np.inf if t == 1 else np.log(t / (1.0 - t)))
        prediction = (raw[:, 1] > raw_threshold).astype(np.int64)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = proba / thresholds
        # 0/0 (a zero-threshold class with p = 0) never wins, as in MLlib's strict '>' scan
        scaled[np.isnan(scaled)] = -np.inf
        prediction = scaled.argmax(axis=1)
    return raw, proba, prediction.astype(np.int64)


def _dense_vector_array(values: np.ndarray) -> pa.StructArray:
    """(n, C) float64 → VectorUDT's Arrow struct, every row dense (type 1, size/indices null,
    as ``VectorUDT.serialize`` writes a DenseVector)."""
    n, width = values.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32) if n else np.zeros(1, np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), type=pa.float64()))
    return pa.StructArray.from_arrays(
        [pa.array(np.ones(n, dtype=np.int8)), pa.nulls(n, pa.int32()), pa.nulls(n, pa.list_(pa.int32())), lists],
        names=["type", "size", "indices", "values"],
    )


def label_types(classes: Sequence):
    """(Spark DataType, Arrow type) of a column holding the class labels themselves
    (``labels.class_kind``; classes of other or mixed types are written as text)."""
    kind = class_kind(classes, strict=False)
    return spark_type(kind), arrow_type(kind)


class ScoringKernel:
    """The one ``mapInArrow`` scorer (``score_dataframe``, the Estimator's transform through it,
    and ``evaluate.evaluation``): input batches → kept input columns + the requested outputs.

    Parameters
    ----------
    spec : FeatureSpec of the feature column(s); ``n_features`` D, checked on every row.
    input_names : the input's real column names (batches may arrive under positional names:
        PySpark resolves ``mapInArrow``'s input by name, which fails for names with dots), or None.
    passthrough : input columns copied to the output, in order (None: all of them).
    outputs : (kind, name) pairs appended in order; kind "raw" / "probability" (ml Vectors, (C,)
        each), "probability_list" (array<double>), "class_probabilities" (``name``: a list of C
        names, one double column each), "prediction" (the class index as a double), "label" (the
        class value itself, from ``label_values``).
    weights : handle of (coef (C, D), intercept (C,)) with ``.value`` (``backend.Backend.ship``:
        a broadcast or the closure's own copy).
    thresholds, binomial : ``score_arrays``' arguments.
    predict_from : "raw" (``score_arrays``' rule: thresholds, binomial margin) or "probability"
        (the first largest probability, as ``metrics.MetricsAccumulator`` counts a prediction).
    label_check : (label column, classes, hint) to refuse rows whose label is not a model class
        (``labels.check_known``), or None.

    Raises ``InputError`` in the task for a bad feature row (column, partition, row), an unknown
    label, or a batch too large for one Arrow list array (n_rows × C ≥ 2³¹ values).
    """

    def __init__(self, spec, n_features, weights, outputs, input_names=None, passthrough=None, thresholds=None,
                 binomial=False, label_values=None, predict_from="raw", label_check=None):
        self.spec, self.n_features, self.weights, self.outputs = spec, n_features, weights, list(outputs)
        self.input_names, self.passthrough = input_names, passthrough
        self.thresholds, self.binomial, self.label_values = thresholds, binomial, label_values
        self.predict_from, self.label_check = predict_from, label_check

    def output_names(self, names) -> list:
        """The output batches' column names, given the input's."""
        kept = list(names) if self.passthrough is None else list(self.passthrough)
        for kind, name in self.outputs:
            kept.extend(name if kind == "class_probabilities" else [name])
        return kept

    def __call__(self, batches):
        from pyspark import TaskContext  # inside the task: pyspark is loaded there already

        limit_task_blas_threads()  # X @ coefᵀ: one BLAS thread per task core
        coef, intercept = self.weights.value
        n_classes = coef.shape[0]
        context = TaskContext.get()
        where = f"partition {context.partitionId() if context is not None else 0}"
        row_offset = 0
        for batch in batches:
            if self.input_names is not None and batch.schema.names != self.input_names:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=self.input_names)
            n = batch.num_rows
            X = features_to_numpy(batch, self.spec, np.float64, where, row_offset, self.n_features, **_SPARSE)
            if n == 0:
                X = np.empty((0, self.n_features))
            raw, proba, index = score_arrays(X, coef, intercept, self.thresholds, self.binomial)
            if self.predict_from == "probability":
                index = proba.argmax(axis=1)  # (n,), the first maximum
            if self.label_check is not None:
                label_col, classes, hint = self.label_check
                check_known(batch.column(label_col), classes, label_col, where, row_offset, owner="the model's",
                            hint=hint)
            if n * n_classes >= 2**31 and any(kind == "probability_list" for kind, _ in self.outputs):
                raise InputError(
                    f"a batch of {n} rows × {n_classes} classes is too large for one Arrow array; "
                    "lower spark.sql.execution.arrow.maxRecordsPerBatch"
                )
            names = list(batch.schema.names) if self.passthrough is None else list(self.passthrough)
            columns = [batch.column(name) for name in names]
            for kind, name in self.outputs:
                if kind == "raw":
                    columns.append(_dense_vector_array(raw))
                elif kind == "probability":
                    columns.append(_dense_vector_array(proba))
                elif kind == "probability_list":
                    offsets = pa.array(np.arange(0, n * n_classes + 1, n_classes, dtype=np.int32))
                    columns.append(pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1))))
                elif kind == "class_probabilities":
                    columns.extend(pa.array(proba[:, c]) for c in range(n_classes))
                elif kind == "prediction":
                    columns.append(pa.array(index.astype(np.float64)))
                else:  # "label": the original label value
                    columns.append(self.label_values.take(pa.array(index)) if n else self.label_values.slice(0, 0))
            row_offset += n
            yield pa.RecordBatch.from_arrays(columns, names=self.output_names(names))


def _feature_spec(featuresCol, model=None) -> FeatureSpec:
    """``featuresCol`` as a ``FeatureSpec``; None: the feature columns ``model`` was trained on
    (its metadata's ``"columns"``, or an older model's ``options``; ``core.model_record``), else "features"."""
    if featuresCol is None:
        return model_feature_spec(getattr(model, "metadata", None)) or FeatureSpec()
    if isinstance(featuresCol, FeatureSpec):
        return featuresCol
    if isinstance(featuresCol, (list, tuple)):
        return FeatureSpec(features_col=None, feature_cols=tuple(featuresCol))
    return FeatureSpec(features_col=featuresCol)


def score_dataframe(df, model, featuresCol=None, rawPredictionCol="rawPrediction",
                    probabilityCol="probability", predictionCol="prediction", predictedLabelCol=None,
                    thresholds=None, binomial: bool = False):
    """``df`` with MLlib's scored columns appended (see the module docstring); lazy.

    Parameters
    ----------
    df : pyspark.sql.DataFrame holding the features.
    model : ``softmax_spark.SoftmaxModel`` (coef (C, D), intercept (C,), classes).
    featuresCol : a column name (ml Vector, array<double>, array<float>), a list of numeric
        column names (one feature each), or a ``FeatureSpec``; default: the columns the model was
        trained on (as ``jobs/evaluate.py`` reads them), else "features".
    rawPredictionCol, probabilityCol, predictionCol, predictedLabelCol : output names; ``None`` or
        ``""`` leaves that column out. ``predictedLabelCol`` holds ``model.classes[prediction]``
        in the labels' type (bool → boolean, int → long, float → double, else string).
    thresholds : optional sequence of C numbers ≥ 0 (at most one 0): prediction = argmax p_c / t_c
        (MLlib's ``thresholds``).
    binomial : C = 2 only: raw and probability as MLlib's binomial model gives them
        (raw = [−m, m], m = v·x + c with v = w_1 − w_0).

    Notes
    -----
    Raises ``InputError`` (on the driver) for a missing or mistyped feature column, an output
    column that already exists (case-insensitive), bad thresholds; rows with nulls, non-finite
    values or a feature count other than ``model.n_features`` fail the Spark task with an
    ``InputError`` message naming the column, partition and row.
    """
    from pyspark.sql import types as T
    from pyspark.ml.linalg import VectorUDT

    spec = _feature_spec(featuresCol, model)
    check_columns(df.schema, spec)
    coef = np.asarray(model.coef, dtype=np.float64)
    intercept = np.asarray(model.intercept, dtype=np.float64)
    n_classes, n_features = coef.shape
    if binomial and n_classes != 2:
        raise InputError(f"binomial scoring needs a 2-class model, this one has {n_classes} classes")
    t = check_thresholds(thresholds, n_classes)

    existing = {name.lower() for name in df.columns}
    wanted = [("raw", rawPredictionCol), ("probability", probabilityCol), ("prediction", predictionCol),
              ("label", predictedLabelCol)]
    outputs = [(kind, name) for kind, name in wanted if name]
    seen = set()
    for _, name in outputs:
        if name.lower() in existing:
            raise InputError(f"output column '{name}' already exists in the input; choose another name")
        if name.lower() in seen:
            raise InputError(f"output column '{name}' is requested twice")
        seen.add(name.lower())

    spark_label_type, _ = label_types(model.classes)
    label_values = class_values(model.classes)
    out_types = {"raw": VectorUDT(), "probability": VectorUDT(), "prediction": T.DoubleType(),
                 "label": spark_label_type}
    schema = T.StructType(list(df.schema.fields) + [T.StructField(name, out_types[kind], nullable=kind == "label")
                                                    for kind, name in outputs])

    # in the closure up to ``tasks.SHIP_INLINE_BYTES`` (always on Spark Connect), else a broadcast
    weights = backend_for(df).ship((coef, intercept))
    scorer = ScoringKernel(spec, n_features, weights, outputs, input_names=list(df.columns), thresholds=t,
                           binomial=binomial, label_values=label_values)

    with our_tasks(df.sparkSession):  # the scorer keeps the workers' Python it is wrapped with
        return df.mapInArrow(scorer, schema)

