"""The Estimator on the test suite's standalone cluster whose executors lack the package: it ships
itself (``shipping.ensure_workers``: probe → ``addPyFile`` → probe), fits on the executors and in
the driver, and transforms. One driver process, started like a notebook's (plain Python, own
SparkSession; spark-submit only launches it)."""

from __future__ import annotations

import os
import shutil

import pytest

from cluster import REPO, ExecutorVenvError, StandaloneCluster, executor_python, spark_submit

DRIVER = '''
import sys
sys.path.insert(0, {repo!r})  # this checkout, not an installed copy
import numpy as np
from pyspark.sql import SparkSession
from pyspark.ml.feature import VectorAssembler
from softmax_spark.sparkml.classification import SoftmaxRegression

spark = SparkSession.builder.getOrCreate()
rng = np.random.default_rng(1)
X = rng.normal(size=(400, 3)); y = (X[:, 0] + rng.normal(size=400) > 0).astype(float) + (X[:, 1] > 0.5)
df = spark.createDataFrame([(*map(float, r), float(k)) for r, k in zip(X, y)], ["a", "b", "c", "label"])
df = VectorAssembler(inputCols=["a", "b", "c"], outputCol="features").transform(df).repartition(2)
spread = SoftmaxRegression(regParam=0.01, maxDriverBytes=0).fit(df)
held = SoftmaxRegression(regParam=0.01).fit(df)
rows = spread.transform(df).select("prediction").collect()
found = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("softmax_spark").__file__).collect()[0]
diff = float(np.abs(spread.coefficientMatrix.toArray() - held.coefficientMatrix.toArray()).max())
print(f"SHIPPED {{found}} ROWS {{len(rows)}} DIFF {{diff:.3g}}")
'''


@pytest.mark.slow
def test_the_estimator_ships_itself_to_executors_without_the_package(tmp_path):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java on this machine")
    try:
        python = executor_python()
    except ExecutorVenvError as exc:
        pytest.skip(f"cannot build the executor venv: {exc}")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(repo=str(REPO)))
    with StandaloneCluster(tmp_path / "standalone", workers=2, cores=1, memory="1g") as cluster:
        done = spark_submit(script, [], cluster.url, {"spark.executor.cores": "1", "spark.cores.max": "2",
                                                      "spark.executor.memory": "1g"},
                            log=tmp_path / "driver.log", timeout=600, executor_python_path=python)
    assert done.returncode == 0, done.stdout[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("SHIPPED"))
    assert "softmax_spark.zip" in line and " ROWS 400 " in line, line
    assert float(line.rsplit(" ", 1)[1]) < 1e-8, line
