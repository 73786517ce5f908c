"""Building the SparkSession for jobs and tests (one place that knows the defaults we rely on)."""

from __future__ import annotations

import os
import socket
import sys

# Python workers (and the driver's collect) talk to the JVM over Unix domain sockets instead of
# loopback TCP (Spark ≥ 4.1; an unknown key is ignored by older versions). Measured on 2 cores,
# local[2]: ≈ 40 ms less per task — a trivial task's start went from 77 to 35 ms — which is most
# of a distributed pass on small data (bench/results, the ``solvers`` workload).
UDS_KEY = "spark.python.unix.domain.socket.enabled"
LOG_LEVEL_KEY = "spark.log.level"  # Spark ≥ 3.5: the log level from the SparkContext's start


def _user_set(key: str) -> bool:
    """Whether spark-submit (--conf, --properties-file, spark-defaults.conf) already set ``key``.

    Under spark-submit the JVM is up (``PYSPARK_GATEWAY_PORT``) and its properties are asked;
    from plain Python only ``PYSPARK_SUBMIT_ARGS`` is looked at — asking a ``SparkConf`` there
    would start the JVM before the builder's settings (e.g. spark.driver.memory) reach it."""
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        from pyspark import SparkConf

        return SparkConf().contains(key)
    return key in os.environ.get("PYSPARK_SUBMIT_ARGS", "")


def _submitted_remote() -> str | None:
    """The URL of ``spark-submit --remote`` (handed to Python as JSON in the environment's
    ``PYSPARK_REMOTE_INIT_CONF_<i>``, read by pyspark's Connect builder only), else None."""
    import json

    for i in range(int(os.environ.get("PYSPARK_REMOTE_INIT_CONF_LEN", "0") or 0)):
        try:
            url = json.loads(os.environ.get(f"PYSPARK_REMOTE_INIT_CONF_{i}", "{}")).get("spark.remote")
        except (ValueError, AttributeError):
            continue
        if url:
            return url
    return None


class LazySession:
    """A SparkSession started on first use, over a SparkContext already running.

    A job that reads local Parquet from its footers (``parquet_input``) and writes through
    Hadoop's FileSystem (``storage``) needs the SparkContext only, and the SparkSession's own
    start-up — the SQL layer's JVM initialisation — took 1.9–2.2 s under spark-submit
    (local[2]) against 1.4–1.6 s for the context. ``sparkContext`` answers at once; any other
    attribute starts the session (the builder's ``getOrCreate()``, once, thread-safe) and is the
    session's. ``stop()`` stops the session, or the context when no session was started.
    """

    def __init__(self, context, builder):
        import threading

        self.sparkContext = context
        self._builder = builder
        self._session = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether the SparkSession has been started."""
        return self._session is not None

    def session(self):
        """The SparkSession, started now if it was not."""
        with self._lock:
            if self._session is None:
                self._session = self._builder.getOrCreate()
            return self._session

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()
        else:
            self.sparkContext.stop()

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_session", "_builder", "_lock", "sparkContext"):
            raise AttributeError(name)
        return getattr(self.session(), name)


def build_session(app_name: str, master: str | None = None, conf: dict | None = None,
                  log_level: str | None = "WARN", lazy: bool = False):
    """A SparkSession whose Python workers use this interpreter.

    ``master`` None keeps what spark-submit set (or local[*] when run as plain python).
    Unless the caller or spark-submit set it, ``spark.python.unix.domain.socket.enabled`` is
    turned on (``UDS_KEY``: the per-task cost measured above), and ``spark.log.level`` is
    ``log_level`` (``LOG_LEVEL_KEY``: a train job's start-up printed 42 INFO lines without it, 3
    with it).

    ``lazy``: when this call starts the SparkContext (not on Spark Connect), return a
    ``LazySession`` over it: the SparkSession starts on first use, if any.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    remote = _submitted_remote() if master is None else None
    settings = {"spark.app.name": app_name}
    if master is not None:
        settings["spark.master"] = master
    # Arrow carries the feature batches between the JVM and the Python workers.
    settings["spark.sql.execution.arrow.pyspark.enabled"] = "true"
    conf = dict(conf or {})
    if not remote and UDS_KEY not in conf and hasattr(socket, "AF_UNIX") and not _user_set(UDS_KEY):
        conf[UDS_KEY] = "true"
    if log_level and not remote and LOG_LEVEL_KEY not in conf and not _user_set(LOG_LEVEL_KEY):
        # from the context's first line: setLogLevel below comes after ~40 INFO lines of start-up
        conf[LOG_LEVEL_KEY] = log_level
    settings.update(conf)
    builder = SparkSession.builder
    if remote:  # spark-submit --remote sc://…: a Spark Connect session (connect_backend)
        builder = builder.remote(remote)
    for key, value in settings.items():
        builder = builder.config(key, value)
    connect_env = os.environ.get("SPARK_CONNECT_MODE_ENABLED") or os.environ.get("SPARK_REMOTE")
    if lazy and not remote and not connect_env and SparkContext._active_spark_context is None:
        # the builder's own first step (SparkConf from its options → SparkContext.getOrCreate)
        context = SparkContext.getOrCreate(SparkConf().setAll(list(settings.items())))
        if log_level:
            context.setLogLevel(log_level)
        return LazySession(context, builder)
    session = builder.getOrCreate()
    from .connect_backend import is_connect

    if log_level and not is_connect(session):  # a Connect session's log level is the server's
        # Spark's INFO lines would bury the one line per iteration that users watch
        session.sparkContext.setLogLevel(log_level)
    return session
