"""Scoring and evaluation (softmax_spark.evaluate.evaluation, jobs/evaluate.py) in local-mode Spark.

Models are built by hand; expected values come from numpy (SoftmaxModel.predict_proba) and
scikit-learn's metric functions on the same rows.
"""

import json
import os
import subprocess
import tempfile
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_approx_df_equality
from pyspark.ml.functions import array_to_vector
from pyspark.sql import types as T
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from softmax_spark.io.model_io import save_model
from softmax_spark import InputError, SoftmaxModel, load_model
from softmax_spark.fit.config import EvaluateConfig, config_from_dict, parse_config
from softmax_spark.evaluate.evaluation import (
    CLASS_METADATA_KEY,
    CLASSES_METADATA_KEY,
    _ScoringKernel,
    label_positions,
    probability_column_names,
    run,
)
from softmax_spark.core.features import FeatureSpec

REPO = Path(__file__).resolve().parents[1]
INT_CLASSES = [0, 3, 7]
N_FEATURES = 4
N_ROWS = 120
HISTORY = [
    {"iteration": i, "objective": 1.5 / (i + 1), "grad_norm": 0.1, "seconds": 0.01, "validation_loss": 1.6 / (i + 1)}
    for i in range(8)
]


def config_from_mapping(settings):
    """Validated settings from a mapping of keys (as in the YAML file) to values."""
    return config_from_dict(EvaluateConfig, settings).validate()


def settings(case, **extra):
    base = {"model-dir": case.model_dir, "input": case.input, "output": str(case.root / "out")}
    base.update(extra)
    return config_from_mapping(base)


def hidden_leftovers(directory):
    return [name for name in os.listdir(directory) if name.startswith(".") and not name.endswith(".crc")]


@pytest.fixture(scope="module")
def int_case(spark, tmp_path_factory):
    """Integer classes [0, 3, 7]; inputs: clean, with 2 unknown labels, without labels (the
    last one with ml Vector features, the others with array<double>)."""
    root = tmp_path_factory.mktemp("evaluate_int")
    rng = np.random.default_rng(2024)
    model = SoftmaxModel(rng.normal(scale=1.5, size=(3, N_FEATURES)), rng.normal(size=3), INT_CLASSES, history=HISTORY)
    save_model(model, str(root / "model"))
    X = rng.normal(size=(N_ROWS, N_FEATURES))  # (N_ROWS, N_FEATURES)
    labels = rng.choice(INT_CLASSES, N_ROWS)  # (N_ROWS,)
    unknown_rows = [5, 17]
    labels_unknown = labels.copy()
    labels_unknown[unknown_rows] = 9
    table = pa.table({
        "id": pa.array(np.arange(N_ROWS)),
        "features": pa.array(list(X), type=pa.list_(pa.float64())),
        "label": pa.array(labels),
        "note": pa.array([f"n{i}" for i in range(N_ROWS)]),
    })
    write_parquet_files(table, root / "input", n_files=3)
    write_parquet_files(table.set_column(2, "label", pa.array(labels_unknown)), root / "input_unknown", n_files=2)
    unlabelled = spark.read.parquet(str(root / "input")).drop("label")
    unlabelled = unlabelled.withColumn("features", array_to_vector("features"))  # dense ml Vectors
    unlabelled.coalesce(1).write.parquet(str(root / "input_unlabelled"))
    return SimpleNamespace(
        root=root, model=model, model_dir=str(root / "model"), input=str(root / "input"),
        X=X, labels=labels, unknown_rows=unknown_rows,
    )


def write_parquet_files(table, directory, n_files):
    """``table`` split into ``n_files`` Parquet files (Spark reads one partition per small file)."""
    directory.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(table.num_rows), n_files)):
        pq.write_table(table.take(pa.array(chunk)), str(directory / f"part-{i}.parquet"))


def sklearn_metrics(labels, proba, classes):
    """The metrics of softmax_spark.core.metrics, computed by scikit-learn on numpy predictions."""
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        top_k = {str(k): top_k_accuracy_score(labels, proba, k=k, labels=classes) for k in range(1, len(classes) + 1)}
    return {
        "log_loss": log_loss(labels, proba, labels=classes),
        "accuracy": accuracy_score(labels, predicted),
        "top_k_accuracy": top_k,
        "precision": precision, "recall": recall, "f1": f1, "support": support.tolist(),
        "macro_f1": f1_score(labels, predicted, average="macro", zero_division=0),
        "weighted_f1": f1_score(labels, predicted, average="weighted", zero_division=0),
        "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "brier": float(np.mean(((proba - (np.asarray(labels)[:, None] == np.asarray(classes))) ** 2).sum(axis=1))),
    }


def assert_metrics_match(metrics, expected):
    assert metrics["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-10)
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-15)
    for k, value in metrics["top_k_accuracy"].items():
        assert value == pytest.approx(expected["top_k_accuracy"][k], abs=1e-15)
    np.testing.assert_allclose([c["precision"] for c in metrics["per_class"]], expected["precision"], rtol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in metrics["per_class"]], expected["recall"], rtol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in metrics["per_class"]], expected["f1"], rtol=1e-12)
    assert [c["support"] for c in metrics["per_class"]] == expected["support"]
    assert metrics["macro_f1"] == pytest.approx(expected["macro_f1"], rel=1e-12)
    assert metrics["weighted_f1"] == pytest.approx(expected["weighted_f1"], rel=1e-12)
    assert metrics["confusion_matrix"]["counts"] == expected["confusion"]
    assert metrics["brier_score"] == pytest.approx(expected["brier"], rel=1e-10)


def test_int_labels_scores_metrics_and_plots(spark, int_case):
    result = run(spark, settings(int_case, **{"top-k": "1,2,3"}))
    out = int_case.root / "out"
    assert result.output == out.as_uri().replace("file:///", "file:/")
    scored = spark.read.parquet(str(out))

    prob_meta = [{CLASS_METADATA_KEY: c} for c in INT_CLASSES]
    expected_schema = T.StructType(
        [
            T.StructField("id", T.LongType()),
            T.StructField("label", T.LongType()),
            T.StructField("note", T.StringType()),
            *[T.StructField(f"prob_{c}", T.DoubleType(), True, m) for c, m in zip(INT_CLASSES, prob_meta)],
            T.StructField("prediction", T.LongType()),
        ]
    )
    proba = int_case.model.predict_proba(int_case.X)  # (N_ROWS, 3)
    predicted = int_case.model.predict(int_case.X)
    expected_rows = [
        (i, int(int_case.labels[i]), f"n{i}", *proba[i].tolist(), int(predicted[i])) for i in range(N_ROWS)
    ]
    expected = spark.createDataFrame(expected_rows, expected_schema)
    assert scored.columns == ["id", "label", "note", "probability", "prob_0", "prob_3", "prob_7", "prediction"]
    assert scored.schema["probability"].dataType == T.ArrayType(T.DoubleType())
    assert scored.schema["probability"].metadata == {CLASSES_METADATA_KEY: INT_CLASSES}
    assert_approx_df_equality(
        scored.drop("probability").orderBy("id"), expected.orderBy("id"), precision=1e-12
    )
    arrays = np.array([row.probability for row in scored.orderBy("id").select("probability").collect()])
    np.testing.assert_allclose(arrays, proba, rtol=1e-12, atol=1e-15)

    metrics_path = Path(str(out) + ".metrics.json")
    with open(metrics_path) as f:
        metrics = json.load(f)
    assert metrics == result.metrics
    assert metrics["rows_scored"] == N_ROWS and metrics["unknown_label_rows"] == 0
    assert metrics["classes"] == INT_CLASSES
    assert [p["column"] for p in metrics["probability_columns"]] == ["prob_0", "prob_3", "prob_7"]
    assert list(metrics["top_k_accuracy"]) == ["1", "2", "3"]
    assert_metrics_match(metrics, sklearn_metrics(int_case.labels, proba, INT_CLASSES))

    plots = Path(str(out) + ".plots")
    assert sorted(os.listdir(plots)) == ["confusion_matrix.png", "reliability.png", "training_curve.png"]
    assert all((plots / name).stat().st_size > 2000 for name in os.listdir(plots))
    assert "confusion matrix" in result.report() and "log-loss" in result.report()
    assert hidden_leftovers(int_case.root) == []


def test_existing_output_refused_before_any_work_then_overwritten(spark, int_case, tmp_path):
    out = tmp_path / "scored"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    context = spark.sparkContext
    context.setJobGroup("refuse-existing-output", "no job may run")
    try:
        with pytest.raises(InputError, match="already exists; pass --overwrite"):
            run(spark, settings(int_case, output=str(out)))
        assert list(context.statusTracker().getJobIdsForGroup("refuse-existing-output")) == []
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert (out / "keep.txt").read_text() == "previous run"
    unrelated = tmp_path / "metrics.json"
    unrelated.write_text('{"output": "file:/somewhere/else"}')
    with pytest.raises(InputError, match="metrics file .*metrics.json already exists; pass --overwrite"):
        run(spark, settings(int_case, output=str(tmp_path / "new"), **{"metrics-out": str(unrelated)}))
    unrelated.unlink()

    unlabelled = str(int_case.root / "input_unlabelled")
    result = run(spark, settings(int_case, input=unlabelled, output=str(out), overwrite=True))
    assert not (out / "keep.txt").exists()
    assert result.metrics is None and result.rows_scored == N_ROWS
    assert not Path(str(out) + ".metrics.json").exists()
    assert [Path(p).name for p in result.plot_paths] == ["training_curve.png"]  # no labels: no metric plots
    assert spark.read.parquet(str(out)).columns == [
        "id", "note", "probability", "prob_0", "prob_3", "prob_7", "prediction"
    ]
    assert hidden_leftovers(tmp_path) == []


def test_unknown_labels_error_names_value_and_row(spark, int_case, tmp_path):
    cfg = settings(int_case, input=str(int_case.root / "input_unknown"), output=str(tmp_path / "out"))
    message = r"column 'label': label 9 at partition \d+ row \d+ is not one of the model's classes \[0, 3, 7\]"
    with pytest.raises(InputError, match=message):
        run(spark, cfg)
    assert os.listdir(tmp_path) == []  # no output, no metrics, no plots, no hidden temporary


def test_unknown_labels_ignored_are_scored_and_counted_apart(spark, int_case, tmp_path):
    out = tmp_path / "out"
    # left by an interrupted run for the same output (published before the output): replaced
    (tmp_path / "m.json").write_text(json.dumps({"output": out.as_uri().replace("file:///", "file:/")}))
    cfg = settings(int_case, input=str(int_case.root / "input_unknown"), output=str(out),
                   **{"unknown-labels": "ignore", "no-plots": True, "metrics-out": str(tmp_path / "m.json")})
    result = run(spark, cfg)
    assert spark.read.parquet(str(out)).count() == N_ROWS
    assert result.metrics["unknown_label_rows"] == 2 and result.metrics["labelled_rows"] == N_ROWS - 2
    known = np.setdiff1d(np.arange(N_ROWS), int_case.unknown_rows)
    proba = int_case.model.predict_proba(int_case.X[known])
    assert_metrics_match(result.metrics, sklearn_metrics(int_case.labels[known], proba, INT_CLASSES))
    assert json.loads((tmp_path / "m.json").read_text())["unknown_label_rows"] == 2
    assert sorted(os.listdir(tmp_path)) == ["m.json", "out"]


def test_feature_count_mismatch_is_an_input_error(spark, int_case, tmp_path):
    wide = SoftmaxModel(np.ones((3, 5)), None, INT_CLASSES)
    save_model(wide, str(tmp_path / "wide_model"))
    cfg = settings(int_case, **{"model-dir": str(tmp_path / "wide_model"), "output": str(tmp_path / "out")})
    with pytest.raises(InputError, match=r"column 'features': 4 features at partition \d+ row \d+, expected 5"):
        run(spark, cfg)
    cfg = settings(int_case, **{"feature-cols": "id,id2", "output": str(tmp_path / "out")})
    with pytest.raises(InputError, match="'id2' is not a column"):
        run(spark, cfg)
    assert sorted(os.listdir(tmp_path)) == ["wide_model"]


def test_string_labels_feature_columns_names_and_partitioning(spark, tmp_path):
    classes = ["a-b", "a_b", "c d"]
    rng = np.random.default_rng(5)
    model = SoftmaxModel(rng.normal(scale=2.0, size=(3, 2)), rng.normal(size=3), classes)
    save_model(model, str(tmp_path / "model"))
    X = rng.normal(size=(40, 2))
    labels = rng.choice(classes, 40)
    table = pa.table({
        "key": [f"r{i}" for i in range(40)], "x1": X[:, 0], "x2": X[:, 1], "y": labels.tolist(),
        "prob_a_b": pa.array(np.arange(40) % 2, type=pa.int32()),
    })
    write_parquet_files(table, tmp_path / "input", n_files=2)
    out = tmp_path / "out"
    result = run(spark, config_from_mapping({
        "model_dir": str(tmp_path / "model"), "input": str(tmp_path / "input"), "output": str(out),
        "feature_cols": ["x1", "x2"], "label_col": "y", "partition_by": "prediction", "no_plots": True,
    }))
    names = ["prob_a_b_2", "prob_a_b_3", "prob_c_d"]  # prob_a_b is an input column
    assert result.probability_columns == dict(zip(names, classes))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        f"prediction={v}" for v in set(model.predict(X))
    )
    scored = spark.read.parquet(str(out)).orderBy("key")
    assert scored.columns[:4] == ["key", "y", "prob_a_b", "probability"]
    assert scored.schema["prediction"].dataType == T.StringType()
    collected = scored.collect()
    order = np.argsort([f"r{i}" for i in range(40)])
    proba = model.predict_proba(X)[order]
    np.testing.assert_allclose([[row[n] for n in names] for row in collected], proba, rtol=1e-12)
    assert [row.prediction for row in collected] == model.predict(X)[order].tolist()
    assert_metrics_match(result.metrics, sklearn_metrics(labels[order], proba, classes))


def test_column_name_rule():
    assert probability_column_names([3, -1, 0.5, "a-b", "a_b", "é", ""]) == [
        "prob_3", "prob__1", "prob_0_5", "prob_a_b", "prob_a_b_2", "prob__", "prob_"
    ]
    assert probability_column_names(["x", "X"], taken=["PROB_X", "prob_x_2"]) == ["prob_x_3", "prob_X_4"]


def test_kernel_float_classes_predict_doubles_and_match_int_labels():
    """The Arrow kernel without Spark: float classes → float64 prediction; int label 1 == class 1.0."""
    classes = [0.5, 1.0, 2.0]
    coef, intercept = np.arange(6.0).reshape(3, 2) / 4, np.zeros(3)
    batch = pa.RecordBatch.from_pydict({"a": [0.0, 1.0, -2.0], "b": [1.0, 0.5, 3.0], "label": [1, 2, 1]})
    names = ["label", "probability", "prob_0_5", "prob_1_0", "prob_2_0", "prediction"]
    kernel = _ScoringKernel(
        spec=FeatureSpec(features_col=None, feature_cols=("a", "b")), n_features=2, classes=classes,
        passthrough=["label"], output_names=names, label_col="label", coef=coef, intercept=intercept,
    )
    (scored,) = list(kernel(iter([batch])))
    model = SoftmaxModel(coef, intercept, classes)
    X = np.array([[0.0, 1.0], [1.0, 0.5], [-2.0, 3.0]])
    assert scored.schema.field("prediction").type == pa.float64()
    assert scored.column("prediction").to_pylist() == model.predict(X).tolist()
    np.testing.assert_allclose(np.array(scored.column("probability").to_pylist()), model.predict_proba(X))
    assert label_positions(pa.array([1, 2, 3, None]), classes).tolist() == [1, 2, -1, -1]
    assert label_positions(pa.array(["1"]), classes).tolist() == [-1]


def test_config_merge_and_validation(tmp_path):
    # a flag choosing feature-cols drops the file's features-col (they exclude each other)
    config = tmp_path / "evaluate.yaml"
    config.write_text("features-col: f\ntop_k: [1, 2]\n")
    cfg = parse_config(EvaluateConfig, ["--config", str(config), "--feature-cols", "a,b",
                                        "--model-dir", "m", "--input", "i", "--output", "o"])
    assert cfg.features_col is None
    assert cfg.feature_cols == ("a", "b") and cfg.top_k == (1, 2) and not cfg.label_col_required
    assert config_from_mapping({"model-dir": "m", "input": "i", "output": "o", "top-k": "3"}).top_k == (1, 2, 3)
    assert config_from_mapping({"model-dir": "m", "input": "i", "output": "o", "top-k": 2}).top_k == (1, 2)
    assert config_from_mapping({"model-dir": "m", "input": "i", "output": "o", "top-k": "1, 4"}).top_k == (1, 4)
    # the example config is valid
    flags = ["--model-dir", "m", "--input", "i", "--output", "o", "--overwrite"]
    cfg = parse_config(EvaluateConfig, ["--config", str(REPO / "conf" / "evaluate.yaml"), *flags])
    assert cfg.overwrite and cfg.unknown_labels == "error" and cfg.feature_spec.columns == ["features"]
    with pytest.raises(InputError, match="unknown key 'colour'"):
        config_from_mapping({"model-dir": "m", "input": "i", "output": "o", "colour": "red"})
    with pytest.raises(InputError, match="--output"):
        config_from_mapping({"model-dir": "m", "input": "i"})
    with pytest.raises(InputError, match="unknown-labels"):
        config_from_mapping({"model-dir": "m", "input": "i", "output": "o", "unknown-labels": "skip"})


def _evaluate_main():
    sys.path.insert(0, str(REPO / "jobs"))
    try:
        import evaluate
    finally:
        sys.path.remove(str(REPO / "jobs"))
    return evaluate.main


def test_job_exits_2_on_bad_model_dir(tmp_path, capsys):
    main = _evaluate_main()
    (tmp_path / "not_a_model").mkdir()
    argv = ["--model-dir", str(tmp_path / "not_a_model"), "--input", "x", "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("error: model directory") and "metadata.json is missing" in last_line

    config = tmp_path / "evaluate.yaml"
    config.write_text(f"model-dir: {tmp_path / 'missing'}\ninput: x\noutput: o\nthreshold: 0.5\n")
    assert main(["--config", str(config)]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"error: config file {config}: unknown key 'threshold'")
    assert main(["--model-dir", "m", "--colour", "red"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: unrecognized arguments: --colour")


@pytest.mark.slow
def test_train_then_evaluate_with_spark_submit(tmp_path):
    """End to end through spark-submit: jobs/train.py (when present), then jobs/evaluate.py."""
    train_job = REPO / "jobs" / "train.py"
    if not train_job.exists():
        pytest.skip("jobs/train.py is not written yet")
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    rng = np.random.default_rng(11)
    import pandas as pd

    X = rng.normal(size=(300, 3))
    y = (X @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0], [1.0, 1.0, 1.0]])).argmax(axis=1)
    pd.DataFrame({"id": np.arange(300), "features": list(X), "label": y}).to_parquet(tmp_path / "data.parquet")
    # where PySpark puts its Unix socket files (none may stay); short: AF_UNIX paths hold ≤ 107 bytes
    sockets = Path(tempfile.mkdtemp(prefix="sock-"))
    common = ["--master", "local[2]", "--conf", "spark.ui.enabled=false",
              "--conf", f"spark.python.unix.domain.socket.dir={sockets}"]
    train = subprocess.run(
        [str(spark_submit), *common, str(train_job), "--input", str(tmp_path / "data.parquet"),
         "--model-dir", str(tmp_path / "model")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    evaluate = subprocess.run(
        [str(spark_submit), *common, str(REPO / "jobs" / "evaluate.py"), "--model-dir", str(tmp_path / "model"),
         "--input", str(tmp_path / "data.parquet"), "--output", str(tmp_path / "scored")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert evaluate.returncode == 0, evaluate.stdout[-2000:] + evaluate.stderr[-2000:]
    # a finished job leaves the context's stop to spark-submit's JVM (jobs_common), but not a socket file
    assert sorted(p.name for p in sockets.iterdir()) == []
    sockets.rmdir()
    assert "All paths were ignored" not in evaluate.stderr  # the staged output is read under a visible name
    metrics = json.loads((tmp_path / "scored.metrics.json").read_text())
    model = load_model(str(tmp_path / "model"))
    assert metrics["rows_scored"] == 300 and metrics["classes"] == [0, 1, 2]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, model.predict(X)), abs=1e-12)
    assert metrics["accuracy"] > 0.8
    assert (tmp_path / "scored.plots" / "training_curve.png").stat().st_size > 2000
    assert "log-loss" in evaluate.stdout
