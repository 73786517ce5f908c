"""Issue 29, day one in a notebook: the Estimator ships itself (``shipping``), fits small data in
the driver (``driver_data``) and is quiet by default (``fit_output``)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from helpers import make_data


def _frame(spark, n=600, d=4, c=3, seed=3):
    from pyspark.ml.linalg import Vectors

    X, y = make_data(n=n, d=d, c=c, seed=seed)
    return spark.createDataFrame([(Vectors.dense(row.tolist()), float(k)) for row, k in zip(X, y)],
                                 ["features", "label"])


def test_small_data_fitted_in_the_driver_equals_the_executors_fit(spark, capsys):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _frame(spark)
    held = SoftmaxRegression(regParam=0.01).fit(df)
    spread = SoftmaxRegression(regParam=0.01, maxDriverBytes=0).fit(df)
    meta = held.softmaxModel.metadata
    # createDataFrame's rows have no size estimate and a vector without ML metadata no known
    # width: such a set is ingested as before; VectorAssembler's output (below) has both
    assert meta["data_summary"]["partitions"] >= 1
    assert np.allclose(held.coefficientMatrix.toArray(), spread.coefficientMatrix.toArray(), atol=1e-8)


def test_assembled_small_data_is_held_in_the_driver(spark):
    from pyspark.ml.feature import VectorAssembler

    from softmax_spark.sparkml.classification import SoftmaxRegression

    X, y = make_data(n=500, d=3, c=3, seed=4)
    df = spark.createDataFrame([(*map(float, row), float(k)) for row, k in zip(X, y)], ["a", "b", "c", "label"])
    df = VectorAssembler(inputCols=["a", "b", "c"], outputCol="features").transform(df)
    held = SoftmaxRegression(regParam=0.01).fit(df)
    spread = SoftmaxRegression(regParam=0.01, maxDriverBytes=0).fit(df)
    assert held.softmaxModel.metadata["data_summary"]["partitions"] == 1  # the driver's one block
    assert np.allclose(held.coefficientMatrix.toArray(), spread.coefficientMatrix.toArray(), atol=1e-8)
    assert np.allclose(held.interceptVector.toArray(), spread.interceptVector.toArray(), atol=1e-8)


def test_a_fit_prints_one_summary_line_and_verbose_the_iterations(spark, capsys):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    df = _frame(spark, n=300)
    SoftmaxRegression(regParam=0.01).fit(df)
    quiet = [line for line in capsys.readouterr().out.splitlines() if line.startswith("softmax_spark")]
    assert len(quiet) == 1 and "SoftmaxRegression fit:" in quiet[0], quiet
    SoftmaxRegression(regParam=0.01, verbose=True).fit(df)
    loud = [line for line in capsys.readouterr().out.splitlines() if line.startswith("softmax_spark")]
    assert any("iter" in line for line in loud) and len(loud) > 3, loud


def test_the_debug_level_shows_the_iterations(spark, capsys):
    from softmax_spark.sparkml.classification import SoftmaxRegression

    logger = logging.getLogger("softmax_spark")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        SoftmaxRegression(regParam=0.01).fit(_frame(spark, n=300))
    finally:
        logger.setLevel(level)
    out = capsys.readouterr().out
    assert "iter" in out and "SoftmaxRegression fit:" in out


def test_cross_validator_in_parallel_prints_no_iteration_lines(spark, capsys):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from softmax_spark.sparkml.classification import SoftmaxRegression

    sm = SoftmaxRegression()
    grid = ParamGridBuilder().addGrid(sm.regParam, [0.01, 0.1]).build()
    CrossValidator(estimator=sm, estimatorParamMaps=grid, numFolds=2, parallelism=2, seed=1,
                   evaluator=MulticlassClassificationEvaluator(metricName="logLoss")).fit(_frame(spark, n=300))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("softmax_spark")]
    assert lines and all(line.startswith("softmax_spark: SoftmaxRegression fit:") for line in lines), lines


def test_workers_python_swaps_and_restores_the_python_of_wrapped_functions(spark):
    from softmax_spark.spark import shipping

    sc = spark.sparkContext
    key = (sc.applicationId, shipping._version())
    before, saved = sc.pythonExec, shipping._READY.get(key, "absent")
    shipping._READY[key] = sys.executable
    try:
        with shipping.workers_python(spark):
            with shipping.workers_python(spark):  # nested (CrossValidator's threads): restored once
                assert sc.pythonExec == sys.executable
            assert sc.pythonExec == sys.executable
        assert sc.pythonExec == before
    finally:
        if saved == "absent":
            shipping._READY.pop(key, None)
        else:
            shipping._READY[key] = saved


def test_a_python_without_pyarrow_is_one_line():
    from softmax_spark.core.errors import InputError
    from softmax_spark.spark.shipping import _check_probe

    with pytest.raises(InputError, match=r"cannot import pyarrow .*spark.pyspark.python"):
        _check_probe({"python": "/usr/bin/python3", "numpy": "2.0", "pyarrow": None, "threadpoolctl": "3",
                      "pyarrow_error": "ModuleNotFoundError: No module named 'pyarrow'"}, "python3")


NO_PYSPARK_PYTHON_SCRIPT = r"""
import numpy as np
from pyspark.sql import SparkSession
from pyspark.ml.linalg import Vectors
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 3)); y = (X @ rng.normal(size=(3, 3)).T + rng.gumbel(size=(300, 3))).argmax(1)
df = spark.createDataFrame([(Vectors.dense(x), float(c)) for x, c in zip(X, y)], ["features", "label"])
from softmax_spark.sparkml.classification import SoftmaxRegression
from softmax_spark import SoftmaxTrainer
from softmax_spark.spark.sql import register
model = SoftmaxRegression(regParam=0.0, maxDriverBytes=0).fit(df)          # through the executors
assert model.summary.coefficientTable(referenceClass=0).count() == 8       # (C-1) x (D+1) rows
assert SoftmaxTrainer(l2=1e-3).fit(df).coef.shape == (3, 3)
register(spark, model, "sm"); df.createOrReplaceTempView("points")
assert spark.sql("SELECT sm(features) AS p FROM points").count() == 300
from softmax_spark import score_dataframe
assert score_dataframe(df, model.softmaxModel, featuresCol="features").filter("prediction >= 0").count() == 300
print("OK")
"""


@pytest.mark.slow
def test_every_entry_point_works_without_pyspark_python(tmp_path):
    """A user's own SparkSession with PYSPARK_PYTHON unset (the workers start the ``python3`` on
    PATH, which lacks this package): the Estimator's fit, coefficient inference, the plain
    ``SoftmaxTrainer``, the SQL functions and ``score_dataframe`` all run their tasks on this interpreter. Inference
    and the plain API once failed there with ``No module named 'softmax_spark'``."""
    import os
    import subprocess

    script = tmp_path / "user.py"
    script.write_text(NO_PYSPARK_PYTHON_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"  # python3 here is not this venv's
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
