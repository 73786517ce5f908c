"""What every job's ``main`` shares: parse, build the session, ship the package, run, map
errors to exit codes (0 success, 2 bad input or configuration, 1 anything else)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import traceback
import zipfile

from .errors import DivergenceError, InputError, NoProgressError

__all__ = ["run_job", "ship_package"]


_SHIPPED: dict = {}  # applicationId → the zip shipped to that SparkContext


def ship_package(spark) -> str:
    """Zip this ``softmax_spark`` package (its ``.py`` files, no ``__pycache__``) and
    ``addPyFile`` it, so executors whose Python lacks the package (a plain cluster whose Python
    has numpy, pyarrow and threadpoolctl; scipy, yaml, pandas and matplotlib are used on the
    driver only) can run our task code. Once per SparkContext; the zip is removed at exit.

    Returns the zip's local path."""
    context = spark.sparkContext
    key = context.applicationId
    if key in _SHIPPED:
        return _SHIPPED[key]
    package_dir = os.path.dirname(os.path.abspath(__file__))
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
    context.addPyFile(archive)
    _SHIPPED[key] = archive
    return archive


def run_job(app_name: str, config_cls, run, argv=None, description: str = "", spark=None,
            precheck=None) -> int:
    """Parse ``argv`` into ``config_cls``; ``precheck(cfg)`` when given (checks that need no
    Spark, before any session starts); then ``run(spark, cfg)``. A given ``spark`` session
    (tests, notebooks), or one already running in this process, is used and left running;
    otherwise one is built, and stopped before the error line so that line stays the last one."""
    from .config import parse_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # py4j logs "Closing down clientserver connection" at exit, after the job's last line
    logging.getLogger("py4j").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    session = None  # the session this job built: it stops it
    try:
        try:
            cfg = parse_config(config_cls, argv, prog=app_name, description=description)
            if precheck is not None:
                precheck(cfg)
            if spark is None:
                from pyspark import SparkContext

                from .session import build_session

                owns_context = SparkContext._active_spark_context is None
                spark = build_session(app_name)
                session = spark if owns_context else None
                ship_package(spark)
            return run(spark, cfg)
        finally:
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
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        return 1


def _stop(session) -> None:
    if session is not None:
        try:
            session.stop()
        except Exception:  # noqa: BLE001 - the job's outcome is already decided
            logging.getLogger("softmax_spark").warning("stopping the Spark session failed", exc_info=True)
