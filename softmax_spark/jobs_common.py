"""What every job's ``main`` shares: parse, build the session, ship the package, run, map
errors to exit codes (0 success, 2 bad input or configuration, 1 anything else)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import traceback

from .errors import DivergenceError, InputError

__all__ = ["run_job", "ship_package"]


def ship_package(spark) -> None:
    """Zip this ``softmax_spark`` package and ``addPyFile`` it, so executors whose Python lacks
    the package (a plain cluster whose Python has numpy, pyarrow and threadpoolctl; scipy, yaml,
    pandas and matplotlib are used on the driver only) can run our task code."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    build = tempfile.mkdtemp(prefix="softmax_spark-pyfiles-")
    base = os.path.join(build, "softmax_spark")
    shutil.make_archive(base, "zip", root_dir=os.path.dirname(package_dir), base_dir="softmax_spark",
                        logger=None)
    spark.sparkContext.addPyFile(base + ".zip")


def run_job(app_name: str, config_cls, run, argv=None, description: str = "", spark=None) -> int:
    """Parse ``argv`` into ``config_cls``, then ``run(spark, cfg)``. A given ``spark`` session
    (tests, notebooks) is used and left running; otherwise one is built and stopped."""
    from .config import parse_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # py4j logs "Closing down clientserver connection" at exit, after the job's last line
    logging.getLogger("py4j").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config(config_cls, argv, prog=app_name, description=description)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    own_session = spark is None
    try:
        if own_session:
            from .session import build_session

            spark = build_session(app_name)
            ship_package(spark)
        return run(spark, cfg)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except DivergenceError as exc:  # not a bug: the message says what to change, no traceback
        print(f"error: training diverged: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the job's last line must say what failed
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        return 1
    finally:
        if own_session and spark is not None:
            spark.stop()
