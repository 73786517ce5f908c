"""What every job's ``main`` shares: parse, check what needs no data, build the session, ship
the package, run, map errors to exit codes (0 success, 2 bad input or configuration, 1 anything
else) with one last line ``error: <cause>``.

The parts, one module each: the fail-fast checks (``cli.checks``), path detection
(``io.driver_paths``), failures → one line (``cli.failures``), console logging (``cli.console``),
package shipping and worker warm-up (``spark.shipping``). Their names stay importable from here.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import traceback

from softmax_spark.cli.checks import (check_input_exists, check_input_reachable, check_not_exists,  # noqa: F401
                                      check_parquet_columns)
from softmax_spark.cli.failures import _last_resort, describe_failure
from softmax_spark.core.errors import DivergenceError, InputError, NoProgressError
from softmax_spark.io.console import use_console
from softmax_spark.io.driver_paths import GLOB_CHARS as _GLOB_CHARS  # noqa: F401 - its name before the split
from softmax_spark.io.driver_paths import spark_local_path as local_path  # noqa: F401 - its name before the split
from softmax_spark.spark.backend import backend_for
from softmax_spark.spark.shipping import ship_package, warm_workers

__all__ = ["run_job", "ship_package", "local_path", "check_input_exists", "check_not_exists",
           "check_parquet_columns", "check_input_reachable", "describe_failure"]

log = logging.getLogger("softmax_spark")


def _preload(modules) -> "threading.Thread | None":
    """Import ``modules`` in a background thread (numpy, scipy and our solvers take ~1 s of CPU)
    while the main thread waits on the JVM starting the SparkContext; joined before ``run``.
    An import that fails here is ignored: ``run`` imports it again and reports it."""
    if not modules:
        return None
    import importlib
    import threading

    def load():
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - run() imports it again and says why
                pass

    thread = threading.Thread(target=load, name="softmax_spark-preload", daemon=True)
    thread.start()
    return thread


def run_job(app_name: str, config_cls, run, argv=None, description: str = "", spark=None,
            precheck=None, postcheck=None, preload=(), worker_modules=()) -> int:
    """Parse ``argv`` into ``config_cls``; ``precheck(cfg)`` when given (checks that need no
    Spark, before any session starts); ``postcheck(spark, cfg)`` when given (checks only Spark
    can answer, right after the SparkContext starts; the SparkSession itself starts on first
    use); then ``run(spark, cfg)``. A given ``spark``
    session (tests, notebooks), or one already running in this process, is used and left
    running; otherwise one is built, and stopped before the error line so that line stays the
    last one. A failure inside Spark that ``describe_failure`` recognises ends with its one line
    and no stack trace (exit 2 for bad input, 1 otherwise). ``preload``: module names that
    ``run`` will import, imported in the background while the session starts.
    ``worker_modules``: what ``run``'s tasks import, imported in the executors' Python workers
    by a background job right after a session built here starts (``warm_workers``)."""
    from softmax_spark.fit.config import parse_config


    use_console()  # our INFO lines on stdout as ``softmax_spark: …``; no root handler (no duplicates)
    # py4j logs "Closing down clientserver connection" at exit, after the job's last line
    logging.getLogger("py4j").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    session = None  # the session this job built: it stops it
    warmer = None  # the background warm-up job's thread (warm_workers)
    try:
        try:
            cfg = parse_config(config_cls, argv, prog=app_name, description=description)
            if precheck is not None:
                precheck(cfg)
            loader = None
            if spark is None:
                from pyspark import SparkContext
                from pyspark.sql import SparkSession  # noqa: F401 - before the preload thread starts

                from softmax_spark.spark.session import build_session

                loader = _preload(preload)
                owns_context = SparkContext._active_spark_context is None
                spark = build_session(app_name, lazy=True)  # the SparkSession starts on first use
                session = spark if owns_context else None
                ship_package(spark)
                warmer = warm_workers(spark, worker_modules)
            if postcheck is not None:
                postcheck(spark, cfg)
            if loader is not None:
                loader.join()
            code = run(spark, cfg)
            if session is not None and code == 0 and _jvm_stops_context():
                if backend_for(session).has_jvm:  # a Connect client has no JVM of its own to stop it
                    _leave_stop_to_jvm(session)
                    session = None
            return code
        finally:
            if session is not None and warmer is not None:
                warmer.join(30)  # a failure right after the start: no warm-up task killed by the stop
            _stop(session)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except DivergenceError as exc:  # not a bug: the message says what to change, no traceback
        print(f"error: training diverged: {exc}", file=sys.stderr, flush=True)
        return 1
    except NoProgressError as exc:  # likewise: the solver says why it could not start
        print(f"error: training made no progress: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the job's last line must say what failed
        try:
            known = describe_failure(exc)
        except Exception:  # noqa: BLE001 - e.g. the JVM behind the exception is gone
            known = None
        if known is not None:  # Spark's own log above already holds the stack traces
            code, message = known
            print(f"error: {message}", file=sys.stderr, flush=True)
            return code
        traceback.print_exc()
        try:
            last = _last_resort(exc)
        except Exception:  # noqa: BLE001
            last = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        print(f"error: {last}", file=sys.stderr, flush=True)
        return 1


def _jvm_stops_context() -> bool:
    """Whether this process runs under ``spark-submit``, whose JVM stops the SparkContext in its
    shutdown hook once the Python driver exits (as any PySpark script without ``stop()``).

    A finished job then leaves the stop to that hook: PySpark's ``SparkSession.stop()`` waits for
    its accumulator server's polling thread (1 s poll) and took 0.97 s of the job's wall time
    (median of 2, local[2]), the hook 0.1 s; ``_leave_stop_to_jvm`` removes the one file the
    hook leaves. A failed job (an exception or a non-zero code) still stops first, so that its
    error line stays the last one."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def _leave_stop_to_jvm(session) -> None:
    """What ``SparkSession.stop()`` would do that the JVM's shutdown hook does not: remove the
    Unix socket file of PySpark's accumulator server (``spark.python.unix.domain.socket.enabled``),
    here at this process's exit. Without it every job would leave a ``.<uuid>.sock`` behind in
    ``spark.python.unix.domain.socket.dir`` (default: java.io.tmpdir)."""
    server = getattr(session.sparkContext, "_accumulatorServer", None)  # pyspark's own attribute
    path = getattr(server, "server_address", None)
    if isinstance(path, str) and path:  # a TCP server's address is a tuple: nothing to remove

        def remove():
            try:
                os.remove(path)
            except OSError:
                pass

        atexit.register(remove)


def _stop(session) -> None:
    if session is not None:
        try:
            session.stop()
        except Exception:  # noqa: BLE001 - the job's outcome is already decided
            logging.getLogger("softmax_spark").warning("stopping the Spark session failed", exc_info=True)


