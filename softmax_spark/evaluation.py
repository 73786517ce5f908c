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

import atexit
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field, fields
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, ModelFormatError
from .features import FeatureSpec, features_to_numpy
from .loss import softmax
from .metrics import DEFAULT_CALIBRATION_BINS, MetricsAccumulator, default_top_k, format_metrics_table

__all__ = [
    "EvaluateConfig",
    "EvaluationResult",
    "config_from_mapping",
    "load_config_file",
    "merge_settings",
    "probability_column_names",
    "run",
    "ship_package",
    "CONFIG_KEYS",
]

UNKNOWN_LABEL_MODES = ("error", "ignore")
CLASS_METADATA_KEY = "softmax_spark.class"
CLASSES_METADATA_KEY = "softmax_spark.classes"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of one evaluation run; each field is the flag / config key with ``-`` for ``_``."""

    model_dir: str
    input: str
    output: str
    metrics_out: str | None = None  # default <output>.metrics.json
    plots_dir: str | None = None  # default <output>.plots
    features_col: str | None = None  # default "features" unless feature_cols is given
    feature_cols: tuple[str, ...] | None = None
    label_col: str = "label"
    label_col_required: bool = False  # label_col was given explicitly: a missing column is an error
    partition_by: tuple[str, ...] | None = None
    top_k: tuple[int, ...] | None = None  # default 1..min(5, n_classes)
    top_k_is_range: bool = False  # top_k came from one integer K: capped at n_classes
    unknown_labels: str = "error"
    overwrite: bool = False
    no_plots: bool = False
    prediction_col: str = "prediction"
    probability_col: str = "probability"

    @property
    def feature_spec(self) -> FeatureSpec:
        if self.feature_cols:
            return FeatureSpec(features_col=None, feature_cols=tuple(self.feature_cols))
        return FeatureSpec(features_col=self.features_col or "features")


_INTERNAL_FIELDS = {"label_col_required", "top_k_is_range"}
CONFIG_KEYS = tuple(f.name.replace("_", "-") for f in fields(EvaluateConfig) if f.name not in _INTERNAL_FIELDS)
_REQUIRED_KEYS = ("model-dir", "input", "output")


def _as_name_list(key: str, value) -> tuple[str, ...] | None:
    """'a,b' or ['a', 'b'] → ('a', 'b'); None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise InputError(f"setting {key}: expected a comma-separated list of column names, got {value!r}")
    names = tuple(v.strip() for v in items if v.strip())
    if not names:
        raise InputError(f"setting {key}: empty list of column names")
    if len(set(names)) != len(names):
        raise InputError(f"setting {key}: repeated column name in {list(names)}")
    return names


def _as_top_k(value) -> tuple[int, ...] | None:
    """One integer K → (1, …, K) (capped at the number of classes in ``run``); a list or a
    comma-separated string → exactly those k values."""
    if value is None:
        return None
    single = _is_single_k(value)
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    try:
        ks = tuple(sorted({int(str(v).strip()) for v in items if str(v).strip()}))
    except ValueError:
        raise InputError(f"setting top-k: expected an integer K or a list like 1,3,5, got {value!r}") from None
    if not ks or ks[0] < 1 or isinstance(value, bool):
        raise InputError(f"setting top-k: every k must be ≥ 1, got {value!r}")
    return tuple(range(1, ks[0] + 1)) if single else ks


def _is_single_k(value) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and "," not in value)


def _as_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise InputError(f"setting {key}: expected true or false, got {value!r}")


def _as_text(key: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"setting {key}: expected a non-empty string, got {value!r}")
    return value


def config_from_mapping(settings: dict) -> EvaluateConfig:
    """Validate flat settings (keys as the flags without ``--``; ``_`` accepted for ``-``).

    An unknown key, a missing required key or a bad value is an ``InputError``.
    """
    normalised = {}
    for key, value in settings.items():
        name = str(key).replace("_", "-")
        if name not in CONFIG_KEYS:
            raise InputError(f"unknown setting {key!r}; known settings: {', '.join(CONFIG_KEYS)}")
        normalised[name] = value
    missing = [k for k in _REQUIRED_KEYS if normalised.get(k) in (None, "")]
    if missing:
        raise InputError("missing required setting(s): " + ", ".join(f"--{k}" for k in missing))
    if normalised.get("features-col") is not None and normalised.get("feature-cols") is not None:
        raise InputError("give exactly one of --features-col or --feature-cols")
    unknown_labels = normalised.get("unknown-labels", "error")
    if unknown_labels not in UNKNOWN_LABEL_MODES:
        raise InputError(f"setting unknown-labels: expected one of {list(UNKNOWN_LABEL_MODES)}, got {unknown_labels!r}")
    cfg = EvaluateConfig(
        model_dir=_as_text("model-dir", normalised["model-dir"]),
        input=_as_text("input", normalised["input"]),
        output=_as_text("output", normalised["output"]),
        metrics_out=_as_text("metrics-out", normalised.get("metrics-out")),
        plots_dir=_as_text("plots-dir", normalised.get("plots-dir")),
        features_col=_as_text("features-col", normalised.get("features-col")),
        feature_cols=_as_name_list("feature-cols", normalised.get("feature-cols")),
        label_col=_as_text("label-col", normalised.get("label-col")) or "label",
        label_col_required=normalised.get("label-col") is not None,
        partition_by=_as_name_list("partition-by", normalised.get("partition-by")),
        top_k=_as_top_k(normalised.get("top-k")),
        top_k_is_range=_is_single_k(normalised.get("top-k")),
        unknown_labels=unknown_labels,
        overwrite=_as_bool("overwrite", normalised.get("overwrite", False)),
        no_plots=_as_bool("no-plots", normalised.get("no-plots", False)),
        prediction_col=_as_text("prediction-col", normalised.get("prediction-col")) or "prediction",
        probability_col=_as_text("probability-col", normalised.get("probability-col")) or "probability",
    )
    if cfg.prediction_col.lower() == cfg.probability_col.lower():
        raise InputError(f"--prediction-col and --probability-col are both {cfg.prediction_col!r}")
    return cfg


def merge_settings(file_settings: dict, flag_settings: dict) -> dict:
    """Flags over the config file; a flag choosing features-col or feature-cols also drops the
    other one from the file (they exclude each other)."""
    merged = {str(k).replace("_", "-"): v for k, v in file_settings.items()}
    flags = {str(k).replace("_", "-"): v for k, v in flag_settings.items()}
    for key, other in (("features-col", "feature-cols"), ("feature-cols", "features-col")):
        if key in flags:
            merged.pop(other, None)
    merged.update(flags)
    return merged


def load_config_file(path: str) -> dict:
    """A YAML mapping of settings (keys as the flags without ``--``); an empty file is {}."""
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise InputError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    return data


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
            X = features_to_numpy(batch, self.spec, where=where, row_offset=row_offset, n_features=self.n_features)
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
# errors raised inside Spark tasks
# ---------------------------------------------------------------------------------------------
_TASK_INPUT_ERROR = re.compile(r"softmax_spark\.errors\.(?:InputError|ModelFormatError): ([^\n]*)")


def input_error_from_task(exc: BaseException) -> InputError | None:
    """The ``InputError`` a Spark task raised, recovered from the driver-side exception text."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, InputError):
            return exc
        matches = _TASK_INPUT_ERROR.findall(str(exc))
        if matches:
            return InputError(matches[-1].strip())
        exc = exc.__cause__ or exc.__context__
    return None


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
            f"array<float> or a dense ml Vector of {n_features} features"
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


def _read_input(spark, path: str):
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(path)
    except AnalysisException as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read input {path} as Parquet: {first_line}") from None


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

    frame = _read_input(spark, cfg.input)
    spec = cfg.feature_spec
    input_schema = frame.schema
    _require_columns(input_schema, spec.columns, "feature column")
    _check_feature_types(input_schema, spec, model.n_features)
    has_labels = cfg.label_col in _field_names(input_schema)
    if cfg.label_col_required and not has_labels:
        _require_columns(input_schema, [cfg.label_col], "label column")
    if has_labels and cfg.label_col in spec.columns:
        raise InputError(f"column '{cfg.label_col}' is both the label and a feature column")
    if has_labels:
        _check_label_type(input_schema, cfg.label_col, classes)

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
        label_col=cfg.label_col if has_labels and cfg.unknown_labels == "error" else None,
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
            task_error = input_error_from_task(exc)
            if task_error is not None:
                raise task_error from None
            raise

        metrics = None
        if want_metrics:
            states = (
                spark.read.schema(schema)
                .parquet(staged)
                .select(_column(cfg.label_col).alias("label"), _column(cfg.probability_col).alias("probability"))
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
                "label_col": cfg.label_col,
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


# ---------------------------------------------------------------------------------------------
# shipping the package to executors
# ---------------------------------------------------------------------------------------------
_SHIPPED: dict = {}


def ship_package(spark) -> str:
    """Zip the ``softmax_spark`` package into a temporary directory and ``addPyFile`` it, so
    executors without the package installed can run the kernels. Once per SparkContext.

    Returns the zip's local path.
    """
    context = spark.sparkContext
    key = context.applicationId
    if key in _SHIPPED:
        return _SHIPPED[key]
    package_dir = os.path.dirname(os.path.abspath(__file__))
    scratch = tempfile.mkdtemp(prefix="softmax_spark-pyfiles-")
    atexit.register(shutil.rmtree, scratch, True)
    archive = os.path.join(scratch, "softmax_spark.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for directory, subdirs, files in os.walk(package_dir):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in sorted(files):
                if name.endswith(".py"):
                    full = os.path.join(directory, name)
                    zf.write(full, os.path.join("softmax_spark", os.path.relpath(full, package_dir)))
    context.addPyFile(archive)
    _SHIPPED[key] = archive
    return archive
