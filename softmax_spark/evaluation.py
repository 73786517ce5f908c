"""Batch scoring and evaluation of a saved SoftmaxModel on Parquet data (``jobs/evaluate.py``).

Pipeline of ``run(spark, cfg)``
-------------------------------
1. Load the model, refuse an existing output (unless ``overwrite``) before any Spark work; an
   existing metrics file or plots directory is refused too, unless it is the leftover of an
   interrupted run for the same output (metrics JSON naming this output; plots directory holding
   only our PNG files).
2. Score: ``mapInArrow`` over the input's Arrow batches — features through
   ``features_to_numpy`` (the same formats as training), one ``X Wᵀ + b`` product and a softmax
   per batch; the coefficients travel as a broadcast. No per-row Python.
3. Write the scored rows with Spark into a hidden sibling ``.<name>.tmp-<id>`` of the output.
4. If the input has the label column: one more ``mapInArrow`` over the written ``probability``
   and label columns fills a ``MetricsAccumulator`` per partition; the partitions' states are
   merged with ``treeAggregate``. Metrics JSON and plots are published atomically.
5. Rename the temporary output into place (Hadoop FileSystem API: local paths and HDFS alike),
   last — an output that exists is complete and its metrics are already written.

Output columns
--------------
Every input column except the feature column(s), in input order, then
``probability`` (array<double>, the model's ``classes`` order), one ``prob_<class>`` double per
class (see ``probability_column_names``), and ``prediction`` (the most probable class, as the
label's own type: int classes → long, float → double, string → string, bool → boolean).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import EvaluateConfig
from .errors import InputError, ModelFormatError
from .features import FeatureSpec, features_to_numpy
from .loss import softmax
from .metrics import DEFAULT_CALIBRATION_BINS, MetricsAccumulator, default_top_k, format_metrics_table

__all__ = ["EvaluateConfig", "EvaluationResult", "probability_column_names", "run"]

CLASS_METADATA_KEY = "softmax_spark.class"
CLASSES_METADATA_KEY = "softmax_spark.classes"


# ---------------------------------------------------------------------------------------------
# classes, labels and column names
# ---------------------------------------------------------------------------------------------
def class_kind(classes: list) -> str:
    """'bool', 'int', 'float' (ints and floats mixed too) or 'string'; else ModelFormatError."""
    if all(isinstance(c, bool) for c in classes):
        return "bool"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "int"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "float"
    if all(isinstance(c, str) for c in classes):
        return "string"
    raise ModelFormatError(f"the model's classes mix types: {classes!r}")


_ARROW_TYPE = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string()}


def _spark_type(kind: str):
    from pyspark.sql import types as T

    return {"bool": T.BooleanType(), "int": T.LongType(), "float": T.DoubleType(), "string": T.StringType()}[kind]


def _label_kind(arrow_type: pa.DataType) -> str | None:
    """'numeric', 'string', 'bool' or None (no class can ever match)."""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    return None


def _classes_kind_family(kind: str) -> str:
    return "numeric" if kind in ("int", "float") else kind


def label_positions(labels: pa.Array, classes: list) -> np.ndarray:
    """Positions of the label values in ``classes``; −1 for a null or unknown label.

    Values compare as Python values do (1 == 1.0; "1" != 1), vectorised with Arrow.
    labels : Arrow array of n_rows values. Returns ndarray of shape (n_rows,), int64.
    """
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    kind = class_kind(classes)
    family = _label_kind(labels.type)
    if family is None or family != _classes_kind_family(kind):
        return np.full(len(labels), -1, dtype=np.int64)
    if family == "numeric":
        target = pa.int64() if kind == "int" and pa.types.is_integer(labels.type) else pa.float64()
        labels = labels.cast(target)
        value_set = pa.array(classes, type=pa.float64() if target == pa.float64() else pa.int64())
    elif family == "string":
        labels = labels.cast(pa.string())
        value_set = pa.array(classes, type=pa.string())
    else:
        value_set = pa.array(classes, type=pa.bool_())
    positions = pc.index_in(labels, value_set=value_set)
    return positions.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_]")


def probability_column_names(classes: list, taken=(), prefix: str = "prob_") -> list[str]:
    """One column name per class, in ``classes`` order.

    Rule: ``prefix + str(class)`` with every character outside [A-Za-z0-9_] replaced by ``_``;
    if that name equals (case-insensitively, as Spark resolves names) a name in ``taken`` or an
    earlier class's column, append ``_2``, ``_3``, … (the first free one).
    Examples: 3 → prob_3; -1 → prob__1; 0.5 → prob_0_5; "a-b" → prob_a_b; then "a_b" → prob_a_b_2.
    """
    used = {name.lower() for name in taken}
    names = []
    for value in classes:
        base = prefix + _NAME_CHARACTER.sub("_", str(value))
        name, suffix = base, 2
        while name.lower() in used:
            name, suffix = f"{base}_{suffix}", suffix + 1
        used.add(name.lower())
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# the Arrow kernels (run in Spark's Python workers)
# ---------------------------------------------------------------------------------------------
def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


@dataclass
class _ScoringKernel:
    """Callable for ``mapInArrow``: input batches → scored batches (see the module docstring).

    The coefficients come from ``weights`` (a Spark broadcast of (coef (C, D), intercept (C,)))
    or, when it is None, from ``coef``/``intercept`` directly (tests without Spark).
    """

    spec: FeatureSpec
    n_features: int
    classes: list
    passthrough: list
    output_names: list  # passthrough + probability + per-class + prediction
    label_col: str | None  # checked for unknown labels when given
    input_names: list | None = None  # the input's real column names (batches may arrive renamed)
    weights: object = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None

    def _weights(self):
        if self.weights is not None:
            return self.weights.value
        return self.coef, self.intercept

    def __call__(self, batches):
        coef, intercept = self._weights()  # (C, D), (C,)
        n_classes = coef.shape[0]
        class_values = pa.array(self.classes, type=_ARROW_TYPE[class_kind(self.classes)])
        where = f"partition {_partition_id()}"
        row_offset = 0
        for batch in batches:
            if self.input_names is not None and batch.schema.names != self.input_names:
                batch = pa.RecordBatch.from_arrays(batch.columns, names=self.input_names)
            n_rows = batch.num_rows
            X = features_to_numpy(batch, self.spec, where=where, row_offset=row_offset, n_features=self.n_features,
                                  sparse="auto")  # csr_matrix for SparseVector rows: X @ coef.T stays sparse × dense
            if n_rows == 0:
                X = np.empty((0, self.n_features))
            proba = softmax(X @ coef.T + intercept)  # (n_rows, C)
            predicted = proba.argmax(axis=1)  # (n_rows,), the first maximum, as MetricsAccumulator
            if self.label_col is not None:
                labels = batch.column(self.label_col)
                positions = label_positions(labels, self.classes)
                unknown = np.flatnonzero(positions < 0)
                if unknown.size:
                    row = int(unknown[0])
                    value = labels[row].as_py()
                    what = "null label" if value is None else f"label {value!r}"
                    raise InputError(
                        f"column '{self.label_col}': {what} at {where} row {row_offset + row} is not one "
                        f"of the model's classes {self.classes}; pass --unknown-labels ignore to score "
                        "such rows and count them apart from the metrics"
                    )
            if n_rows * n_classes >= 2**31:
                raise InputError(
                    f"a batch of {n_rows} rows × {n_classes} classes is too large for one Arrow array; "
                    "lower spark.sql.execution.arrow.maxRecordsPerBatch"
                )
            offsets = pa.array(np.arange(0, n_rows * n_classes + 1, n_classes, dtype=np.int32))
            probability = pa.ListArray.from_arrays(offsets, pa.array(proba.reshape(-1)))
            columns = [batch.column(name) for name in self.passthrough]
            columns.append(probability)
            columns.extend(pa.array(proba[:, c]) for c in range(n_classes))
            columns.append(class_values.take(pa.array(predicted)))
            yield pa.RecordBatch.from_arrays(columns, names=self.output_names)
            row_offset += n_rows


@dataclass
class _MetricsKernel:
    """Callable for ``mapInArrow``: (label, probability) batches → one row holding the
    partition's ``MetricsAccumulator`` state as bytes."""

    classes: list
    top_k: tuple
    label_col: str = "label"
    probability_col: str = "probability"
    n_bins: int = DEFAULT_CALIBRATION_BINS

    def __call__(self, batches):
        n_classes = len(self.classes)
        acc = MetricsAccumulator(n_classes, top_k=self.top_k, n_bins=self.n_bins)
        for batch in batches:
            positions = label_positions(batch.column(self.label_col), self.classes)  # (n_rows,)
            probability = batch.column(self.probability_col)
            if isinstance(probability, pa.ChunkedArray):
                probability = probability.combine_chunks()
            proba = probability.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_classes)
            known = positions >= 0
            acc.add(proba[known], positions[known])
            acc.add_unknown(int((~known).sum()))
        yield pa.RecordBatch.from_arrays([pa.array([acc.to_bytes()], type=pa.binary())], names=["state"])


def _merge_states(left: bytes, right: bytes) -> bytes:
    return MetricsAccumulator.from_bytes(left).merge(MetricsAccumulator.from_bytes(right)).to_bytes()


# ---------------------------------------------------------------------------------------------
# file systems: Hadoop's for Spark outputs and remote paths, the os module for local files
# ---------------------------------------------------------------------------------------------
class _Paths:
    """Qualify, test, rename and delete paths through the Hadoop FileSystem API (``spark._jvm``),
    so ``file:``, ``hdfs:`` and scheme-less (default filesystem) paths behave alike."""

    def __init__(self, spark):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        return self._path(path).getFileSystem(self._conf)

    def qualify(self, path: str) -> str:
        jpath = self._path(path)
        return jpath.getFileSystem(self._conf).makeQualified(jpath).toString()

    @staticmethod
    def local(path: str) -> str | None:
        """The OS path of a qualified ``file:`` URI, else None."""
        parsed = urlparse(path)
        return parsed.path if parsed.scheme == "file" else None

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._path(path)))

    def delete(self, path: str) -> None:
        try:
            self._fs(path).delete(self._path(path), True)
        except Exception:  # best effort: a leftover hidden directory is harmless
            pass

    def rename(self, source: str, target: str) -> None:
        if not self._fs(source).rename(self._path(source), self._path(target)):
            raise OSError(f"could not rename {source} to {target}")

    @staticmethod
    def hidden_sibling(path: str, tag: str) -> str:
        parent, name = path.rstrip("/").rsplit("/", 1)
        return f"{parent}/.{name}.{tag}-{uuid.uuid4().hex[:12]}"

    def publish(self, staged: str, path: str) -> None:
        """Move the complete ``staged`` into ``path``; an existing ``path`` is first renamed aside
        (never merged into), then deleted."""
        if self.exists(path):
            old = self.hidden_sibling(path, "old")
            self.rename(path, old)
            self.rename(staged, path)
            self.delete(old)
        else:
            self.rename(staged, path)

    def read_bytes(self, path: str) -> bytes:
        local = self.local(path)
        if local is not None:
            with open(local, "rb") as f:
                return f.read()
        stream = self._fs(path).open(self._path(path))
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def list_names(self, path: str) -> list[str]:
        """Names of the entries of the directory ``path``."""
        return [status.getPath().getName() for status in self._fs(path).listStatus(self._path(path))]

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (hidden sibling, then rename over)."""
        staged = self.hidden_sibling(path, "tmp")
        try:
            local = self.local(staged)
            if local is not None:
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                stream = self._fs(staged).create(self._path(staged), True)
                try:
                    stream.write(bytearray(data))
                finally:
                    stream.close()
            self.publish(staged, path)
        except BaseException:
            self.delete(staged)
            raise

    def publish_local_directory(self, build, path: str) -> None:
        """``build(local_dir)`` fills a directory that then replaces ``path`` atomically."""
        staged = self.hidden_sibling(path, "tmp")
        local = self.local(staged)
        scratch = None
        try:
            if local is not None:
                os.makedirs(local)
                build(local)
            else:
                scratch = tempfile.mkdtemp(prefix="softmax_spark-plots-")
                build(scratch)
                self._fs(staged).copyFromLocalFile(False, True, self._path(scratch), self._path(staged))
            self.publish(staged, path)
        except BaseException:
            self.delete(staged)
            raise
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    """What a run wrote. ``metrics`` is None when the input had no label column."""

    output: str
    rows_scored: int
    probability_columns: dict  # column name → class value
    metrics: dict | None = None
    metrics_path: str | None = None
    plot_paths: list = field(default_factory=list)

    def report(self) -> str:
        lines = [f"output                {self.output}"]
        if self.metrics is None:
            lines.append(f"rows scored           {self.rows_scored}")
            lines.append("metrics               none (the input has no label column)")
        else:
            lines.append(f"metrics               {self.metrics_path}")
        if self.plot_paths:
            lines.append("plots                 " + ", ".join(self.plot_paths))
        if self.metrics is not None:
            lines.append("")
            lines.append(format_metrics_table(self.metrics))
        return "\n".join(lines)


def _field_names(schema) -> list[str]:
    return [f.name for f in schema.fields]


def _require_columns(schema, names, what: str) -> None:
    available = _field_names(schema)
    for name in names:
        if name not in available:
            raise InputError(f"{what} '{name}' is not a column of the input; its columns are {available}")


def _check_feature_types(schema, spec: FeatureSpec, n_features: int) -> None:
    """Refuse a feature column whose Spark type can never hold the model's features."""
    from pyspark.sql import types as T

    by_name = {f.name: f.dataType for f in schema.fields}
    if spec.feature_cols:
        if len(spec.feature_cols) != n_features:
            raise InputError(
                f"columns '{spec.describe()}': {len(spec.feature_cols)} feature columns, the model "
                f"expects {n_features}"
            )
        for name in spec.feature_cols:
            if not isinstance(by_name[name], (T.NumericType, T.BooleanType)):
                raise InputError(f"column '{name}' is {by_name[name].simpleString()}, expected a numeric column")
        return
    dtype = by_name[spec.features_col]
    is_array = isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.NumericType)
    is_vector = isinstance(dtype, T.UserDefinedType) and type(dtype).__name__ == "VectorUDT"
    if not (is_array or is_vector):
        raise InputError(
            f"column '{spec.features_col}' is {dtype.simpleString()}, expected array<double>, "
            f"array<float> or an ml Vector of {n_features} features"
        )


def _check_label_type(schema, label_col: str, classes: list) -> None:
    from pyspark.sql import types as T

    dtype = {f.name: f.dataType for f in schema.fields}[label_col]
    if isinstance(dtype, (T.NumericType,)):
        family = "numeric"
    elif isinstance(dtype, T.StringType):
        family = "string"
    elif isinstance(dtype, T.BooleanType):
        family = "bool"
    else:
        family = None
    kind = class_kind(classes)
    if family != _classes_kind_family(kind):
        raise InputError(
            f"column '{label_col}' is {dtype.simpleString()} but the model's classes are {kind} values "
            f"{classes[:10]}{' …' if len(classes) > 10 else ''}"
        )


def _check_not_exists(paths: _Paths, path: str, overwrite: bool, what: str, leftover=None) -> None:
    """Refuse an existing ``path`` unless ``overwrite`` or ``leftover(path)`` says it was left by
    an interrupted run for the same output (the output is published last, so it is absent)."""
    if not overwrite and paths.exists(path) and not (leftover is not None and leftover(path)):
        raise InputError(f"{what} {path} already exists; pass --overwrite to replace it")


PLOT_FILES = ("confusion_matrix.png", "reliability.png", "training_curve.png")


def _leftover_metrics(paths: _Paths, output: str):
    """Is the file a metrics JSON written for ``output``?"""

    def check(path: str) -> bool:
        try:
            return json.loads(paths.read_bytes(path)).get("output") == output
        except Exception:  # unreadable, not JSON, not a mapping, a directory: not ours
            return False

    return check


def _leftover_plots(paths: _Paths):
    """Is the directory made only of our plot files?"""

    def check(path: str) -> bool:
        try:
            return set(paths.list_names(path)) <= set(PLOT_FILES)
        except Exception:
            return False

    return check


def _scored_schema(input_schema, passthrough, cfg: EvaluateConfig, prob_names, classes):
    from pyspark.sql import types as T

    by_name = {f.name: f for f in input_schema.fields}
    kind = class_kind(classes)
    return T.StructType(
        [by_name[name] for name in passthrough]
        + [T.StructField(cfg.probability_col, T.ArrayType(T.DoubleType()), True)]
        + [T.StructField(name, T.DoubleType(), True) for name in prob_names]
        + [T.StructField(cfg.prediction_col, _spark_type(kind), True)]
    )


def _column(name: str):
    """A top-level column by its exact name (dots and backticks taken literally)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _with_class_metadata(scored, cfg: EvaluateConfig, prob_names, classes):
    """Record which class each probability column holds in the Parquet schema (field metadata)."""
    from pyspark.sql import functions as F

    metadata_by_column = {name: {CLASS_METADATA_KEY: value} for name, value in zip(prob_names, classes)}
    metadata_by_column[cfg.probability_col] = {CLASSES_METADATA_KEY: list(classes)}
    return scored.select(
        *[
            _column(name).alias(name, metadata=metadata_by_column[name]) if name in metadata_by_column
            else _column(name)
            for name in scored.columns
        ]
    )


def _write_plots(directory: str, model, metrics: dict | None, classes: list) -> list[str]:
    """Write the PNGs into the local ``directory``; returns their file names."""
    from .plots import plot_confusion_matrix, plot_reliability_diagram, plot_training_curve

    written = []
    if metrics is not None and metrics["labelled_rows"]:
        counts = metrics["confusion_matrix"]["counts"]
        confusion_file, reliability_file, _ = PLOT_FILES
        plot_confusion_matrix(counts, classes, os.path.join(directory, confusion_file))
        plot_reliability_diagram(
            metrics["calibration"], os.path.join(directory, reliability_file), metrics["expected_calibration_error"]
        )
        written += [confusion_file, reliability_file]
    if plot_training_curve(model.history, os.path.join(directory, PLOT_FILES[2])):
        written.append(PLOT_FILES[2])
    return written


def _plottable(model, has_labels: bool) -> bool:
    return has_labels or any(r.get("objective") is not None for r in model.history if isinstance(r, dict))


def run(spark, cfg: EvaluateConfig) -> EvaluationResult:
    """Score ``cfg.input`` with the model in ``cfg.model_dir`` and evaluate it (module docstring)."""
    from .distributed import raise_task_error
    from .ingest import read_parquet
    from .model_io import load_model

    model = load_model(cfg.model_dir)
    classes = list(model.classes)
    class_kind(classes)  # refuses mixed-type classes early
    paths = _Paths(spark)
    output = paths.qualify(cfg.output)
    _check_not_exists(paths, output, cfg.overwrite, "output")

    top_k = cfg.top_k or default_top_k(model.n_classes)
    if cfg.top_k_is_range:
        top_k = tuple(k for k in top_k if k <= model.n_classes)
    if top_k[-1] > model.n_classes:
        raise InputError(f"--top-k {top_k[-1]} exceeds the model's {model.n_classes} classes")

    frame = read_parquet(spark, cfg.input)
    spec = cfg.feature_spec
    input_schema = frame.schema
    _require_columns(input_schema, spec.columns, "feature column")
    _check_feature_types(input_schema, spec, model.n_features)
    label_col = cfg.label_col or "label"
    has_labels = label_col in _field_names(input_schema)
    if cfg.label_col_required and not has_labels:
        _require_columns(input_schema, [label_col], "label column")
    if has_labels and label_col in spec.columns:
        raise InputError(f"column '{label_col}' is both the label and a feature column")
    if has_labels:
        _check_label_type(input_schema, label_col, classes)

    passthrough = [name for name in _field_names(input_schema) if name not in spec.columns]
    taken = {name.lower() for name in passthrough}
    for name in (cfg.probability_col, cfg.prediction_col):
        if name.lower() in taken:
            raise InputError(
                f"input column '{name}' clashes with an output column; drop or rename it, or choose "
                "another --probability-col / --prediction-col"
            )
    prob_names = probability_column_names(classes, taken=list(passthrough) + [cfg.probability_col, cfg.prediction_col])
    output_names = passthrough + [cfg.probability_col] + prob_names + [cfg.prediction_col]
    if cfg.partition_by:
        missing = [name for name in cfg.partition_by if name not in output_names]
        if missing:
            raise InputError(
                f"--partition-by {missing[0]!r} is not an output column; output columns are {output_names}"
            )

    want_metrics = has_labels
    metrics_path = paths.qualify(cfg.metrics_out or f"{output.rstrip('/')}.metrics.json") if want_metrics else None
    want_plots = not cfg.no_plots and _plottable(model, has_labels)
    plots_path = paths.qualify(cfg.plots_dir or f"{output.rstrip('/')}.plots") if want_plots else None
    for target, what, leftover in (
        (metrics_path, "metrics file", _leftover_metrics(paths, output)),
        (plots_path, "plots directory", _leftover_plots(paths)),
    ):
        if target is None:
            continue
        if target == output or target.startswith(output.rstrip("/") + "/"):
            raise InputError(f"{what} {target} must not be inside the output {output}")
        _check_not_exists(paths, target, cfg.overwrite, what, leftover)

    schema = _scored_schema(input_schema, passthrough, cfg, prob_names, classes)
    weights = spark.sparkContext.broadcast((model.coef, model.intercept))
    kernel = _ScoringKernel(
        spec=spec,
        n_features=model.n_features,
        classes=classes,
        passthrough=passthrough,
        output_names=output_names,
        input_names=_field_names(input_schema),
        label_col=label_col if has_labels and cfg.unknown_labels == "error" else None,
        weights=weights,
    )
    # positional names into mapInArrow: PySpark resolves the input columns by name there, which
    # fails for names with dots; the kernel puts the real names back on each batch.
    positional = frame.toDF(*[f"_c{i}" for i in range(len(frame.columns))])
    scored = _with_class_metadata(positional.mapInArrow(kernel, schema), cfg, prob_names, classes)

    staged = paths.hidden_sibling(output, "tmp")
    try:
        writer = scored.write.mode("errorifexists")
        if cfg.partition_by:
            writer = writer.partitionBy(*cfg.partition_by)
        try:
            writer.parquet(staged)
        except Exception as exc:
            raise_task_error(exc)
            raise

        metrics = None
        if want_metrics:
            states = (
                spark.read.schema(schema)
                .parquet(staged)
                .select(_column(label_col).alias("label"), _column(cfg.probability_col).alias("probability"))
                .mapInArrow(_MetricsKernel(classes, tuple(top_k)), "state binary")
            )
            empty = MetricsAccumulator(model.n_classes, top_k=top_k).to_bytes()
            state = states.rdd.map(lambda row: bytes(row[0])).treeAggregate(
                empty, _merge_states, _merge_states, depth=2
            )
            accumulator = MetricsAccumulator.from_bytes(state)
            metrics = accumulator.result(classes)
            rows_scored = accumulator.n_rows + accumulator.unknown_label_rows
            metrics = {
                "model_dir": os.path.abspath(cfg.model_dir),
                "input": cfg.input,
                "output": output,
                "label_col": label_col,
                "unknown_labels": cfg.unknown_labels,
                "rows_scored": rows_scored,
                "classes": classes,
                "probability_columns": [{"class": c, "column": n} for c, n in zip(classes, prob_names)],
                **metrics,
            }
            paths.write_bytes(metrics_path, (json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
        else:
            rows_scored = spark.read.parquet(staged).count()

        plot_files = []
        if want_plots:
            def build(directory):
                plot_files.extend(_write_plots(directory, model, metrics, classes))

            paths.publish_local_directory(build, plots_path)
        paths.publish(staged, output)
    except BaseException:
        paths.delete(staged)
        raise
    finally:
        weights.destroy()

    return EvaluationResult(
        output=output,
        rows_scored=int(rows_scored),
        probability_columns=dict(zip(prob_names, classes)),
        metrics=metrics,
        metrics_path=metrics_path,
        plot_paths=[f"{plots_path}/{name}" for name in plot_files],
    )
