"""Unit tests of dags/softmax_pipeline.py: templates, settings precedence, the spark-submit command.

Needs the Airflow environment (airflow/airflow_test.sh runs them with it); nothing is submitted:
``SparkSubmitHook.submit`` is replaced by a recorder. Not part of the project's own test suite
(pyproject's testpaths is tests/), since the project's venv has no Airflow.

    .airflow/venv/bin/python -m pytest airflow/test_softmax_dag.py
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

# Airflow reads AIRFLOW_HOME on import and creates it: never let that be ~/airflow here.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="softmax-dag-test-"))

import pendulum  # noqa: E402
import pytest  # noqa: E402
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook  # noqa: E402
from airflow.sdk.exceptions import AirflowException, AirflowFailException  # noqa: E402
from airflow.sdk.execution_time.context import VariableAccessor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DAG_FILE = REPO / "dags" / "softmax_pipeline.py"


def _load_dag_module():
    spec = importlib.util.spec_from_file_location("softmax_pipeline_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean set of the DAG's Variables and a local Spark connection, all from the environment."""
    for key in list(os.environ):
        if key.startswith(("AIRFLOW_VAR_SOFTMAX_SPARK_", "AIRFLOW_CONN_")) or key.startswith("SOFTMAX_SPARK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps({"conn_type": "spark", "host": "local[2]", "extra": {"spark-binary": "spark-submit"}}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_INPUT_PATH", "/data/train.parquet")
    monkeypatch.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_OUTPUT_ROOT", "/out")
    return monkeypatch


@pytest.fixture
def module(env):
    return _load_dag_module()


@pytest.fixture
def submitted(monkeypatch):
    """Record the spark-submit command lines instead of running them."""
    commands: list[dict] = []

    def fake_submit(self, application="", **kwargs):
        commands.append({"cmd": self._build_spark_submit_command(application), "env": dict(self._env or {})})

    monkeypatch.setattr(SparkSubmitHook, "submit", fake_submit)
    return commands


def _context(task, params=None, ds="2025-06-01"):
    resolved = copy.deepcopy(task.dag.params)
    for key, value in (params or {}).items():
        resolved[key] = value
    context = {
        "params": resolved.validate(),
        "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(deserialize_json=True)},
        "run_id": "manual__test",
        "dag_run": SimpleNamespace(run_after=pendulum.datetime(2025, 7, 4, 10, tz="UTC")),
    }
    if ds is not None:
        context["ds"] = ds
    return context


def _run(module, task_id, params=None, ds="2025-06-01"):
    task = module.dag.get_task(task_id)
    context = _context(task, params, ds)
    task.render_template_fields(context)
    task.execute(context)
    return task


def _flag(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def test_shape(module):
    dag = module.dag
    assert dag.dag_id == "softmax_spark_pipeline"
    assert dag.get_task("evaluate").upstream_task_ids == {"train"}
    for task in dag.tasks:
        assert task.retries == 2
        assert task.retry_delay.total_seconds() == 120


def test_retries_from_environment(env):
    env.setenv("SOFTMAX_SPARK_RETRIES", "5")
    env.setenv("SOFTMAX_SPARK_RETRY_DELAY_SECONDS", "7")
    module = _load_dag_module()
    assert {t.retries for t in module.dag.tasks} == {5}
    assert {t.retry_delay.total_seconds() for t in module.dag.tasks} == {7}


def test_defaults_from_variables_and_repo(module, submitted):
    _run(module, "train")
    _run(module, "evaluate")
    train, evaluate = (c["cmd"] for c in submitted)
    assert train[0] == "spark-submit"  # the connection's spark-binary, looked up on PATH
    assert _flag(train, "--master") == "local[2]"
    assert train[train.index("--input") - 1] == str(REPO / "jobs" / "train.py")
    assert _flag(train, "--input") == "/data/train.parquet"
    assert _flag(train, "--model-dir") == "/out/models/2025-06-01"
    assert "--overwrite" in train
    for absent in ("--config", "--l2", "--optimizer"):
        assert absent not in train
    assert not any(c.startswith("spark.driver.memory") for c in train)  # no empty --conf
    assert submitted[0]["env"] == {}  # no empty PYSPARK_PYTHON

    assert evaluate[evaluate.index("--model-dir") - 1] == str(REPO / "jobs" / "evaluate.py")
    assert _flag(evaluate, "--model-dir") == "/out/models/2025-06-01"
    assert _flag(evaluate, "--input") == "/data/train.parquet"  # eval input falls back to training data
    assert _flag(evaluate, "--output") == "/out/predictions/2025-06-01"
    assert _flag(evaluate, "--metrics-out") == "/out/metrics/2025-06-01.json"


def test_params_beat_variables(env, module, submitted):
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_JOBS_DIR", "/var-jobs")
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_EVAL_INPUT_PATH", "/data/var-eval.parquet")
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_DRIVER_MEMORY", "3g")
    env.setenv("AIRFLOW_CONN_SPARK_OTHER", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    params = {
        "input_path": "/p/train dir/x.parquet",
        "output_root": "/p/out",
        "jobs_dir": "/p/jobs",
        "spark_conn_id": "spark_other",
        "train_config": "/p/train.yaml",
        "l2": 0.0,
        "optimizer": "sgd",
        "overwrite": False,
        "train_extra_args": "--max-iter 5 --tol '1e-6'",
        "spark_conf": {"spark.sql.shuffle.partitions": 3},
    }
    _run(module, "train", params)
    _run(module, "evaluate", params)
    train, evaluate = (c["cmd"] for c in submitted)
    assert _flag(train, "--master") == "local[1]"
    assert train[train.index("--input") - 1] == "/p/jobs/train.py"
    assert _flag(train, "--input") == "/p/train dir/x.parquet"  # one argument despite the space
    assert _flag(train, "--model-dir") == "/p/out/models/2025-06-01"
    assert _flag(train, "--config") == "/p/train.yaml"
    assert _flag(train, "--l2") == "0.0"  # zero is a value, not "unset"
    assert _flag(train, "--optimizer") == "sgd"
    assert "--overwrite" not in train
    assert train[-4:] == ["--max-iter", "5", "--tol", "1e-6"]
    assert "spark.driver.memory=3g" in train  # Variable, since the param is unset
    assert "spark.sql.shuffle.partitions=3" in train
    assert _flag(evaluate, "--input") == "/data/var-eval.parquet"
    assert "--config" not in evaluate


def test_variables_for_binary_and_python(env, module, submitted):
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_SPARK_BINARY", "/opt/venv/bin/spark-submit")
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_PYSPARK_PYTHON", "/opt/venv/bin/python")
    env.setenv("AIRFLOW_VAR_SOFTMAX_SPARK_SPARK_CONN_ID", "spark_var")
    env.setenv("AIRFLOW_CONN_SPARK_VAR", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    _run(module, "train")
    assert submitted[0]["cmd"][0] == "/opt/venv/bin/spark-submit"
    assert submitted[0]["env"] == {"PYSPARK_PYTHON": "/opt/venv/bin/python"}


def test_run_without_logical_date_uses_run_after(module, submitted):
    _run(module, "train", ds=None)
    assert _flag(submitted[0]["cmd"], "--model-dir") == "/out/models/2025-07-04"


def test_missing_output_root_fails_at_render(env, module):
    env.delenv("AIRFLOW_VAR_SOFTMAX_SPARK_OUTPUT_ROOT")
    task = module.dag.get_task("train")
    with pytest.raises(Exception, match="softmax_spark_output_root"):
        task.render_template_fields(_context(task))


@pytest.mark.parametrize(("code", "expected"), [(2, AirflowFailException), (1, AirflowException)])
def test_exit_code_2_is_not_retried(module, monkeypatch, code, expected):
    def failing_submit(self, application="", **kwargs):
        self._submit_sp = SimpleNamespace(returncode=code)
        raise AirflowException(
            f"Cannot execute: spark-submit {application}. Error code is: {code}.\n"
            "Last spark-submit output:\nerror: input path /x does not exist"
        )

    monkeypatch.setattr(SparkSubmitHook, "submit", failing_submit)
    with pytest.raises(expected) as info:
        _run(module, "train")
    if expected is AirflowException:
        assert not isinstance(info.value, AirflowFailException)
    else:
        assert str(info.value).endswith("not retrying: error: input path /x does not exist")
