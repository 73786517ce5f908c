"""Make the Python workers able to run our task code before an Estimator's Spark jobs start.

A notebook user builds their own SparkSession and calls ``SoftmaxRegression.fit`` /
``SoftmaxRegressionModel.transform``; nothing says which Python Spark's workers run or whether it
has this package. What PySpark does (``SparkContext.__init__``: ``pythonExec =
$PYSPARK_PYTHON or "python3"``; every Python function wrapped for a job carries ``sc.pythonExec``,
``pyspark.core.rdd._wrap_function`` / ``pyspark.sql.udf._wrap_function``):

- local mode, ``PYSPARK_PYTHON`` unset: the workers run whatever ``python3`` is first on ``PATH``
  — for a venv that was not activated, the system's, which may lack numpy and pyarrow (here:
  numpy yes, pyarrow no) and lacks this package. Local workers run on this machine, so the
  driver's own interpreter is always there and has everything: ``workers_python`` points our
  jobs (and only ours, while they are wrapped) at ``sys.executable``.
- a cluster, or a Python the user chose: we cannot see the executors' Python from here, so a
  small probe job (once per SparkContext and package version) asks it; when it cannot import
  this package, or imports another version, the package is zipped and ``addPyFile``'d
  (``jobs_common.ship_package``, which the jobs use) and the probe runs again; when the
  executors' Python lacks numpy or pyarrow (which no zip can bring) ``InputError`` says so in one
  line.

Spark Connect: the package is shipped as an artifact (no SparkContext to probe or point).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import zipfile

from softmax_spark.version import __version__
from softmax_spark.core.errors import InputError
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.session import _importable_in_a_fresh_process

__all__ = ["ensure_workers", "workers_python", "our_tasks", "WORKER_REQUIREMENTS"]

log = logging.getLogger("softmax_spark")

# what our task code imports in the workers (ingest, passes, scoring); the zip cannot bring them
WORKER_REQUIREMENTS = ("numpy", "pyarrow", "threadpoolctl")

_lock = threading.Lock()
_READY: dict = {}  # (applicationId, version) → the Python our jobs' workers run (None: sc.pythonExec)
_overrides = {"count": 0, "saved": None}  # across threads: swap sc.pythonExec once, restore at the last exit


def _version() -> str:
    return __version__


def _is_local(sc) -> bool:
    master = sc.master or ""
    return master == "local" or master.startswith("local[")


def _python_was_chosen(sc) -> bool:
    """Whether the user chose the workers' Python: ``PYSPARK_PYTHON``, which PySpark read at the
    context's start (spark-submit turns ``spark.pyspark.python`` into it; a plain Python process
    does not, so that conf there leaves PySpark's default ``python3``)."""
    return bool(os.environ.get("PYSPARK_PYTHON")) or sc.pythonExec != "python3"


def _same_python(executable: str) -> bool:
    # by path, not resolved symlinks: a venv's python links to its base interpreter
    found = shutil.which(executable) or executable
    return os.path.abspath(found) == os.path.abspath(sys.executable)


def _probe(sc) -> dict:
    """One task in the executors' Python: which of our imports it finds, and our version."""

    def answer(_):
        import importlib
        import sys as _sys

        out = {"python": _sys.executable, "version": "%d.%d" % _sys.version_info[:2]}
        for name in WORKER_REQUIREMENTS + ("softmax_spark",):
            try:
                module = importlib.import_module(name)
                out[name] = getattr(module, "__version__", "?")
            except Exception as exc:  # noqa: BLE001 - reported to the driver
                out[name] = None
                out[name + "_error"] = f"{type(exc).__name__}: {exc}"
        return [out]

    sc.setJobDescription("softmax_spark: check the executors' Python")
    try:
        return sc.parallelize([0], 1).mapPartitions(answer).collect()[0]
    finally:
        sc.setJobDescription(None)


def _check_probe(found: dict, python: str) -> None:
    missing = [name for name in WORKER_REQUIREMENTS if found.get(name) is None]
    if missing:
        raise InputError(
            f"the executors' Python ({found.get('python') or python}) cannot import {', '.join(missing)} "
            f"({found.get(missing[0] + '_error')}); install {' and '.join(WORKER_REQUIREMENTS)} there, or point "
            "spark.pyspark.python / PYSPARK_PYTHON at a Python that has them (docs/install-and-notebooks.md)")


def ensure_workers(spark) -> None:
    """Make our tasks runnable in ``spark``'s Python workers; once per SparkContext and package
    version (later calls return at once). Local mode with the workers' Python not chosen by the
    user: nothing runs, our jobs use this interpreter (``workers_python``) and the package is
    zipped only when a new process of it cannot import this copy. Otherwise: a probe job; the zip
    is shipped when the workers lack this package or hold another version.

    Raises ``InputError`` (one line) when the workers' Python lacks numpy or pyarrow, or still
    cannot import the package after the zip was added."""
    if not backend_for(spark).has_rdd:  # Spark Connect: the session's artifacts
        ship_package(spark)
        return
    sc = spark.sparkContext
    key = (sc.applicationId, _version())
    with _lock:
        if key in _READY:
            return
        if _is_local(sc) and not _python_was_chosen(sc):
            if not _importable_in_a_fresh_process():
                ship_package(spark)
            _READY[key] = sys.executable
            log.debug("local mode: our Python tasks run %s (PYSPARK_PYTHON unset)", sys.executable)
            return
        python = sc.pythonExec
        if _is_local(sc) and _same_python(python):
            if _importable_in_a_fresh_process():
                _READY[key] = None
                return
        found = _probe(sc)
        _check_probe(found, python)
        if found.get("softmax_spark") != _version():
            log.debug("executors' Python %s: softmax_spark %s; shipping this package (%s)", found.get("python"),
                      found.get("softmax_spark"), _version())
            ship_package(spark)
            found = _probe(sc)
            if found.get("softmax_spark") != _version():
                raise InputError(
                    f"the executors' Python ({found.get('python')}) still imports softmax_spark "
                    f"{found.get('softmax_spark')} ({found.get('softmax_spark_error')}) after this package "
                    f"({_version()}) was added with addPyFile; install softmax_spark {_version()} there or remove "
                    "the other copy")
        _READY[key] = None


@contextlib.contextmanager
def workers_python(spark):
    """While inside, Python functions wrapped for Spark jobs in this SparkContext carry the Python
    ``ensure_workers`` chose (``sc.pythonExec`` swapped, and restored when the last concurrent
    block exits); nothing changes when it chose none or on Spark Connect. A function keeps the
    Python it was wrapped with, so a lazy DataFrame built inside runs with it later too."""
    python = None
    if backend_for(spark).has_rdd:
        sc = spark.sparkContext
        python = _READY.get((sc.applicationId, _version()))
    if python is None:
        yield
        return
    with _lock:
        if _overrides["count"] == 0:
            _overrides["saved"] = sc.pythonExec
            sc.pythonExec = python
        _overrides["count"] += 1
    try:
        yield
    finally:
        with _lock:
            _overrides["count"] -= 1
            if _overrides["count"] == 0:
                sc.pythonExec = _overrides["saved"]


@contextlib.contextmanager
def our_tasks(spark):
    """``ensure_workers(spark)``, then ``workers_python(spark)``: what every entry point that runs
    our Python code on a user's session wraps (the Estimator's fit and transform, the plain
    ``SoftmaxTrainer.fit``, coefficient inference, the SQL functions)."""
    ensure_workers(spark)
    with workers_python(spark):
        yield


_SHIPPED: dict = {}  # applicationId → the zip shipped to that SparkContext


def ship_package(spark) -> str:
    """Zip this ``softmax_spark`` package (its ``.py`` files, no ``__pycache__``) and
    ``addPyFile`` it, so executors whose Python lacks the package (a plain cluster whose Python
    has numpy, pyarrow and threadpoolctl; scipy, yaml, pandas and matplotlib are used on the
    driver only) can run our task code. Once per SparkContext; the zip is removed at exit.

    Returns the zip's local path."""
    connect = not backend_for(spark).has_rdd  # Spark Connect: no SparkContext; the session's artifacts instead
    key = spark.session_id if connect else spark.sparkContext.applicationId
    if key in _SHIPPED:
        return _SHIPPED[key]
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # softmax_spark/
    build = tempfile.mkdtemp(prefix="softmax_spark-pyfiles-")
    atexit.register(shutil.rmtree, build, True)
    archive = os.path.join(build, "softmax_spark.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for directory, subdirs, files in os.walk(package_dir):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in sorted(files):
                if name.endswith(".py"):
                    full = os.path.join(directory, name)
                    zf.write(full, os.path.join("softmax_spark", os.path.relpath(full, package_dir)))
    if connect:
        spark.addArtifacts(archive, pyfile=True)
    else:
        spark.sparkContext.addPyFile(archive)
    _SHIPPED[key] = archive
    return archive


def warm_workers(spark, modules) -> "threading.Thread | None":
    """Import ``modules`` in the executors' Python workers from a background job, one task per
    core (``defaultParallelism``), while the driver goes on with its own set-up (checks, the
    input's footers and labels). The first real job's tasks would otherwise start cold — the
    Python daemon, a fork per core and each worker's imports (numpy, pyarrow, our task code):
    0.98 s for a trivial first job against 0.07 s for the next (local[2]). Reused workers keep
    their imports, and the first job's tasks queue behind these if they come early; with the
    input read from its footers (milliseconds) that is the usual case, so the gain is whatever
    set-up the driver still has: for a local Parquet input none measured (dense 1M × 64 and the
    small 2,000-row set, 2–3 runs each); when Spark itself reads the input it can overlap the
    SparkSession's start-up (≈ 2 s, ``session.LazySession``), not measured. Nothing on
    Spark Connect (no SparkContext); a failure is ignored (the real job meets and reports it)."""
    if not modules or not backend_for(spark).has_rdd:
        return None
    # numpy-level (tasks): imported here, after the session started, not at the job's start-up
    from softmax_spark.spark.tasks import import_task

    sc = spark.sparkContext

    def warm():
        try:
            n = max(1, sc.defaultParallelism)
            sc.setJobDescription("softmax_spark: start the Python workers")
            sc.parallelize(range(n), n).foreachPartition(import_task(modules))
        except Exception:  # noqa: BLE001 - an optimisation only; the real job reports failures
            log.debug("warming the Python workers failed", exc_info=True)

    thread = threading.Thread(target=warm, name="softmax_spark-warm-workers", daemon=True)
    thread.start()
    return thread
