"""One local-mode SparkSession for the whole test session (local[2], small shuffles, no UI)."""

import os
import sys

import pytest

# Python workers must run the same interpreter as the driver (the project's venv).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from softmax_spark.spark.session import build_session

    session = build_session(
        "softmax_spark-tests",
        master="local[2]",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "2g",
            "spark.sql.session.timeZone": "UTC",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _no_resident_tasks_left():
    """Each test leaves no resident tasks holding the session's cores (a fit's end closes them; a
    test that runs ``DistributedLoss`` passes by hand may not), so the next test's first job never
    waits for their idle timeout."""
    yield
    from softmax_spark.spark import resident

    resident.close()


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the SparkSession (the ``spark`` fixture, directly or through
    another fixture) ``spark``, so ``pytest -m "not spark and not slow"`` runs the numpy-only ones
    (the pure core: loss, curvature, solvers, optimizers, formats) without starting a JVM."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
