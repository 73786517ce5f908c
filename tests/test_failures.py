"""Failure modes of training (issue 6): bad input and configuration through ``jobs/train.py``,
task retries, divergence, never unpickling, extreme values.

Bad input: exit code 2, a last stderr line ``error: <msg>`` naming the column, the row or
partition and what was expected, and no model directory (nor its hidden temporary sibling).
These run ``jobs/train.py``'s ``main(argv, spark=spark)`` in-process on the session fixture.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import make_data, to_df, write_parquet

REPO = Path(__file__).resolve().parents[1]
TRAIN_JOB = REPO / "jobs" / "train.py"
EVALUATE_JOB = REPO / "jobs" / "evaluate.py"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"

needs_evaluate = pytest.mark.skipif(not os.path.exists(EVALUATE_JOB), reason="jobs/evaluate.py is not written yet")

D, C = 3, 3


def _load_job(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_main():
    return _load_job(TRAIN_JOB, "softmax_spark_train_job").main


@pytest.fixture(scope="module")
def data():
    return make_data(n=60, d=D, c=C, seed=5)


@pytest.fixture(scope="module")
def good(tmp_path_factory, data):
    """A valid training file (one partition when read)."""
    X, y = data
    return str(write_parquet(tmp_path_factory.mktemp("good") / "good.parquet", X, y))


def _write(path, features, labels, feature_type=None) -> str:
    feature_type = feature_type or pa.list_(pa.float64())
    table = pa.table({
        "features": pa.array(features, type=feature_type),
        "label": pa.array(labels, type=pa.int64()),
    })
    pq.write_table(table, path)
    return str(path)


def _rows(data):
    X, y = data
    return [list(map(float, row)) for row in X], [int(v) for v in y]


def _run(main, spark, capsys, tmp_path, *args, model=True):
    """Run the train job in-process; returns (exit code, last stderr line, output dir)."""
    out = tmp_path / "out"
    argv = list(args)
    if model:
        argv += ["--model-dir", str(out / "model")]
    argv += ["--no-write-mllib"]
    code = main(argv, spark=spark)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, (lines[-1] if lines else ""), out


def _assert_no_model(out: Path):
    """Neither the model directory nor a hidden temporary sibling of it exists."""
    left = sorted(os.listdir(out)) if out.exists() else []
    assert left == [], f"left behind: {left}"


def _assert_bad_input(result, *fragments):
    code, last, out = result
    assert code == 2, last
    assert last.startswith("error: "), last
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in {last!r}"
    _assert_no_model(out)
    return last


# -- bad data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_feature(train_main, spark, capsys, tmp_path, data, bad):
    features, labels = _rows(data)
    features[7][1] = bad
    path = _write(tmp_path / "bad.parquet", features, labels)
    last = _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                             "column 'features[1]'", "partition 0 row 7", "expected finite")
    assert str(bad) in last


def test_null_feature_array(train_main, spark, capsys, tmp_path, data):
    features, labels = _rows(data)
    features[11] = None
    path = _write(tmp_path / "bad.parquet", features, labels)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "column 'features'", "null feature array", "partition 0 row 11", "expected")


def test_null_element_in_feature_array(train_main, spark, capsys, tmp_path, data):
    features, labels = _rows(data)
    features[5][2] = None
    path = _write(tmp_path / "bad.parquet", features, labels)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "column 'features'", "null", "partition 0 row 5", "expected")


def test_null_numeric_feature_column(train_main, spark, capsys, tmp_path, data):
    X, y = data
    x1 = [float(v) for v in X[:, 1]]
    x1[9] = None
    path = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"x0": X[:, 0], "x1": pa.array(x1, pa.float64()), "label": y}), path)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", str(path), "--feature-cols", "x0,x1"),
                      "column 'x1'", "null", "partition 0 row 9", "expected")


def test_null_label(train_main, spark, capsys, tmp_path, data):
    features, labels = _rows(data)
    labels[13] = None
    path = _write(tmp_path / "bad.parquet", features, labels)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "column 'label'", "null label", "partition 0 row 13", "expected")


def test_feature_arrays_of_different_lengths(train_main, spark, capsys, tmp_path, data):
    features, labels = _rows(data)
    features[17] = features[17][:2]
    path = _write(tmp_path / "bad.parquet", features, labels)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "column 'features'", "length 2", "partition 0 row 17", f"expected {D}")


def test_feature_lengths_differ_between_files(train_main, spark, capsys, tmp_path, data):
    """Two files (two partitions) whose arrays have different lengths: the message names the
    column, where the first mismatch is and the expected length."""
    features, labels = _rows(data)
    folder = tmp_path / "two"
    folder.mkdir()
    _write(folder / "a.parquet", features[:30], labels[:30])
    _write(folder / "b.parquet", [f + [0.5] for f in features[30:]], labels[30:])
    last = _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", str(folder)),
                             "column 'features'", "partition", "expected")
    assert str(D) in last and str(D + 1) in last


def test_missing_column_is_named_with_the_existing_ones(train_main, spark, capsys, tmp_path, good):
    last = _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--label-col", "target"),
                             "column 'target' not found")
    for existing in ("id", "features", "label"):
        assert existing in last
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--feature-cols", "x0,x9"),
                      "column 'x0' not found", "features")


def test_input_path_does_not_exist(train_main, spark, capsys, tmp_path):
    missing = str(tmp_path / "nowhere.parquet")
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", missing), missing, "does not exist")


def test_empty_input(train_main, spark, capsys, tmp_path):
    """A Parquet file with the right schema and no rows."""
    path = _write(tmp_path / "empty.parquet", [], [])
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "0 labelled rows", "'label'", "expected")


def test_single_class(train_main, spark, capsys, tmp_path, data):
    features, labels = _rows(data)
    path = _write(tmp_path / "one.parquet", features, [2] * len(labels))
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", path),
                      "column 'label'", "single class [2]", "expected at least 2")


def test_existing_model_dir_is_kept(train_main, spark, capsys, tmp_path, good):
    """An existing model directory is refused (before any Spark work) and left untouched."""
    model = tmp_path / "out" / "model"
    model.mkdir(parents=True)
    (model / "keep.txt").write_text("mine")
    code, last, _ = _run(train_main, spark, capsys, tmp_path, "--input", good)
    assert code == 2 and "already exists" in last and "--overwrite" in last
    assert os.listdir(model) == ["keep.txt"] and sorted(os.listdir(model.parent)) == ["model"]


# -- bad configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("flag, expected", [
    ("--l2=-0.1", "--l2 must be ≥ 0, got -0.1"),
    ("--batch-fraction=0", "--batch-fraction must be in (0, 1], got 0.0"),
    ("--batch-fraction=1.5", "--batch-fraction must be in (0, 1], got 1.5"),
    ("--learning-rate=0", "--learning-rate must be > 0, got 0.0"),
    ("--learning-rate=-1", "--learning-rate must be > 0, got -1.0"),
    ("--max-iter=0", "--max-iter must be ≥ 1, got 0"),
    ("--colour=red", "unrecognized arguments: --colour=red"),
    ("--optimizer=adam", "--optimizer"),
    ("--max-iter=ten", "--max-iter"),
])
def test_bad_flag(train_main, spark, capsys, tmp_path, good, flag, expected):
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, flag), expected)


@pytest.mark.parametrize("text, expected", [
    ("l2: -1\n", "--l2 must be ≥ 0, got -1.0"),
    ("batch_fraction: 0\n", "--batch-fraction must be in (0, 1]"),
    ("learning-rate: 0\n", "--learning-rate must be > 0"),
    ("max_iter: 0\n", "--max-iter must be ≥ 1"),
    ("max_iter: 10\ncolour: red\n", "unknown key 'colour'; known keys: "),
    ("max_iter: many\n", "config key 'max_iter': expected int, got 'many'"),
    ("max_iter: [1, 2\n", "is not valid YAML (line "),
    ("- a\n- b\n", "must hold a mapping"),
])
def test_bad_config_file(train_main, spark, capsys, tmp_path, good, text, expected):
    config = tmp_path / "train.yaml"
    config.write_text(text)
    last = _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--config", str(config)),
                             expected)
    assert str(config) in last or expected.startswith("--")


def test_config_file_does_not_exist(train_main, spark, capsys, tmp_path, good):
    missing = str(tmp_path / "missing.yaml")
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--config", missing),
                      missing, "does not exist")


def test_required_flags(train_main, spark, capsys, tmp_path, good):
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, model=False),
                      "--model-dir is required")
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path), "--input is required")


# -- bad --init-model ----------------------------------------------------------------------------
def test_init_model_that_is_not_a_model(train_main, spark, capsys, tmp_path, good):
    not_model = tmp_path / "not_a_model"
    not_model.mkdir()
    (not_model / "notes.txt").write_text("hello")
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--init-model", str(not_model)),
                      str(not_model), "metadata.json is missing")
    missing = tmp_path / "no_such_model"
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--init-model", str(missing)),
                      str(missing), "does not exist")


def test_init_model_of_unknown_format_version(train_main, spark, capsys, tmp_path, good):
    from softmax_spark import SoftmaxModel, save_model

    path = tmp_path / "future_model"
    save_model(SoftmaxModel(np.zeros((C, D)), np.zeros(C), [0, 1, 2]), str(path))
    meta = json.loads((path / "metadata.json").read_text())
    meta["format_version"] = 99
    (path / "metadata.json").write_text(json.dumps(meta))
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--init-model", str(path)),
                      str(path), "format_version 99", "reads 1")


def test_init_model_of_another_shape(train_main, spark, capsys, tmp_path, good):
    from softmax_spark import SoftmaxModel, save_model

    path = tmp_path / "wide_model"
    save_model(SoftmaxModel(np.zeros((C, D + 2)), np.zeros(C), [0, 1, 2]), str(path))
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--init-model", str(path)),
                      f"{D + 2} features", f"the data has {D}")


# -- never unpickle ------------------------------------------------------------------------------
class _Trap:
    """Unpickling this creates the file ``path`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _object_array(sentinel):
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = _Trap(sentinel), 1.0
    return arr


def _pickled_arrays(path, sentinel):
    np.savez(path / "arrays.npz", theta=_object_array(sentinel))  # np.savez pickles the trap


def _truncated_arrays(path, sentinel):
    data = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(data[: len(data) // 2])


def _list_state(path, sentinel):
    (path / "state.json").write_text("[1, 2]")


@pytest.mark.parametrize("damage", [_pickled_arrays, _truncated_arrays, _list_state],
                         ids=["object-array", "truncated-npz", "state-not-a-map"])
def test_damaged_newest_checkpoint_is_skipped_not_executed(tmp_path, damage):
    """The newest checkpoint holds an object array (would need unpickling), a truncated .npz or
    a state.json that is not a map: it is skipped and the one before it is used."""
    from softmax_spark.io.checkpoint import latest_checkpoint, save_checkpoint

    sentinel = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt"
    save_checkpoint(str(ckpt), 3, {"theta": np.arange(4.0)}, {"step": 3}, [{"iteration": 3}], "fp")
    damage(Path(save_checkpoint(str(ckpt), 5, {"theta": np.arange(4.0)}, {"step": 5}, [], "fp")), sentinel)
    restored = latest_checkpoint(str(ckpt), "fp")
    assert restored is not None and restored.iteration == 3
    np.testing.assert_array_equal(restored.arrays["theta"], np.arange(4.0))
    assert not sentinel.exists()


@pytest.mark.parametrize("newest,reason", [({"theta": np.arange(5.0)}, "shape"),
                                           ({"theta": np.array([0.0, np.nan, 1.0, 2.0])}, "NaN"),
                                           ({"theta": np.arange(4.0), "grad": np.full(4, np.nan)}, "NaN"),
                                           ({"theta": np.array([0.0, np.inf, 1.0, 2.0])}, "infinite")])
def test_a_checkpoint_of_the_wrong_shape_or_with_nan_is_skipped(tmp_path, capsys, newest, reason):
    """Issue 24 item 7: such a checkpoint was resumed; the README says damaged ones are skipped."""
    from softmax_spark.io.checkpoint import latest_checkpoint, save_checkpoint

    ckpt = str(tmp_path / "ckpt")
    save_checkpoint(ckpt, 3, {"theta": np.arange(4.0)}, {"step": 3}, [{"iteration": 3}], "fp")
    save_checkpoint(ckpt, 5, newest, {"step": 5}, [], "fp")
    restored = latest_checkpoint(ckpt, "fp", n_params=4)
    assert restored is not None and restored.iteration == 3
    out = capsys.readouterr().out
    assert "skipping damaged checkpoint" in out and "ckpt-00000005" in out and reason in out


def test_a_compressed_checkpoint_declaring_a_huge_array_is_skipped(tmp_path, capsys):
    """A zip bomb in arrays.npz (np.savez never compresses): skipped before anything is inflated."""
    from softmax_spark.io.checkpoint import latest_checkpoint, save_checkpoint

    ckpt = str(tmp_path / "ckpt")
    save_checkpoint(ckpt, 3, {"theta": np.arange(4.0)}, {"step": 3}, [{"iteration": 3}], "fp")
    newest = Path(save_checkpoint(ckpt, 5, {"theta": np.arange(4.0)}, {"step": 5}, [], "fp"))
    np.savez_compressed(newest / "arrays.npz", theta=np.zeros(12_000_000))  # 96 MB inflated
    assert (newest / "arrays.npz").stat().st_size < 2_000_000
    restored = latest_checkpoint(ckpt, "fp", n_params=4)
    assert restored is not None and restored.iteration == 3
    assert "far more than its size" in capsys.readouterr().out


def test_model_with_object_array_is_refused_not_executed(tmp_path):
    from softmax_spark import ModelFormatError, SoftmaxModel, load_model, save_model

    sentinel = tmp_path / "pwned"
    path = tmp_path / "model"
    save_model(SoftmaxModel(np.zeros((2, 1)), np.zeros(2), [0, 1]), str(path))
    np.save(path / "coef.npy", _object_array(sentinel).reshape(2, 1), allow_pickle=True)
    with pytest.raises(ModelFormatError, match="not a plain numeric"):
        load_model(str(path))
    assert not sentinel.exists()


def test_training_resume_skips_a_pickled_checkpoint(train_main, spark, capsys, tmp_path, good):
    """Through the job: a tampered newest checkpoint (object array) is skipped, the one
    before it is resumed, nothing is unpickled."""
    sentinel = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt"
    common = ["--input", good, "--checkpoint-dir", str(ckpt), "--checkpoint-every", "1", "--tol", "0",
              "--optimizer", "sgd"]
    code, last, _ = _run(train_main, spark, capsys, tmp_path, *common, "--max-iter", "2")
    assert code == 0, last
    shutil.rmtree(tmp_path / "out")
    (newest,) = ckpt.glob("*/ckpt-00000002")  # <checkpoint-dir>/<run fingerprint>/ckpt-N
    np.savez(newest / "arrays.npz", theta=_object_array(sentinel))
    code = train_main([*common, "--max-iter", "3", "--model-dir", str(tmp_path / "out" / "model"),
                       "--no-write-mllib"], spark=spark)
    out = capsys.readouterr().out
    assert code == 0
    assert "skipping unreadable checkpoint" in out and "ckpt-00000002" in out
    assert "resuming from iteration 1" in out
    assert not sentinel.exists()


def test_init_model_with_object_array_exits_2(train_main, spark, capsys, tmp_path, good):
    from softmax_spark import SoftmaxModel, save_model

    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil_model"
    save_model(SoftmaxModel(np.zeros((C, D)), np.zeros(C), [0, 1, 2]), str(path))
    arr = np.empty((C, D), dtype=object)
    arr[...] = 0.0
    arr[0, 0] = _Trap(sentinel)
    np.save(path / "coef.npy", arr, allow_pickle=True)
    _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", good, "--init-model", str(path)),
                      "coef.npy", "not a plain numeric")
    assert not sentinel.exists()


@needs_evaluate
def test_evaluate_refuses_a_pickled_model(tmp_path, capsys, good, spark):
    from softmax_spark import SoftmaxModel, save_model

    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil_model"
    save_model(SoftmaxModel(np.zeros((C, D)), np.zeros(C), [0, 1, 2]), str(path))
    np.save(path / "intercept.npy", _object_array(sentinel)[:1].repeat(C), allow_pickle=True)
    evaluate = _load_job(EVALUATE_JOB, "softmax_spark_evaluate_job")
    code = evaluate.main(["--model-dir", str(path), "--input", good, "--output", str(tmp_path / "scored")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and "intercept.npy" in last
    assert not sentinel.exists() and not (tmp_path / "scored").exists()


# -- divergence ----------------------------------------------------------------------------------
def test_divergence_stops_naming_the_iteration_and_keeps_the_last_good_checkpoint(
        train_main, spark, capsys, tmp_path, data):
    X, y = data
    path = str(write_parquet(tmp_path / "big.parquet", X * 1e3, y))
    ckpt = tmp_path / "ckpt"
    code, last, out = _run(train_main, spark, capsys, tmp_path, "--input", path, "--optimizer", "sgd",
                           "--learning-rate", "1e6", "--no-precondition", "--l2", "0.5", "--tol", "0",
                           "--max-iter", "200", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "1")
    assert code == 1, last
    match = re.search(r"at iteration (\d+)", last)
    assert last.startswith("error: training diverged: ") and match, last
    assert "learning rate" in last and "smaller --learning-rate" in last
    _assert_no_model(out)
    diverged = int(match.group(1))
    assert 1 < diverged < 200
    (ckpt,) = ckpt.iterdir()  # <checkpoint-dir>/<run fingerprint>/ckpt-N
    names = sorted(n for n in os.listdir(ckpt) if n.startswith("ckpt-"))
    assert names[-1] == f"ckpt-{diverged - 1:08d}"
    with np.load(ckpt / names[-1] / "arrays.npz", allow_pickle=False) as arrays:
        assert np.all(np.isfinite(arrays["theta"]))
    state = json.loads((ckpt / names[-1] / "state.json").read_text())
    assert state["iteration"] == diverged - 1


# -- extreme values ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extreme():
    """Features up to 1e6 and a model whose logits reach ±1e4."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1e6, 1e6, size=(80, D))
    X[0] = [1e6, -1e6, 1e6]
    y = rng.integers(0, C, size=80)
    coef = np.array([[1e-2, -1e-2, 1e-2], [-1e-2, 1e-2, -1e-2], [0.0, 0.0, 0.0]]) / 3.0
    intercept = np.array([0.0, 1.0, -1.0])
    return X, y, coef, intercept


def test_extreme_logits_give_finite_loss_and_gradient(spark, extreme):
    from softmax_spark.spark.distributed import DistributedLoss
    from softmax_spark.core.features import FeatureSpec
    from softmax_spark.spark.ingest import ingest
    from core_helpers import objective_and_gradient

    X, y, coef, intercept = extreme
    logits = X @ coef.T + intercept
    assert np.abs(logits).max() >= 1e4 - 1
    ingested = ingest(to_df(spark, X, y), FeatureSpec(), "label", list(range(C)))
    try:
        result = DistributedLoss(ingested.blocks, C, D)(coef, intercept)
    finally:
        ingested.release()
    assert np.isfinite(result.loss) and result.loss > 1e3  # confidently wrong rows cost ~|logit|
    assert np.all(np.isfinite(result.grad_coef)) and np.all(np.isfinite(result.grad_intercept))
    loss, gcoef, gint = objective_and_gradient(coef, intercept, X, y)
    assert result.loss == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(result.grad_coef, gcoef, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(result.grad_intercept, gint, rtol=1e-10, atol=1e-12)


def test_extreme_features_train_to_finite_model(train_main, spark, capsys, tmp_path, extreme):
    from softmax_spark import load_model

    X, y, _, _ = extreme
    path = str(write_parquet(tmp_path / "extreme.parquet", X, y))
    code, last, out = _run(train_main, spark, capsys, tmp_path, "--input", path, "--max-iter", "5")
    assert code == 0, last
    model = load_model(str(out / "model"))
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(model.coef)) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


@needs_evaluate
def test_extreme_logits_give_finite_probabilities_when_scoring(spark, tmp_path, extreme, capsys):
    from softmax_spark import SoftmaxModel, save_model

    X, y, coef, intercept = extreme
    save_model(SoftmaxModel(coef, intercept, list(range(C))), str(tmp_path / "model"))
    path = str(write_parquet(tmp_path / "extreme.parquet", X, y))
    evaluate = _load_job(EVALUATE_JOB, "softmax_spark_evaluate_job")
    code = evaluate.main(["--model-dir", str(tmp_path / "model"), "--input", path,
                          "--output", str(tmp_path / "scored"), "--no-plots"])
    assert code == 0, capsys.readouterr().err[-2000:]
    scored = pq.read_table(tmp_path / "scored").to_pandas().sort_values("id")
    proba = np.array(scored["probability"].tolist())
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba, SoftmaxModel(coef, intercept, list(range(C))).predict_proba(X), atol=1e-12)


# -- task failures and retries (a real spark-submit: local[N, maxFailures] retries tasks) ---------
def _submit_env():
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
                PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)


def submit_command(master, local_dir, *args):
    return [str(SPARK_SUBMIT), "--master", master, "--conf", "spark.ui.enabled=false",
            "--conf", "spark.ui.showConsoleProgress=false", "--conf", f"spark.local.dir={local_dir}",
            "--conf", "spark.default.parallelism=2", str(TRAIN_JOB), *args]


@pytest.mark.slow
def test_retried_task_failures_give_the_same_model(train_main, spark, capsys, tmp_path, data):
    """Every loss task fails on its first attempt (FAIL_FIRST_ATTEMPT_ENV) and is retried
    (spark-submit --master local[2,3]); the model equals that of the same run without failures
    (in-process, local[2]) within 1e-12. Alongside: bad input through spark-submit ends with
    exit 2 and ``error: …`` as the driver's last line."""
    from softmax_spark import load_model

    X, y = data
    folder = tmp_path / "data"
    folder.mkdir()
    write_parquet(folder / "a.parquet", X[:30], y[:30])  # two files: two partitions
    write_parquet(folder / "b.parquet", X[30:], y[30:])
    markers = tmp_path / "markers"
    markers.mkdir()
    common = ["--max-iter", "3", "--no-write-mllib"]
    runs = {}
    from softmax_spark.spark.distributed import FAIL_FIRST_ATTEMPT_ENV

    # the fault injection is a test seam (an environment variable), not a flag of the job
    for name, extra, env in (("faulty", ["--input", str(folder)], {FAIL_FIRST_ATTEMPT_ENV: str(markers)}),
                             ("missing", ["--input", str(tmp_path / "missing.parquet")], {})):
        out, err = open(tmp_path / f"{name}.out", "w"), open(tmp_path / f"{name}.err", "w")
        cmd = submit_command("local[2,3]", tmp_path / f"local-{name}", *common,
                             "--model-dir", str(tmp_path / name), *extra)
        runs[name] = subprocess.Popen(cmd, env={**_submit_env(), **env}, stdout=out, stderr=err)
        out.close()
        err.close()
    try:
        assert train_main(["--input", str(folder), "--model-dir", str(tmp_path / "clean"), *common],
                          spark=spark) == 0
        capsys.readouterr()
        codes = {name: proc.wait(timeout=900) for name, proc in runs.items()}
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    faulty_log = (tmp_path / "faulty.out").read_text() + (tmp_path / "faulty.err").read_text()
    assert codes["faulty"] == 0, faulty_log[-3000:]
    assert len(list(markers.iterdir())) >= 2  # the first attempts did fail
    # spark-submit's PythonRunner merges the Python driver's stderr into its own stdout
    last = (tmp_path / "missing.out").read_text().strip().splitlines()[-1]
    assert codes["missing"] == 2 and last == f"error: input path {tmp_path / 'missing.parquet'} does not exist", last
    assert not (tmp_path / "missing").exists()

    failed = sorted(os.listdir(markers))
    # the first pass (iteration 0) of each of the two partitions failed once and was retried, ...
    assert {"failed-0-0", "failed-0-1", "failed-1-0", "failed-1-1"} <= set(failed), failed
    assert "injected failure" in faulty_log
    clean, faulty = load_model(str(tmp_path / "clean")), load_model(str(tmp_path / "faulty"))
    assert faulty.metadata["data_summary"]["partitions"] == clean.metadata["data_summary"]["partitions"] == 2
    np.testing.assert_allclose(faulty.coef, clean.coef, rtol=0, atol=1e-12)
    np.testing.assert_allclose(faulty.intercept, clean.intercept, rtol=0, atol=1e-12)
    assert len(faulty.history) == len(clean.history)


# -- fail fast: errors that need no data come before Spark starts (issue 16 item 2) ---------------
_NO_SPARK_DRIVER = r"""
import contextlib, importlib.util, io, json, sys
results = []
for job, argv in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("job_" + job, sys.argv[2] + "/jobs/" + job + ".py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = module.main(argv)
    context = getattr(sys.modules.get("pyspark"), "SparkContext", None)
    results.append({"code": code, "err": err.getvalue(),
                    "jvm": context is not None and (context._gateway is not None or context._jvm is not None)})
print(json.dumps(results))
"""


def _without_spark(cases):
    """Run each (job, argv) through the job's ``main`` in one fresh Python where no JVM can start
    (JAVA_HOME points nowhere, no java on PATH): a check that came after the SparkSession would
    fail there with Spark's JAVA_GATEWAY_EXITED instead of its own line. Returns per case
    (exit code, last stderr line, whether a JVM gateway exists)."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not os.path.exists(os.path.join(p, "java")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_", "JAVA_"))}
    env.update(PATH=path, JAVA_HOME="/nonexistent/java")
    done = subprocess.run([sys.executable, "-c", _NO_SPARK_DRIVER, json.dumps(cases), str(REPO)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return [(r["code"], (r["err"].strip().splitlines() or [""])[-1], r["jvm"]) for r in results]


def test_errors_needing_no_data_come_before_spark_starts(tmp_path, good):
    """Flags, config files, a missing local input (path or file: URI), an existing model
    directory or output, a misspelt column (read from the Parquet footers, with a suggestion),
    a bad --init-model: each is the job's one ``error:`` line, exit 2, and no JVM was started."""
    from softmax_spark import SoftmaxModel, save_model

    existing = tmp_path / "existing-model"
    existing.mkdir()
    missing = tmp_path / "missing.parquet"
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("max_iter: [1, 2\n")
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    cols = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"petal_length": [1.0, 2.0], "petal_width": [0.5, 0.1], "variety": ["a", "b"]}), cols)
    model = tmp_path / "model"
    save_model(SoftmaxModel(np.zeros((2, 2)), np.zeros(2), ["a", "b"], metadata={"options": {
        "features_col": "features", "feature_cols": ["petal_length", "sepal_width"], "label_col": "variety"}}),
        str(model))
    out = str(tmp_path / "new-model")
    cases = [
        (("train", ["--input", good, "--model-dir", str(existing)]),
         f"error: model directory {existing} already exists; pass --overwrite to replace it"),
        (("train", ["--input", str(missing), "--model-dir", out]), f"error: input path {missing} does not exist"),
        (("train", ["--input", f"file://{missing}", "--model-dir", out]),
         f"error: input path file://{missing} does not exist"),
        (("train", ["--input", good, "--model-dir", out, "--validation-input", str(missing)]),
         f"error: validation input path {missing} does not exist"),
        (("train", ["--input", good, "--model-dir", out, "--label-col", "lable"]),
         "error: column 'lable' not found; did you mean 'label'? the input has columns: id, features, label"),
        (("train", ["--input", str(cols), "--model-dir", out, "--feature-cols", "petal_length,petal_widht",
                    "--label-col", "variety"]),
         "error: column 'petal_widht' not found; did you mean 'petal_width'? "
         "the input has columns: petal_length, petal_width, variety"),
        (("train", ["--input", good, "--model-dir", out, "--weight-col", "Weight"]),
         "error: column 'Weight' not found; the input has columns: id, features, label"),
        (("train", ["--input", good, "--model-dir", out, "--config", str(tmp_path / "none.yaml")]),
         f"error: config file {tmp_path / 'none.yaml'} does not exist"),
        (("train", ["--input", good, "--model-dir", out, "--config", str(bad_yaml)]),
         f"error: config file {bad_yaml} is not valid YAML (line 2): expected ',' or ']', but got '<stream end>'; "
         "expected a mapping of keys to values"),
        (("train", ["--input", good, "--model-dir", out, "--max-it", "3"]),
         "error: unrecognized arguments: --max-it 3; --max-it: did you mean --max-iter?"),
        (("train", ["--input", good, "--model-dir", out, "--l2=-1"]), "error: --l2 must be ≥ 0, got -1.0"),
        (("train", ["--input", good, "--model-dir", out, "--init-model", str(not_a_model)]),
         f"error: model directory {not_a_model}: {not_a_model}/metadata.json is missing"),
        (("evaluate", ["--model-dir", str(model), "--input", str(missing), "--output", out]),
         f"error: input path {missing} does not exist"),
        (("evaluate", ["--model-dir", str(model), "--input", str(cols), "--output", str(existing)]),
         "error: column 'sepal_width' not found; did you mean 'petal_width'? "
         "the input has columns: petal_length, petal_width, variety"),
        (("evaluate", ["--model-dir", str(model), "--input", str(cols), "--output", out,
                       "--feature-cols", "petal_length,petal_width", "--label-col", "varietry"]),
         "error: column 'varietry' not found; did you mean 'variety'? "
         "the input has columns: petal_length, petal_width, variety"),
        (("evaluate", ["--model-dir", str(model), "--input", str(cols), "--output", str(existing),
                       "--feature-cols", "petal_length,petal_width"]),
         f"error: output {existing} already exists; pass --overwrite to replace it"),
    ]
    results = _without_spark([case for case, _ in cases])
    for (case, expected), (code, last, jvm) in zip(cases, results):
        assert (code, last, jvm) == (2, expected, False), case
    assert os.listdir(existing) == [] and not os.path.exists(out)


def test_a_path_only_spark_can_reach_is_checked_right_after_start(spark, tmp_path, good):
    """viewfs:// (a mount table onto a local directory) stands for any remote scheme: a missing
    path is one line from Hadoop's FileSystem, before Spark's own read (and its Java stack); an
    unknown scheme names it."""
    from softmax_spark.core.errors import InputError
    from softmax_spark.cli.checks import check_input_reachable
    from softmax_spark.io.driver_paths import spark_local_path as local_path

    shutil.copy(good, tmp_path / "good.parquet")
    spark.sparkContext._jsc.hadoopConfiguration().set("fs.viewfs.mounttable.uxcheck.link./store",
                                                      f"file://{tmp_path}")
    assert local_path("viewfs://uxcheck/store/good.parquet") is None
    check_input_reachable(spark, "viewfs://uxcheck/store/good.parquet")
    check_input_reachable(spark, "viewfs://uxcheck/store/*.parquet")
    with pytest.raises(InputError, match=r"^input path viewfs://uxcheck/store/gone.parquet does not exist$"):
        check_input_reachable(spark, "viewfs://uxcheck/store/gone.parquet")
    with pytest.raises(InputError, match=r"^no Hadoop FileSystem for scheme 'nosuchfs' \(path nosuchfs://h/d\)"):
        check_input_reachable(spark, "nosuchfs://h/d")


def test_local_path_rules(monkeypatch, tmp_path):
    from softmax_spark.io.driver_paths import spark_local_path as local_path

    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert local_path("/data/x") == "/data/x" and local_path("rel/x") == "rel/x"
    assert local_path("file:/data/x") == local_path("file:///data/x") == local_path("file://localhost/data/x") == "/data/x"
    for remote in ("hdfs://nn/x", "s3a://bucket/x", "viewfs://default/x", "file://otherhost/x"):
        assert local_path(remote) is None, remote
    # plain paths are resolved by Spark against fs.defaultFS: an HDFS default makes them remote
    (tmp_path / "spark-defaults.conf").write_text("spark.hadoop.fs.defaultFS  hdfs://nn:8020\n")
    assert local_path("/data/x") is None and local_path("file:/data/x") == "/data/x"


# -- the real cause of a failure inside Spark, in one last line (issue 16 item 3) ----------------
def test_column_type_differing_between_files_names_file_column_and_types(train_main, spark, capsys, tmp_path, data):
    """Two Parquet files whose label column has different types (int64 and string): Spark fails
    while reading; the last line names the file, the column and both types (was ``error:
    Py4JJavaError: An error occurred while calling o108.parquet.``)."""
    features, labels = _rows(data)
    folder = tmp_path / "mixed"
    folder.mkdir()
    _write(folder / "a.parquet", features[:30], labels[:30])
    pq.write_table(pa.table({"features": pa.array(features[30:], type=pa.list_(pa.float64())),
                             "label": pa.array([str(v) for v in labels[30:]])}), folder / "b.parquet")
    last = _assert_bad_input(_run(train_main, spark, capsys, tmp_path, "--input", str(folder)))
    assert re.fullmatch(
        r"error: input file file:\S+/mixed/[ab]\.parquet: column 'label' is Parquet (BINARY|INT64) there, but "
        r"(bigint|string) in the input's schema \(taken from another file\): the input's files disagree on this "
        r"column's type; rewrite them with one type", last), last


def test_missing_paths_inside_spark_are_one_line(spark, tmp_path, good):
    """Spark's PATH_NOT_FOUND (a path gone before the read) and FAILED_READ_FILE.FILE_NOT_EXIST
    (a file deleted after Spark listed the input) — real exceptions from this session."""
    from softmax_spark.cli.jobs_common import describe_failure

    with pytest.raises(Exception) as info:
        spark.read.parquet(str(tmp_path / "gone.parquet"))
    assert describe_failure(info.value) == (2, f"input path file:{tmp_path / 'gone.parquet'} does not exist")

    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(good, folder / "a.parquet")
    shutil.copy(good, folder / "b.parquet")
    frame = spark.read.parquet(str(folder))
    os.remove(folder / "b.parquet")
    with pytest.raises(Exception) as info:
        frame.select("label").collect()
    assert describe_failure(info.value) == (
        2, f"input file file://{folder / 'b.parquet'} no longer exists: it was deleted or replaced after Spark "
           "listed the input; rerun once the input is complete")


@pytest.mark.parametrize("message, expected", [
    # Spark 4's texts for causes a local test cannot provoke (this runs as root; an OOM or a lost
    # executor in local mode takes the driver with it)
    ("Job aborted due to stage failure: Task 1 in stage 4.0 failed 4 times, most recent failure: Lost task 1.3 in "
     "stage 4.0 (TID 17) (10.0.0.7 executor 3): java.lang.OutOfMemoryError: Java heap space\n\tat java.base/...",
     (1, "a task ran out of memory (task 1 in stage 4.0 failed 4 times): java.lang.OutOfMemoryError: Java heap "
         "space; give the executors more memory (spark.executor.memory, spark.executor.memoryOverhead for Python) "
         "or spread the rows over more partitions (--num-partitions)")),
    ("Job aborted due to stage failure: Task 0 in stage 7.0 failed 4 times, most recent failure: Lost task 0.3 in "
     "stage 7.0 (TID 31) (10.0.0.7 executor 5): ExecutorLostFailure (executor 5 exited caused by one of the "
     "running tasks) Reason: Command exited with code 137",
     (1, "executor lost (task 0 in stage 7.0 failed 4 times): executor 5 exited (Command exited with code 137); "
         "Spark gave up after spark.task.maxFailures attempts — see that executor's log; exit code 137 means it "
         "was killed (often for memory)")),
    ("java.nio.file.AccessDeniedException: /data/restricted/part-0.parquet",
     (2, "permission denied: java.nio.file.AccessDeniedException: /data/restricted/part-0.parquet")),
    ("org.apache.hadoop.security.AccessControlException: Permission denied: user=etl, access=READ, "
     "inode=\"/data/x\":hdfs:hdfs:drwx------",
     (2, "permission denied: org.apache.hadoop.security.AccessControlException: Permission denied: user=etl, "
         "access=READ, inode=\"/data/x\":hdfs:hdfs:drwx------")),
    ("something else entirely", None),
])
def test_spark_failure_texts_map_to_one_line(message, expected):
    from softmax_spark.cli.jobs_common import describe_failure

    assert describe_failure(RuntimeError(message)) == expected


def test_unrecognised_py4j_failure_ends_with_the_innermost_message(spark):
    """A Java failure nothing maps: the last line is the innermost cause, not "An error occurred
    while calling oNN.method"."""
    from softmax_spark.cli.jobs_common import _last_resort

    with pytest.raises(Exception) as info:
        spark.sparkContext._jvm.java.lang.Integer.parseInt("twelve")
    assert _last_resort(info.value) == 'NumberFormatException: For input string: "twelve"'


# -- evaluation takes the feature and label columns from the model (issue 16 item 7) -------------
@pytest.fixture(scope="module")
def columns_model(train_main, spark, tmp_path_factory, data):
    """A model trained with --feature-cols x0,x1,x2 --label-col variety."""
    X, y = data
    root = tmp_path_factory.mktemp("columns-model")
    table = pa.table({"id": np.arange(len(y)), "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2],
                      "variety": np.array(["setosa", "versicolor", "virginica"])[y]})
    pq.write_table(table, root / "labelled.parquet")
    pq.write_table(table.drop(["variety"]), root / "unlabelled.parquet")
    code = train_main(["--input", str(root / "labelled.parquet"), "--model-dir", str(root / "model"),
                       "--feature-cols", "x0,x1,x2", "--label-col", "variety", "--max-iter", "5",
                       "--no-write-mllib"], spark=spark)
    assert code == 0
    return root


@needs_evaluate
def test_evaluate_reuses_the_models_feature_and_label_columns(spark, capsys, columns_model):
    from softmax_spark import load_model

    evaluate = _load_job(EVALUATE_JOB, "softmax_spark_evaluate_job")
    root = columns_model
    capsys.readouterr()
    code = evaluate.main(["--model-dir", str(root / "model"), "--input", str(root / "labelled.parquet"),
                          "--output", str(root / "scored"), "--no-plots"], spark=spark)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    metrics = json.loads((root / "scored.metrics.json").read_text())
    assert metrics["label_col"] == "variety" and metrics["labelled_rows"] == 60
    model = load_model(str(root / "model"))
    X = pq.read_table(root / "labelled.parquet").select(["x0", "x1", "x2"]).to_pandas().to_numpy()
    assert metrics["accuracy"] == pytest.approx(float(np.mean(
        model.predict(X) == pq.read_table(root / "labelled.parquet").column("variety").to_numpy(zero_copy_only=False))))


@needs_evaluate
def test_evaluate_says_when_the_models_label_column_is_absent(spark, capsys, columns_model):
    """Unlabelled input: scored (exit 0), and the missing 'variety' column is one line in the
    output and the metrics JSON — not silently no metrics."""
    evaluate = _load_job(EVALUATE_JOB, "softmax_spark_evaluate_job")
    root = columns_model
    capsys.readouterr()
    code = evaluate.main(["--model-dir", str(root / "model"), "--input", str(root / "unlabelled.parquet"),
                          "--output", str(root / "scored-unlabelled"), "--no-plots"], spark=spark)
    out = capsys.readouterr().out
    assert code == 0
    line = "metrics               none: the input has no label column 'variety' (the model was trained with it)"
    assert line in out.splitlines(), out
    metrics = json.loads((root / "scored-unlabelled.metrics.json").read_text())
    assert metrics["metrics"] is None and metrics["rows_scored"] == 60 and metrics["label_col"] == "variety"
    assert metrics["note"] == "the input has no label column 'variety' (the model was trained with it)"
    assert pq.read_table(root / "scored-unlabelled").num_rows == 60


# -- a full disk (issue 24 item 7) ----------------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path):
    """A small tmpfs, filled up: every write there fails with ENOSPC. Needs root (mount)."""
    where = tmp_path / "full"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill ({done.stderr.strip() or done.returncode}); "
                    "the ENOSPC paths are then untested")
    try:
        with open(where / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_model_save_onto_a_full_disk_names_the_path(train_main, spark, capsys, tmp_path, good, full_disk):
    """Today: ``error: OSError: [Errno 28] No space left on device`` without a path (after a
    traceback); now one line naming the model directory, exit 1."""
    model_dir = full_disk / "model"
    code = train_main(["--input", good, "--max-iter", "2", "--model-dir", str(model_dir), "--no-write-mllib"],
                      spark=spark)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith(f"error: no space left on device: {model_dir}"), lines[-1]
    assert os.listdir(full_disk) == ["filler"]  # nothing half-written


def test_block_files_on_a_full_disk_end_with_one_line_naming_the_directory(spark, full_disk):
    """A task writing block files into a full local directory: Spark's PythonException (with the
    worker's traceback) becomes one line naming the run directory."""
    from softmax_spark.spark import ingest as ing
    from softmax_spark.core.features import FeatureSpec
    from softmax_spark.cli.jobs_common import describe_failure

    target = str(full_disk)

    def write(_rows):
        import numpy as np
        import pyarrow as pa

        os.environ["SPARK_LOCAL_DIRS"] = target  # this worker's "local dir": the full tmpfs
        table = pa.table({"features": pa.array([list(r) for r in np.ones((2000, 8))], pa.list_(pa.float64())),
                          "label": pa.array(np.arange(2000) % 3)})
        plan = (FeatureSpec(), "label", None, [0, 1, 2], np.dtype("float64"), "fulldisk", None, "dense")
        yield ing._write_blocks(iter(table.to_batches()), plan, 0)

    with pytest.raises(Exception) as info:
        spark.sparkContext.parallelize([0], 1).mapPartitions(write).collect()
    described = describe_failure(info.value)
    assert described is not None, str(info.value)[-2000:]
    code, line = described
    assert code == 1 and line.startswith(f"no space left on device: {target}/softmax_spark-fulldisk"), line
    assert "\n" not in line
