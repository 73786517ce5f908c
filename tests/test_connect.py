"""Spark Connect: the same training and scoring on a real Spark Connect server as on the classic
session (``connect_backend``).

One Spark Connect server (``sbin/start-connect-server.sh`` of the pyspark package, local[2], on
127.0.0.1) per module. The Connect side runs in a subprocess — this file run as a script —
because ``SparkSession.builder.remote`` marks the whole process as Connect
(``SPARK_CONNECT_MODE_ENABLED``), which would turn the classic tests after it to Connect. If
the server cannot start, the tests fail with its log: never skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import load_job

pytestmark = pytest.mark.slow

N_CLASSES, N_FEATURES, ROWS_PER_FILE = 3, 4, 300
FEATURE_COLS = [f"x{j}" for j in range(N_FEATURES)]
L2 = 0.01


# -- the data: two Parquet files (two input partitions on either session) --------------------------
def write_data(path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    W = rng.normal(size=(N_CLASSES, N_FEATURES))
    os.makedirs(path, exist_ok=True)
    for part in range(2):
        X = rng.normal(size=(ROWS_PER_FILE, N_FEATURES))
        logits = X @ W.T + rng.gumbel(size=(ROWS_PER_FILE, N_CLASSES))
        columns = {"id": pa.array(np.arange(ROWS_PER_FILE) + part * ROWS_PER_FILE),
                   "features": pa.array(list(X), pa.list_(pa.float64())),
                   "label": pa.array(logits.argmax(axis=1).astype(np.int64))}
        columns.update({name: pa.array(X[:, j]) for j, name in enumerate(FEATURE_COLS)})
        pq.write_table(pa.table(columns), os.path.join(path, f"part-{part}.parquet"))


def train_and_score(spark, data: str, keep: dict | None = None) -> dict:
    """What both sides compute: a Pipeline (VectorAssembler → SoftmaxRegression, which trains
    through ``training.fit_dataframe``) fit and transform, and ``score_dataframe`` with its model.
    Returns plain lists; ``keep`` (a dict) receives the Pipeline, the PipelineModel and the input."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array

    from softmax_spark.sparkml.classification import SoftmaxRegression
    from softmax_spark.spark.scoring import score_dataframe

    df = spark.read.parquet(data)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=FEATURE_COLS, outputCol="vec"),
                                SoftmaxRegression(featuresCol="vec", labelCol="label", regParam=2 * L2,
                                                  numPartitions=2)])
    fitted = pipeline.fit(df)
    if keep is not None:
        keep.update(pipeline=pipeline, fitted=fitted, df=df)
    ml_model = fitted.stages[-1]
    model = ml_model.softmaxModel

    def collect(frame):
        rows = frame.select("id", vector_to_array("probability").alias("p"), "prediction").collect()
        return sorted(rows, key=lambda r: r["id"])

    rows = collect(score_dataframe(df, model, featuresCol="features"))  # the array<double> column
    out = collect(fitted.transform(df))
    return {
        "coef": model.coef.tolist(), "intercept": model.intercept.tolist(),
        "iterations": len(model.history), "solver": model.metadata["solver"],
        "proba": [list(r["p"]) for r in rows], "prediction": [r["prediction"] for r in rows],
        "ml_coef": ml_model.coefficientMatrix.toArray().tolist(), "ml_intercept": list(ml_model.interceptVector),
        "ml_proba": [list(r["p"]) for r in out], "ml_prediction": [r["prediction"] for r in out],
    }


def bad_input(spark) -> str:
    """The ``InputError`` line of a training run over a NaN feature (raised in a task)."""
    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.core.errors import InputError
    from softmax_spark.fit.training import fit_dataframe

    df = spark.createDataFrame([([1.0, 2.0], 0), ([1.0, float("nan")], 1), ([0.0, 1.0], 1)],
                               "features array<double>, label long")
    try:
        fit_dataframe(spark, TrainConfig(l2=0.1), df=df, write=False)
    except InputError as exc:
        return str(exc)
    return "no InputError"


def _probabilities(frame) -> list:
    from pyspark.ml.functions import vector_to_array

    rows = frame.select("id", vector_to_array("probability").alias("p")).collect()
    return [list(r["p"]) for r in sorted(rows, key=lambda r: r["id"])]


def persistence(keep: dict, tmp: str) -> dict:
    """Spark ML persistence on this session: the estimator, the model (refused when the path
    exists, then overwritten) and the Pipeline / PipelineModel saved and loaded back."""
    from pyspark.ml import Pipeline, PipelineModel

    from softmax_spark.core.errors import InputError
    from softmax_spark.sparkml.classification import SoftmaxRegression, SoftmaxRegressionModel

    pipeline, fitted = keep["pipeline"], keep["fitted"]
    estimator, model = pipeline.getStages()[-1], fitted.stages[-1]
    out = {"dir": tmp}
    estimator.write().save(f"{tmp}/estimator")
    back = SoftmaxRegression.load(f"{tmp}/estimator")
    out["estimator"] = [back.uid == estimator.uid, back.getRegParam(), back.getFeaturesCol(),
                        back.getOrDefault(back.numPartitions)]
    model.write().save(f"{tmp}/model")
    try:
        model.write().save(f"{tmp}/model")
        out["refused"] = "saved twice"
    except InputError as exc:
        out["refused"] = str(exc)
    model.write().overwrite().save(f"{tmp}/model")
    loaded = SoftmaxRegressionModel.load(f"{tmp}/model")
    out["model_coef"] = loaded.coefficientMatrix.toArray().tolist()
    out["model_intercept"] = list(loaded.interceptVector)
    out["model_proba"] = _probabilities(loaded.transform(fitted.stages[0].transform(keep["df"])))
    pipeline.write().save(f"{tmp}/pipeline")
    out["pipeline_stages"] = [type(stage).__name__ for stage in Pipeline.load(f"{tmp}/pipeline").getStages()]
    fitted.write().save(f"{tmp}/pipeline_model")
    fitted.write().overwrite().save(f"{tmp}/pipeline_model")
    out["pipeline_model_proba"] = _probabilities(PipelineModel.load(f"{tmp}/pipeline_model").transform(keep["df"]))
    return out


def rebuild_checks_stamps(spark, tmp: str) -> dict:
    """Issue 16 item 18 on Connect: a block file deleted → the pass rebuilds (same sums) while
    the input is unchanged, and reports ``InputChangedError`` once the file was replaced."""
    from helpers import make_data, write_parquet

    from softmax_spark.fit.config import TrainConfig
    from softmax_spark.spark.connect_backend import ConnectLoss
    from softmax_spark.spark.ingest import InputChangedError, read_parquet
    from softmax_spark.fit.training import TrainingData

    X, y = make_data(n=300, d=4, c=3, seed=5)
    path = write_parquet(os.path.join(tmp, "d.parquet"), X, y, row_group_size=100)
    df = read_parquet(spark, path).repartition(3)
    rng = np.random.default_rng(0)
    coef, intercept = rng.normal(size=(3, 4)), rng.normal(size=3)
    out = {}
    with TrainingData(TrainConfig(input=path, model_dir=os.path.join(tmp, "m")), [0, 1, 2], 3) as data:
        ingested = data.add("train", df)
        loss = ConnectLoss(ingested, 3, 4)  # ConnectIngestedData.rebuild
        before = loss(coef, intercept).loss

        def delete_a_block():  # local server: this process sees the executor's disk
            victim = sorted(ingested.blocks.collect(), key=lambda d: d["partition"])[1]
            os.remove(victim["path"] + ".X")

        delete_a_block()
        out["unchanged_rebuild"] = [before, loss(coef, intercept).loss]
        X2, y2 = make_data(n=300, d=4, c=3, seed=6)
        write_parquet(path + ".new", X2 * 3.0, y2, row_group_size=100)
        os.replace(path + ".new", path)
        delete_a_block()
        try:
            loss(coef, intercept)
            out["changed"] = "no InputChangedError"
        except InputChangedError as exc:
            out["changed"] = str(exc)
    return out


def job_with_remote_model_dir(spark, data: str) -> dict:
    """jobs/train.py on this session with a viewfs:// --model-dir: (exit code, stdout, stderr)."""
    import contextlib
    import io

    module = load_job("train")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = module.main(["--input", data, "--model-dir", "viewfs://default/models/m1", "--l2", "0.01"],
                           spark=spark)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


# -- the server (softmax_spark.spark.connect_server) ------------------------------------------------------
@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    from softmax_spark.spark.connect_server import ConnectServer

    try:
        server = ConnectServer(str(tmp_path_factory.mktemp("connect-server")))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def connect_run(connect_server, tmp_path_factory):
    """(data path, what the Connect side returned): one subprocess on a Connect session."""
    tmp = tmp_path_factory.mktemp("connect-run")
    data, out = str(tmp / "data"), str(tmp / "connect.json")
    write_data(data)
    from softmax_spark.spark.connect_server import client_env

    proc = subprocess.run([sys.executable, __file__, connect_server.url, data, out], env=client_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"Connect side failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    with open(out) as fh:
        return data, json.load(fh)


# -- the tests ------------------------------------------------------------------------------------------
def test_connect_trains_and_scores_as_classic(spark, connect_run):
    data, remote = connect_run
    assert remote["session"] == "pyspark.sql.connect.session"  # the Connect backend really ran
    local = train_and_score(spark, data)

    assert remote["solver"] == local["solver"] and remote["iterations"] == local["iterations"]
    np.testing.assert_allclose(remote["coef"], local["coef"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote["intercept"], local["intercept"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote["proba"], local["proba"], rtol=0, atol=1e-9)
    assert remote["prediction"] == local["prediction"]
    assert len(set(local["prediction"])) == N_CLASSES
    # the Spark ML Pipeline (VectorAssembler on the server → SoftmaxRegression) on Connect
    np.testing.assert_allclose(remote["ml_coef"], local["ml_coef"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote["ml_intercept"], local["ml_intercept"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote["ml_proba"], local["ml_proba"], rtol=0, atol=1e-9)
    assert remote["ml_prediction"] == local["ml_prediction"]


def test_connect_bad_input_is_one_line(connect_run):
    """An ``InputError`` raised in a Connect task comes back as itself (not a gRPC trace)."""
    _, remote = connect_run
    assert remote["bad_input"].startswith("column 'features[1]': non-finite value nan at partition"), remote


def test_connect_ml_persistence(spark, connect_run):
    """Spark ML persistence on Connect: the estimator, the model and a Pipeline / PipelineModel
    save and load there (DataFrame writes; an existing path refused, then overwritten), what
    Connect saved loads on a classic session with the same results, and nothing is pickled."""
    from pyspark.ml import PipelineModel

    from softmax_spark.sparkml.classification import SoftmaxRegressionModel

    data, remote = connect_run
    saved = remote["persistence"]
    assert saved["estimator"] == [True, 2 * L2, "vec", 2]
    assert saved["refused"].endswith("already exists; use .write().overwrite().save(path) to replace it"), saved
    np.testing.assert_array_equal(saved["model_coef"], remote["ml_coef"])
    np.testing.assert_array_equal(saved["model_intercept"], remote["ml_intercept"])
    np.testing.assert_allclose(saved["model_proba"], remote["ml_proba"], rtol=0, atol=1e-12)
    assert saved["pipeline_stages"] == ["VectorAssembler", "SoftmaxRegression"]
    np.testing.assert_allclose(saved["pipeline_model_proba"], remote["ml_proba"], rtol=0, atol=1e-12)
    # what the Connect server wrote, read on the classic session
    classic = SoftmaxRegressionModel.load(os.path.join(saved["dir"], "model"))
    np.testing.assert_array_equal(classic.coefficientMatrix.toArray(), remote["ml_coef"])
    df = spark.read.parquet(data)
    np.testing.assert_allclose(_probabilities(PipelineModel.load(os.path.join(saved["dir"], "pipeline_model"))
                                              .transform(df)), remote["ml_proba"], rtol=0, atol=1e-12)
    # JSON metadata and Parquet data only (Spark's part files): nothing to unpickle
    for root, _, names in os.walk(saved["dir"]):
        for name in names:
            if name == "_SUCCESS" or name.endswith(".crc"):
                continue
            assert name.startswith("part-"), os.path.join(root, name)
            with open(os.path.join(root, name), "rb") as fh:
                head = fh.read(4)
            assert head == b"PAR1" or head[:1] == b"{", (os.path.join(root, name), head)


def test_connect_rebuild_checks_the_input_stamps(connect_run):
    _, remote = connect_run
    before, rebuilt = remote["stamps"]["unchanged_rebuild"]
    np.testing.assert_allclose(rebuilt, before, rtol=1e-12)
    message = remote["stamps"]["changed"]
    assert re.match(r"input file (file:)?/\S*/d\.parquet changed \(size \d+ → \d+ bytes, modified ", message), message
    assert "since the ingest" in message and "\n" not in message


def test_connect_job_refuses_a_remote_model_dir(connect_run):
    """A viewfs:// --model-dir on Connect: exit 2 with one line naming the option and what is
    supported, before any training (no iteration line)."""
    _, remote = connect_run
    job = remote["remote_model_dir"]
    assert job["code"] == 2, job
    assert job["stderr"].strip().splitlines()[-1] == (
        "error: model directory viewfs://default/models/m1: a viewfs:// path is written through the driver JVM's "
        "Hadoop FileSystem, which a Spark Connect client does not have; on Spark Connect give a local path "
        "(plain or file:)"), job
    assert "iter" not in job["stdout"], job["stdout"]


def test_spark_submit_remote_runs_both_jobs(connect_server, tmp_path):
    """``spark-submit --remote sc://… jobs/train.py`` then ``jobs/evaluate.py``, as a user runs them
    against a Connect server: both exit 0 (train used to fail after writing its model, reading the
    Connect session's ``sparkContext`` at its stop), the model loads and the predictions exist."""
    from softmax_spark.spark.connect_server import client_env
    from softmax_spark.io.model_io import load_model

    data = str(tmp_path / "data")
    write_data(data)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bindir = os.path.dirname(sys.executable)
    env = dict(client_env(), PATH=bindir + os.pathsep + os.environ.get("PATH", ""), PYSPARK_PYTHON=sys.executable)
    submit = [os.path.join(bindir, "spark-submit"), "--remote", connect_server.url]
    train = subprocess.run(submit + [os.path.join(root, "jobs", "train.py"), "--input", data,
                                     "--features-col", "features", "--model-dir", str(tmp_path / "model"),
                                     "--l2", str(L2)], env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert load_model(str(tmp_path / "model")).coef.shape == (N_CLASSES, N_FEATURES)
    evaluate = subprocess.run(submit + [os.path.join(root, "jobs", "evaluate.py"), "--model-dir", str(tmp_path / "model"),
                                        "--input", data, "--output", str(tmp_path / "pred")],
                              env=env, capture_output=True, text=True, timeout=600)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert os.path.isdir(tmp_path / "pred")


def test_spark_submit_remote_url_is_read(monkeypatch):
    """``spark-submit --remote`` hands its conf to Python as JSON; the jobs' session reads the URL."""
    from softmax_spark.spark.session import _submitted_remote

    monkeypatch.setenv("PYSPARK_REMOTE_INIT_CONF_LEN", "1")
    monkeypatch.setenv("PYSPARK_REMOTE_INIT_CONF_0", json.dumps({"spark.app.name": "train.py",
                                                                 "spark.remote": "sc://127.0.0.1:15002"}))
    assert _submitted_remote() == "sc://127.0.0.1:15002"
    monkeypatch.setenv("PYSPARK_REMOTE_INIT_CONF_LEN", "0")
    assert _submitted_remote() is None


# -- the Connect side (run as a script: url data out) ----------------------------------------------------
def _connect_main(url: str, data: str, out: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    try:
        keep = {}
        result = train_and_score(spark, data, keep)
        result["session"] = type(spark).__module__
        result["bad_input"] = bad_input(spark)
        tmp = os.path.dirname(out)
        result["persistence"] = persistence(keep, os.path.join(tmp, "saved"))
        os.makedirs(os.path.join(tmp, "stamps"))
        result["stamps"] = rebuild_checks_stamps(spark, os.path.join(tmp, "stamps"))
        result["remote_model_dir"] = job_with_remote_model_dir(spark, data)
        with open(out, "w") as fh:
            json.dump(result, fh)
    finally:
        spark.stop()


if __name__ == "__main__":
    _connect_main(*sys.argv[1:])
