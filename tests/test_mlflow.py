"""softmax_spark.sparkml.mlflow_support: MLflow autolog logs our model, the Params of the solver used,
the objective history, an installable requirement; against a real local tracking store."""

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def data(spark):
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(11)
    X = rng.normal(size=(90, 3))
    y = (X @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(90, 3))).argmax(axis=1).astype(float)
    return spark.createDataFrame([(i, Vectors.dense(x), float(c)) for i, (x, c) in enumerate(zip(X, y))],
                                 ["id", "features", "label"]).cache()


@pytest.fixture
def store(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    # artifacts under tmp_path too (a SQLite store's default artifact root is ./mlruns)
    experiment = mlflow.create_experiment("softmax_spark-test", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield tmp_path
    from softmax_spark.sparkml import mlflow_support

    mlflow_support.autolog(disable=True)
    mlflow.set_tracking_uri(previous)


def test_autolog_logs_model_params_metrics_and_reloads(spark, data, store):
    from pyspark.ml.functions import vector_to_array

    from softmax_spark.sparkml import mlflow_support
    from softmax_spark.sparkml.classification import SoftmaxRegression

    mlflow_support.autolog(log_datasets=False, log_post_training_metrics=False)
    with mlflow.start_run() as run:
        model = SoftmaxRegression(regParam=0.01, solver="newton").fit(data)
    got = mlflow.get_run(run.info.run_id)
    params = got.data.params
    assert params["regParam"] == "0.01" and params["solver"] == "newton"
    assert params["resolvedSolver"] == "newton"
    assert not {"batchFraction", "learningRate", "momentum", "lbfgsMemory", "gtol", "patience"} & set(params)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "objective")
    assert [m.step for m in history] == list(range(1, model.summary.totalIterations + 1))
    assert np.allclose([m.value for m in history], model.summary.objectiveHistory, rtol=0, atol=0)

    reloaded = mlflow.spark.load_model(f"runs:/{run.info.run_id}/model")
    a = model.transform(data).select("id", vector_to_array("probability")).orderBy("id").collect()
    b = reloaded.transform(data).select("id", vector_to_array("probability")).orderBy("id").collect()
    assert np.max(np.abs(np.array([r[1] for r in a]) - np.array([r[1] for r in b]))) == 0.0

    # the logged requirement installs: the install's own source (PEP 610), not an unserved pin
    from mlflow.artifacts import download_artifacts

    reqs = open(download_artifacts(f"runs:/{run.info.run_id}/model/requirements.txt")).read().splitlines()
    ours = [r for r in reqs if r.replace("_", "-").startswith("softmax-spark")]
    assert ours == [mlflow_support.requirement()], reqs
    assert any(r.startswith("pyspark==") for r in reqs) and any(r.startswith("numpy==") for r in reqs)


def test_autolog_auto_solver_and_sgd_params(spark, data, store):
    from softmax_spark.sparkml import mlflow_support
    from softmax_spark.sparkml.classification import SoftmaxRegression

    mlflow_support.autolog(log_datasets=False, log_post_training_metrics=False, log_models=False)
    with mlflow.start_run() as run:
        SoftmaxRegression(regParam=0.01, solver="sgd", maxIter=5).fit(data)
    params = mlflow.get_run(run.info.run_id).data.params
    assert {"batchFraction", "momentum", "schedule"} <= set(params)
    assert "lbfgsMemory" not in params and params["resolvedSolver"] == "sgd"
    with mlflow.start_run() as run:
        SoftmaxRegression(regParam=0.01, solver="lbfgs", maxIter=5).fit(data)
    params = mlflow.get_run(run.info.run_id).data.params
    assert "lbfgsMemory" in params and "gtol" in params and "batchFraction" not in params


def test_plain_mlflow_autolog_skips_our_model_without_the_helper(spark, data, store):
    """What the helper fixes: MLflow's own autolog does not log a model outside its allowlist."""
    import mlflow.pyspark.ml

    from softmax_spark.sparkml.classification import SoftmaxRegression

    mlflow.pyspark.ml.autolog(log_datasets=False, log_post_training_metrics=False)
    try:
        with mlflow.start_run() as run:
            SoftmaxRegression(regParam=0.01, maxIter=5).fit(data)
        artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
        assert "model" not in artifacts
    finally:
        mlflow.pyspark.ml.autolog(disable=True)


def test_requirement_is_a_direct_reference_for_a_local_install():
    from importlib import metadata

    from softmax_spark.sparkml import mlflow_support

    line = mlflow_support.requirement()
    dist = metadata.distribution("softmax_spark")
    if dist.read_text("direct_url.json"):
        assert line.startswith("softmax-spark @ ")
    else:
        assert line == f"softmax-spark=={dist.version}"
