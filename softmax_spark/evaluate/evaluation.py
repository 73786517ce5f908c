"""Batch scoring and evaluation of a saved SoftmaxModel on Parquet data (``jobs/evaluate.py``).

Pipeline of ``run(spark, cfg)``
-------------------------------
Every path (``--model-dir``, ``--output``, ``--metrics-out``, ``--plots-dir``) is a
``softmax_spark.io.storage`` URI: a local path, ``file:``, or any Hadoop FileSystem URI of the session.

1. Load the model, refuse an existing output (unless ``overwrite``) before any Spark work; an
   existing metrics file or plots directory is refused too, unless it is the leftover of an
   interrupted run for the same output (metrics JSON naming this output; plots directory holding
   only our PNG files).
2. Score: ``mapInArrow`` over the input's Arrow batches — features through
   ``features_to_numpy`` (the same formats as training), one ``X Wᵀ + b`` product and a softmax
   per batch (``scoring.ScoringKernel``, the package's one scorer); the coefficients travel in the closure up to ``tasks.SHIP_INLINE_BYTES``, else as a
   broadcast (``backend.Backend.ship``). No per-row Python.
3. Write the scored rows with Spark into ``.<name>.tmp-<id>/<name>`` next to the output: the
   hidden parent keeps it out of listings, the visible last component keeps Spark's reader from
   ignoring it (Spark skips paths named ``.*`` or ``_*``: "All paths were ignored").
4. If the input has the label column: one more ``mapInArrow`` over the written ``probability``
   and label columns fills a ``MetricsAccumulator`` per partition; the partitions' states are
   merged with ``treeAggregate``. Metrics JSON and plots are published atomically.
5. Rename the temporary output into place (``publish.publish``), last — an output that exists is
   complete and its metrics are already written.

Output columns
--------------
Every input column except the feature column(s), in input order, then
``probability`` (array<double>, the model's ``classes`` order), one ``prob_<class>`` double per
class (see ``probability_column_names``), and ``prediction`` (the most probable class, as the
label's own type: int classes → long, float → double, string → string, bool → boolean).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from softmax_spark.io import storage
from softmax_spark.io.model_io import load_scoring_model
from softmax_spark.io.publish import publish
from softmax_spark.fit.config import EvaluateConfig
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.input_files import read_parquet
from softmax_spark.spark.scoring import ScoringKernel
from softmax_spark.spark.tasks import Inline, raise_task_error
from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec
from softmax_spark.core.labels import arrow_type, class_kind, label_positions
from softmax_spark.spark.schema import check_columns, spark_type
from softmax_spark.core.metrics import DEFAULT_CALIBRATION_BINS, MetricsAccumulator, default_top_k, format_metrics_table

__all__ = ["EvaluateConfig", "EvaluationResult", "probability_column_names", "run", "read", "score", "write",
           "compute_metrics", "write_plots"]

CLASS_METADATA_KEY = "softmax_spark.class"
CLASSES_METADATA_KEY = "softmax_spark.classes"


# ---------------------------------------------------------------------------------------------
# classes, labels and column names
# ---------------------------------------------------------------------------------------------
# class_kind, label_positions: ``labels`` (one equality rule for ingest, scoring and the model)


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
_UNKNOWN_LABEL_HINT = "pass --unknown-labels ignore to score such rows and count them apart from the metrics"


def _ScoringKernel(spec: FeatureSpec, n_features: int, classes: list, passthrough: list, output_names: list,
                   label_col: str | None, input_names: list | None = None, weights=None,
                   coef: np.ndarray | None = None, intercept: np.ndarray | None = None) -> ScoringKernel:
    """The evaluation's outputs of the one scorer (``scoring.ScoringKernel``): ``passthrough``
    columns, then the probability list, one probability column per class and the predicted class
    value (the first largest probability, as the metrics count it), named by ``output_names``
    (passthrough + probability + per-class + prediction). ``label_col``: refuse unknown labels
    in it (None: no check). The coefficients: ``weights`` (a handle with ``.value``, e.g. a
    broadcast of (coef (C, D), intercept (C,))) or, when None, ``coef``/``intercept`` (tests)."""
    n_kept = len(passthrough)
    probability, per_class, prediction = (output_names[n_kept], output_names[n_kept + 1:-1], output_names[-1])
    return ScoringKernel(
        spec, n_features, weights if weights is not None else Inline((coef, intercept)),
        [("probability_list", probability), ("class_probabilities", list(per_class)), ("label", prediction)],
        input_names=input_names, passthrough=list(passthrough),
        label_values=pa.array(classes, type=arrow_type(class_kind(classes))), predict_from="probability",
        label_check=None if label_col is None else (label_col, classes, _UNKNOWN_LABEL_HINT))


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
    note: str | None = None  # why there are no metrics, when the model's label column is absent

    def report(self) -> str:
        lines = [f"output                {self.output}"]
        if self.metrics is None:
            lines.append(f"rows scored           {self.rows_scored}")
            lines.append(f"metrics               none: {self.note}" if self.note else
                         "metrics               none (the input has no label column)")
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


def _check_not_exists(path: str, overwrite: bool, what: str, leftover=None) -> None:
    """Refuse an existing ``path`` unless ``overwrite`` or ``leftover(path)`` says it was left by
    an interrupted run for the same output (the output is published last, so it is absent)."""
    if not overwrite and storage.exists(path) and not (leftover is not None and leftover(path)):
        raise InputError(f"{what} {path} already exists; pass --overwrite to replace it")


PLOT_FILES = ("confusion_matrix.png", "reliability.png", "training_curve.png")


def _leftover_metrics(output: str):
    """Is the file a metrics JSON written for ``output``?"""

    def check(path: str) -> bool:
        try:
            return json.loads(storage.read_bytes(path)).get("output") == output
        except Exception:  # unreadable, not JSON, not a mapping, a directory: not ours
            return False

    return check


def _leftover_plots(path: str) -> bool:
    """Is the directory made only of our plot files?"""
    try:
        return set(storage.list_names(path)) <= set(PLOT_FILES)
    except Exception:
        return False


def _scored_schema(input_schema, passthrough, cfg: EvaluateConfig, prob_names, classes):
    from pyspark.sql import types as T

    by_name = {f.name: f for f in input_schema.fields}
    kind = class_kind(classes)
    return T.StructType(
        [by_name[name] for name in passthrough]
        + [T.StructField(cfg.probability_col, T.ArrayType(T.DoubleType()), True)]
        + [T.StructField(name, T.DoubleType(), True) for name in prob_names]
        + [T.StructField(cfg.prediction_col, spark_type(kind), True)]
    )


def _column(name: str):
    """A top-level column by its exact name (dots and backticks taken literally)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _with_class_metadata(scored, cfg: EvaluateConfig, prob_names, classes):
    """Record which class each probability column holds in the Parquet schema (field metadata)."""
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
    # lazy: plots imports matplotlib, which only the driver's plot step needs
    from softmax_spark.evaluate.plots import plot_confusion_matrix, plot_reliability_diagram, plot_training_curve

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


@dataclass
class _Plan:
    """What ``read`` settled before any Spark job: the model, the input and every output path."""

    model: object
    classes: list
    frame: object  # the input DataFrame (lazy)
    spec: FeatureSpec
    label_col: str
    has_labels: bool
    passthrough: list
    prob_names: list
    output_names: list
    top_k: tuple
    output: str  # qualified URIs
    metrics_path: str | None
    plots_path: str | None
    note: str | None = None  # why there are no metrics although the model had a label column


def read(spark, cfg: EvaluateConfig) -> _Plan:
    """Load the model, read the input's schema and check every column and output path (no
    Spark job runs: an existing output is refused before any work)."""
    model = load_scoring_model(cfg.model_dir, spark=spark, model_classes=getattr(cfg, "model_classes", None))
    classes = list(model.classes)
    class_kind(classes)  # refuses mixed-type classes early
    for flag, path in (("--output", cfg.output), ("--metrics-out", cfg.metrics_out), ("--plots-dir", cfg.plots_dir)):
        storage.check_reachable(path, flag, spark)
    output = storage.qualify(cfg.output, spark)
    _check_not_exists(output, cfg.overwrite, "output")

    top_k = cfg.top_k or default_top_k(model.n_classes)
    if cfg.top_k_is_range:
        top_k = tuple(k for k in top_k if k <= model.n_classes)
    if top_k[-1] > model.n_classes:
        raise InputError(f"--top-k {top_k[-1]} exceeds the model's {model.n_classes} classes")

    frame = read_parquet(spark, cfg.input)
    spec = cfg.feature_spec
    input_schema = frame.schema
    _require_columns(input_schema, spec.columns, "feature column")
    check_columns(input_schema, spec, n_features=model.n_features)
    label_col = cfg.label_col or "label"
    has_labels = label_col in _field_names(input_schema)
    if cfg.label_col_required and not has_labels:
        _require_columns(input_schema, [label_col], "label column")
    if has_labels and label_col in spec.columns:
        raise InputError(f"column '{label_col}' is both the label and a feature column")
    if has_labels:
        check_columns(input_schema, label_col=label_col, classes=classes)

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

    want_plots = not cfg.no_plots and _plottable(model, has_labels)
    # the model's label column (jobs/evaluate.py took it from the model) is absent: said in the
    # report and in the metrics JSON, not silently skipped
    note = (f"the input has no label column '{label_col}' (the model was trained with it)"
            if getattr(cfg, "label_col_from_model", False) and not has_labels else None)
    metrics_path = (storage.qualify(cfg.metrics_out or f"{output.rstrip('/')}.metrics.json", spark)
                    if has_labels or note else None)
    plots_path = storage.qualify(cfg.plots_dir or f"{output.rstrip('/')}.plots", spark) if want_plots else None
    for target, what, leftover in (
        (metrics_path, "metrics file", _leftover_metrics(output)),
        (plots_path, "plots directory", _leftover_plots),
    ):
        if target is None:
            continue
        if target == output or target.startswith(output.rstrip("/") + "/"):
            raise InputError(f"{what} {target} must not be inside the output {output}")
        _check_not_exists(target, cfg.overwrite, what, leftover)
    return _Plan(model, classes, frame, spec, label_col, has_labels, passthrough, prob_names, output_names,
                 tuple(top_k), output, metrics_path, plots_path, note)


def score(spark, cfg: EvaluateConfig, plan: _Plan, weights):
    """The scored DataFrame (lazy): ``mapInArrow`` of ``_ScoringKernel`` over the input, with
    the class of each probability column in the schema's field metadata. ``weights``: a
    broadcast of (coef, intercept)."""
    input_schema = plan.frame.schema
    schema = _scored_schema(input_schema, plan.passthrough, cfg, plan.prob_names, plan.classes)
    kernel = _ScoringKernel(
        spec=plan.spec,
        n_features=plan.model.n_features,
        classes=plan.classes,
        passthrough=plan.passthrough,
        output_names=plan.output_names,
        input_names=_field_names(input_schema),
        label_col=plan.label_col if plan.has_labels and cfg.unknown_labels == "error" else None,
        weights=weights,
    )
    # positional names into mapInArrow: PySpark resolves the input columns by name there, which
    # fails for names with dots; the kernel puts the real names back on each batch.
    positional = plan.frame.toDF(*[f"_c{i}" for i in range(len(plan.frame.columns))])
    return _with_class_metadata(positional.mapInArrow(kernel, schema), cfg, plan.prob_names, plan.classes)


def write(scored, staged: str, partition_by=None) -> None:
    """Write the scored rows as Parquet to ``staged`` (a URI that must not exist)."""
    writer = scored.write.mode("error")  # = errorifexists; Spark Connect knows only this spelling
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    try:
        writer.parquet(staged)
    except Exception as exc:
        raise_task_error(exc)
        raise


def compute_metrics(spark, cfg: EvaluateConfig, plan: _Plan, staged: str, schema) -> tuple[dict | None, int]:
    """(metrics dict or None, rows scored) from the written rows at ``staged``: one
    ``mapInArrow`` of ``_MetricsKernel`` merged with ``treeAggregate``; the metrics JSON is
    published (atomically) to ``plan.metrics_path``."""
    if not plan.has_labels:
        rows_scored = spark.read.parquet(staged).count()
        if plan.note:
            record = {"model_dir": cfg.model_dir, "input": cfg.input, "output": plan.output,
                      "label_col": plan.label_col, "rows_scored": rows_scored, "metrics": None, "note": plan.note}
            storage.write_bytes(plan.metrics_path, (json.dumps(record, indent=2) + "\n").encode("utf-8"), spark)
        return None, rows_scored
    states = (
        spark.read.schema(schema)
        .parquet(staged)
        .select(_column(plan.label_col).alias("label"), _column(cfg.probability_col).alias("probability"))
        .mapInArrow(_MetricsKernel(plan.classes, plan.top_k), "state binary")
    )
    empty = MetricsAccumulator(plan.model.n_classes, top_k=plan.top_k).to_bytes()
    if not backend_for(spark).has_rdd:  # Spark Connect: the per-partition states merge on the driver
        state = functools.reduce(_merge_states, (bytes(row[0]) for row in states.collect()), empty)
    else:
        state = states.rdd.map(lambda row: bytes(row[0])).treeAggregate(empty, _merge_states, _merge_states, depth=2)
    accumulator = MetricsAccumulator.from_bytes(state)
    rows_scored = accumulator.n_rows + accumulator.unknown_label_rows
    model_dir = os.path.abspath(storage.local_path(cfg.model_dir)) if storage.is_local(cfg.model_dir) else cfg.model_dir
    metrics = {
        "model_dir": model_dir,
        "input": cfg.input,
        "output": plan.output,
        "label_col": plan.label_col,
        "unknown_labels": cfg.unknown_labels,
        "rows_scored": rows_scored,
        "classes": plan.classes,
        "probability_columns": [{"class": c, "column": n} for c, n in zip(plan.classes, plan.prob_names)],
        **accumulator.result(plan.classes),
    }
    storage.write_bytes(plan.metrics_path, (json.dumps(metrics, indent=2) + "\n").encode("utf-8"), spark)
    return metrics, rows_scored


def write_plots(spark, plan: _Plan, metrics: dict | None) -> list[str]:
    """Publish the plots directory atomically (the PNGs are drawn into a local temporary
    directory); returns the PNG names, [] when no plots are wanted."""
    if plan.plots_path is None:
        return []
    names: list = []
    # overwrite: an existing directory was refused in ``read`` unless --overwrite or our leftover
    with storage.atomic_directory(plan.plots_path, overwrite=True, what="plots directory", spark=spark) as local:
        names.extend(_write_plots(local, plan.model, metrics, plan.classes))
    return names


def run(spark, cfg: EvaluateConfig) -> EvaluationResult:
    """Score ``cfg.input`` with the model in ``cfg.model_dir`` and evaluate it: read → score →
    write → metrics → plots → publish (module docstring)."""
    plan = read(spark, cfg)
    schema = _scored_schema(plan.frame.schema, plan.passthrough, cfg, plan.prob_names, plan.classes)
    # in the closure up to ``tasks.SHIP_INLINE_BYTES`` (always on Spark Connect), else a broadcast
    weights = backend_for(spark).ship((plan.model.coef, plan.model.intercept))
    # the staged output's own name is visible, so Spark's reader does not skip it (module docstring)
    stage_root = storage.hidden_sibling(plan.output, "tmp")
    staged = storage.join(stage_root, storage.basename(plan.output))
    try:
        write(score(spark, cfg, plan, weights), staged, cfg.partition_by)
        metrics, rows_scored = compute_metrics(spark, cfg, plan, staged, schema)
        plot_files = write_plots(spark, plan, metrics)
        publish(staged, plan.output, storage.filesystem(plan.output, spark))
    finally:
        try:
            storage.delete(stage_root, spark)
        except Exception:  # noqa: BLE001 - best effort: a leftover hidden directory is harmless
            pass
        weights.destroy()

    return EvaluationResult(
        output=plan.output,
        rows_scored=int(rows_scored),
        probability_columns=dict(zip(plan.prob_names, plan.classes)),
        metrics=metrics,
        metrics_path=plan.metrics_path,
        plot_paths=[f"{plan.plots_path}/{name}" for name in plot_files],
        note=plan.note,
    )
