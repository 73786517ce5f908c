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
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

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


def train_and_score(spark, data: str) -> dict:
    """What both sides compute: a Pipeline (VectorAssembler → SoftmaxRegression, which trains
    through ``training.fit_dataframe``) fit and transform, and ``score_dataframe`` with its model.
    Returns plain lists."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array

    from softmax_spark.ml import SoftmaxRegression
    from softmax_spark.scoring import score_dataframe

    df = spark.read.parquet(data)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=FEATURE_COLS, outputCol="vec"),
                                SoftmaxRegression(featuresCol="vec", labelCol="label", regParam=2 * L2,
                                                  numPartitions=2)])
    fitted = pipeline.fit(df)
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
    from softmax_spark.config import TrainConfig
    from softmax_spark.errors import InputError
    from softmax_spark.training import fit_dataframe

    df = spark.createDataFrame([([1.0, 2.0], 0), ([1.0, float("nan")], 1), ([0.0, 1.0], 1)],
                               "features array<double>, label long")
    try:
        fit_dataframe(spark, TrainConfig(l2=0.1), df=df, write=False)
    except InputError as exc:
        return str(exc)
    return "no InputError"


# -- the server ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(directory: str, lines: int = 40) -> str:
    logs = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".out")]
    if not logs:
        return "(no server log)"
    with open(logs[0], errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


class ConnectServer:
    """A Spark Connect server from the pyspark package: local[2], 127.0.0.1:``port``, its pid
    file and log under ``directory``; ``stop()`` ends it (the stop script, then its pid)."""

    def __init__(self, directory: str, timeout: float = 150.0):
        import pyspark

        home = os.path.dirname(pyspark.__file__)
        self.directory = directory
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
        self.env.update(SPARK_HOME=home, SPARK_LOCAL_IP="127.0.0.1", SPARK_PID_DIR=directory,
                        SPARK_LOG_DIR=directory, SPARK_CONF_DIR=directory, SPARK_IDENT_STRING=f"softmax_spark{self.port}",
                        PYSPARK_PYTHON=sys.executable)
        self.home = home
        start = subprocess.run(
            [os.path.join(home, "sbin", "start-connect-server.sh"), "--master", "local[2]",
             "--driver-memory", "1g",
             "--conf", f"spark.connect.grpc.binding.port={self.port}",
             "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", "spark.default.parallelism=2", "--conf", "spark.sql.shuffle.partitions=2",
             "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC"],
            env=self.env, capture_output=True, text=True)
        if start.returncode != 0:
            pytest.fail(f"start-connect-server.sh exited {start.returncode}: {start.stderr.strip()}\n"
                        f"{_log_tail(directory)}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.pid() is None and time.monotonic() > deadline - timeout + 10:
                    break  # the server process is gone
                time.sleep(1)
        log = _log_tail(directory)
        self.stop()
        pytest.fail(f"the Spark Connect server did not listen on 127.0.0.1:{self.port}:\n{log}")

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        files = [f for f in os.listdir(self.directory) if f.endswith(".pid")]
        if not files:
            return None
        with open(os.path.join(self.directory, files[0])) as fh:
            pid = int(fh.read().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        pid = self.pid()
        subprocess.run([os.path.join(self.home, "sbin", "stop-connect-server.sh")], env=self.env,
                       capture_output=True, timeout=60)
        if pid is not None:
            for _ in range(30):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(1)
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    server = ConnectServer(str(tmp_path_factory.mktemp("connect-server")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def connect_run(connect_server, tmp_path_factory):
    """(data path, what the Connect side returned): one subprocess on a Connect session."""
    tmp = tmp_path_factory.mktemp("connect-run")
    data, out = str(tmp / "data"), str(tmp / "connect.json")
    write_data(data)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    proc = subprocess.run([sys.executable, __file__, connect_server.url, data, out], env=env,
                          capture_output=True, text=True, timeout=300)
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


def test_spark_submit_remote_url_is_read(monkeypatch):
    """``spark-submit --remote`` hands its conf to Python as JSON; the jobs' session reads the URL."""
    from softmax_spark.session import _submitted_remote

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
        result = train_and_score(spark, data)
        result["session"] = type(spark).__module__
        result["bad_input"] = bad_input(spark)
        with open(out, "w") as fh:
            json.dump(result, fh)
    finally:
        spark.stop()


if __name__ == "__main__":
    _connect_main(*sys.argv[1:])
