"""Building the SparkSession for jobs and tests (one place that knows the defaults we rely on)."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import sys
import tempfile

from softmax_spark.spark.backend import backend_for

# Python workers (and the driver's collect) talk to the JVM over Unix domain sockets instead of
# loopback TCP (Spark ≥ 4.1; an unknown key is ignored by older versions). Measured on 2 cores,
# local[2]: ≈ 40 ms less per task — a trivial task's start went from 77 to 35 ms — which is most
# of a distributed pass on small data (bench/results, the ``solvers`` workload).
UDS_KEY = "spark.python.unix.domain.socket.enabled"
# In that mode PySpark authenticates nothing (no secret: a socket file's permissions are the only
# guard), and the files land in java.io.tmpdir with umask permissions. So the mode is turned on by
# us only in local mode, with a private 0700 directory of this process (Spark 4.x
# ``PYTHON_UNIX_DOMAIN_SOCKET_DIR``), removed at exit. On a cluster the executors would need that
# directory on every host, so there the mode stays off unless the user turns it on.
UDS_DIR_KEY = "spark.python.unix.domain.socket.dir"
LOG_LEVEL_KEY = "spark.log.level"  # Spark ≥ 3.5: the log level from the SparkContext's start
DAEMON_MODULE_KEY = "spark.python.daemon.module"  # Spark ≥ 3.1
WORKER_DAEMON = "softmax_spark.worker_daemon"
_SUBMITTED = None  # _submitted_conf's SparkConf, read once



def _submitted_conf():
    """spark-submit's properties (--conf, --properties-file, spark-defaults.conf) as a SparkConf
    read from its JVM, or None outside spark-submit (``PYSPARK_GATEWAY_PORT`` unset). The JVM is
    up already; PySpark connects to it on the first SparkContext — a ``SparkConf()`` made before
    that connection holds none of them, which made ``_user_set`` answer False to every key."""
    global _SUBMITTED
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return None
    if _SUBMITTED is None:  # spark-submit's properties do not change during the process
        from pyspark import SparkConf, SparkContext

        SparkContext._ensure_initialized()  # connects to spark-submit's gateway; starts no JVM
        _SUBMITTED = SparkConf()
    return _SUBMITTED


def _user_set(key: str) -> bool:
    """Whether spark-submit (--conf, --properties-file, spark-defaults.conf) already set ``key``.

    Under spark-submit its JVM's properties are asked (``_submitted_conf``); from plain Python
    only ``PYSPARK_SUBMIT_ARGS`` is looked at — asking a ``SparkConf`` there would start the JVM
    before the builder's settings (e.g. spark.driver.memory) reach it."""
    submitted = _submitted_conf()
    if submitted is not None:
        return submitted.contains(key)
    return key in os.environ.get("PYSPARK_SUBMIT_ARGS", "")


def _master(master: str | None) -> str:
    """The master the SparkContext about to start will have: ``master``, else spark-submit's,
    else ``PYSPARK_SUBMIT_ARGS``'s ``--master``, else "" (unknown) when ``MASTER`` or
    ``SPARK_CONF_DIR`` is set (the launcher reads them), else PySpark's default local[*]."""
    if master is not None:
        return master
    submitted = _submitted_conf()
    if submitted is not None:
        return submitted.get("spark.master", "")
    found = re.search(r"--master[ =](\S+)", os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    if found:
        return found.group(1)
    if os.environ.get("MASTER") or os.environ.get("SPARK_CONF_DIR"):
        return ""  # the launcher reads these too: unknown here
    return "local[*]"


def _importable_in_a_fresh_process() -> bool:
    """Whether a new process of this interpreter finds this ``softmax_spark`` package: it lies in
    a site-packages directory or on ``PYTHONPATH``, or an editable install's import finder (set
    up at start-up by its .pth file) serves it. A source checkout that a job script put on
    ``sys.path`` (``jobs/*.py`` run by path) is not."""
    import site

    parent = os.path.realpath(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if not os.path.isdir(os.path.join(parent, "softmax_spark")):  # e.g. from a zip on --py-files
        return False
    roots = list(site.getsitepackages()) + [site.getusersitepackages()]
    roots += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if parent in {os.path.realpath(p) for p in roots}:
        return True
    for finder in sys.meta_path:
        if getattr(finder, "__module__", "").startswith("__editable__") and hasattr(finder, "find_spec"):
            spec = finder.find_spec("softmax_spark", None)
            locations = list(getattr(spec, "submodule_search_locations", None) or [])
            if locations and os.path.realpath(os.path.dirname(locations[0])) == parent:
                return True
    return False


def _pip_pyspark_dir() -> str | None:
    """The installed ``pyspark`` package directory when it holds ``python/lib/pyspark.zip``
    (pip's layout), whether this process imported pyspark from it or — under spark-submit —
    from that zip; else None."""
    import pyspark

    from softmax_spark.spark.pyspark_install import installed_pyspark_of

    here = os.path.dirname(os.path.abspath(pyspark.__file__))  # <pkg>, or <pkg>/python/lib/pyspark.zip/pyspark
    for zipped in (os.path.join(here, "python", "lib", "pyspark.zip"), os.path.dirname(here)):
        package = installed_pyspark_of(zipped)
        if package is not None and os.path.isfile(zipped):
            return package
    return None


def worker_daemon_settings(master: str | None) -> dict:
    """``{spark.python.daemon.module: softmax_spark.worker_daemon}`` (see that module: PySpark's
    daemon without compiling pyspark.zip, ≈ 0.5 s off every job's first tasks) when it is safe:
    local mode (``master``: see ``_master``), the Python workers run this interpreter (the same
    path: another venv of the same base Python lacks this package), PySpark
    is pip's (its ``python/lib/pyspark.zip`` inside the installed package, ``SPARK_HOME`` unset
    or that package), the user did not choose a daemon module, and a fresh process of this
    interpreter imports this package (``_importable_in_a_fresh_process``). Else ``{}``."""
    chosen = _master(master)
    if not (chosen == "local" or chosen.startswith("local[")):
        return {}
    python = os.environ.get("PYSPARK_PYTHON", sys.executable)
    # by path, not by resolved symlinks: a venv's python links to its base interpreter
    if os.path.abspath(shutil.which(python) or python) != os.path.abspath(sys.executable):
        return {}
    home = _pip_pyspark_dir()
    spark_home = os.environ.get("SPARK_HOME")
    if home is None or (spark_home and os.path.realpath(spark_home) != os.path.realpath(home)):
        return {}
    if _user_set(DAEMON_MODULE_KEY) or not _importable_in_a_fresh_process():
        return {}
    return {DAEMON_MODULE_KEY: WORKER_DAEMON}


def _local_master(master: str | None) -> bool:
    """Whether the SparkContext about to start runs its executors on this machine (``_master``:
    local, local[N], local[N,F], local-cluster[…])."""
    return _master(master).startswith("local")


def private_socket_dir() -> str:
    """A new directory for PySpark's Unix socket files, mode 0700 whatever the umask (only this
    user can connect to the sockets in it), removed when this process exits. Short (AF_UNIX
    paths hold at most 107 bytes): ``<tempdir>/softmax_spark-sock-<8 random chars>``."""
    path = tempfile.mkdtemp(prefix="softmax_spark-sock-")
    os.chmod(path, 0o700)
    atexit.register(shutil.rmtree, path, True)
    return path


def _classic_mode(settings: dict) -> bool:
    """Whether the SparkSession builder, given ``settings``, would build a classic session — as
    PySpark 4's ``getOrCreate`` decides: not with ``spark.remote`` or the Connect environment
    variables, and ``spark.api.mode`` (or ``SPARK_API_MODE``; else ``SPARK_CONNECT_MODE`` or an
    installed ``pyspark_connect``) "classic"."""
    if "spark.remote" in settings or os.environ.get("SPARK_CONNECT_MODE_ENABLED") or os.environ.get("SPARK_REMOTE"):
        return False
    mode = str(settings.get("spark.api.mode", os.environ.get("SPARK_API_MODE", ""))).lower()
    if mode not in ("classic", "connect"):
        try:
            from pyspark.util import default_api_mode
        except ImportError:  # PySpark < 4: classic only
            return True
        mode = default_api_mode()
    return mode == "classic"


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
    session's. ``stop()`` (or leaving a ``with`` block) stops the session, or the context when no
    session was started; after it no session starts.
    """

    def __init__(self, context, builder):
        import threading

        self.sparkContext = context
        self._builder = builder
        self._session = None
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether the SparkSession has been started."""
        return self._session is not None

    def session(self):
        """The SparkSession, started now if it was not. Raises ``RuntimeError`` after ``stop()``
        (a new session would start a new SparkContext)."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this LazySession was stopped")
            if self._session is None:
                self._session = self._builder.getOrCreate()
            return self._session

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            (self._session if self._session is not None else self.sparkContext).stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_session", "_builder", "_lock", "_stopped", "sparkContext"):
            raise AttributeError(name)
        return getattr(self.session(), name)


def build_session(app_name: str, master: str | None = None, conf: dict | None = None,
                  log_level: str | None = "WARN", lazy: bool = False):
    """A SparkSession whose Python workers use this interpreter.

    ``master`` None keeps what spark-submit set (or local[*] when run as plain python).
    Unless the caller or spark-submit set it, ``spark.python.unix.domain.socket.enabled`` is
    turned on in local mode (``UDS_KEY``: the per-task cost measured above), with
    ``spark.python.unix.domain.socket.dir`` a private 0700 directory (``private_socket_dir``)
    unless set, and ``spark.log.level`` is
    ``log_level`` (``LOG_LEVEL_KEY``: a train job's start-up printed 42 INFO lines without it, 3
    with it).

    When this call starts a classic SparkContext in local mode, ``spark.python.daemon.module``
    is ``softmax_spark.worker_daemon`` where that is safe (``worker_daemon_settings``).

    ``lazy``: when this call starts a classic SparkContext (not on Spark Connect), return a
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
    if (not remote and UDS_KEY not in conf and hasattr(socket, "AF_UNIX") and not _user_set(UDS_KEY)
            and _local_master(master)):
        conf[UDS_KEY] = "true"
    if (str(conf.get(UDS_KEY, "")).lower() == "true" and UDS_DIR_KEY not in conf and not _user_set(UDS_DIR_KEY)
            and _local_master(master) and SparkContext._active_spark_context is None):
        conf[UDS_DIR_KEY] = private_socket_dir()  # never java.io.tmpdir with umask permissions
    if log_level and not remote and LOG_LEVEL_KEY not in conf and not _user_set(LOG_LEVEL_KEY):
        # from the context's first line: setLogLevel below comes after ~40 INFO lines of start-up
        conf[LOG_LEVEL_KEY] = log_level
    settings.update(conf)
    classic = not remote and _classic_mode(settings) and SparkContext._active_spark_context is None
    if classic and DAEMON_MODULE_KEY not in settings:
        settings.update(worker_daemon_settings(settings.get("spark.master")))
    builder = SparkSession.builder
    if remote:  # spark-submit --remote sc://…: a Spark Connect session (connect_backend)
        builder = builder.remote(remote)
    for key, value in settings.items():
        builder = builder.config(key, value)
    if lazy and classic:
        # the builder's own first step (SparkConf from its options → SparkContext.getOrCreate)
        context = SparkContext.getOrCreate(SparkConf().setAll(list(settings.items())))
        if log_level:
            context.setLogLevel(log_level)
        return LazySession(context, builder)
    session = builder.getOrCreate()
    if log_level and backend_for(session).has_jvm:  # a Connect session's log level is the server's
        # Spark's INFO lines would bury the one line per iteration that users watch
        session.sparkContext.setLogLevel(log_level)
    return session
