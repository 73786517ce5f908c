"""softmax_spark.core.model_record: a model's training columns under its own names, and the old
layout (training ``options`` only) still read. No SparkSession needed."""

import json
from pathlib import Path

import numpy as np

from softmax_spark.core.features import FeatureSpec
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.core.model_record import columns_record, model_columns, model_feature_spec

LEGACY = Path(__file__).resolve().parent / "data" / "legacy-5c32a57"


def test_the_section_names_its_own_keys():
    rec = columns_record(FeatureSpec(features_col=None, feature_cols=("x0", "x1")), "y", None)
    assert rec == {"features": None, "feature_cols": ["x0", "x1"], "label": "y", "weight": None}
    assert model_feature_spec({"columns": rec}).columns == ["x0", "x1"]
    rec = columns_record(FeatureSpec("vec"), "label", "w")
    assert model_columns({"columns": rec, "options": {"features_col": "old"}})["features"] == "vec"  # section wins


def test_an_old_model_is_read_from_its_options():
    from softmax_spark.io.model_io import load_model

    model = load_model(str(LEGACY / "model"))
    assert "columns" not in model.metadata
    assert model_columns(model.metadata) == {"features": "features", "feature_cols": None, "label": "label",
                                             "weight": None}
    assert model_feature_spec(model.metadata).columns == ["features"]
    # a bare options mapping (EvaluateConfig.inherit_from_model's old argument) reads the same
    assert model_columns({"feature_cols": ["a"], "label_col": "y"})["feature_cols"] == ["a"]
    assert model_feature_spec({}) is None


def test_the_section_is_written_top_level_and_round_trips(tmp_path):
    from softmax_spark.io.model_io import load_model, save_model

    columns = columns_record(FeatureSpec("vec"), "y", "w")
    model = SoftmaxModel(np.zeros((2, 3)), np.zeros(2), ["a", "b"],
                         metadata={"columns": columns, "options": {"features_col": "vec"}, "solver": "newton"})
    save_model(model, str(tmp_path / "m"))
    written = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert written["columns"] == columns and "columns" not in written["extra"]
    assert load_model(str(tmp_path / "m")).metadata["columns"] == columns


def test_evaluate_config_inherits_from_the_section():
    from softmax_spark.fit.config import EvaluateConfig

    cfg = EvaluateConfig(model_dir="m", input="i", output="o")
    taken = cfg.inherit_from_model({"columns": columns_record(FeatureSpec("vec"), "y", None),
                                    "options": {"features_col": "renamed_flag_value", "label_col": "z"}})
    assert (cfg.features_col, cfg.label_col) == ("vec", "y") and taken == ["features_col vec", "label_col y"]


def _job(name):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "jobs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"softmax_spark_{name}_job_record", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_evaluate_reads_the_feature_columns_from_the_section_not_the_options(spark, tmp_path):
    """Train on feature columns; garble the recorded *options* (the job's flag names): evaluate
    still finds the columns, from ``"columns"``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), data)
    model_dir = tmp_path / "model"
    assert _job("train")(["--input", str(data), "--model-dir", str(model_dir), "--feature-cols", "a,b,c",
                          "--label-col", "y", "--no-write-mllib", "--max-iter", "5"], spark=spark) == 0
    meta_path = model_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert meta["columns"] == {"features": None, "feature_cols": ["a", "b", "c"], "label": "y", "weight": None}
    meta["options"].update(features_col="gone", feature_cols=["gone"], label_col="gone")
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "scored"
    assert _job("evaluate")(["--model-dir", str(model_dir), "--input", str(data), "--output", str(out),
                             "--no-plots"], spark=spark) == 0
    metrics = json.loads((tmp_path / "scored.metrics.json").read_text())
    # scored with labels: the label column came from the section too
    assert metrics["label_col"] == "y" and metrics["rows_scored"] == 60 and metrics.get("note") is None
