"""Score Parquet data with a saved softmax model and evaluate it.

    spark-submit jobs/evaluate.py --model-dir M --input P --output O [--metrics-out F]
                                  [--config conf/evaluate.yaml] [...]
    python jobs/evaluate.py ...   (the same, in local mode)

Settings come from the flags and, optionally, a YAML file (--config) with the same keys as the
flags without "--" (e.g. ``model-dir: M``); flags override the file. Exit codes: 0 success,
2 bad input or settings (the last line on stderr is ``error: <message>``), 1 anything else.
See softmax_spark/evaluation.py for what is written.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import softmax_spark  # noqa: F401
except ImportError:  # spark-submit runs this file by path: put the repository root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Parser(argparse.ArgumentParser):
    """Bad flags become an InputError (exit 2, ``error: …`` as the last line) like bad settings."""

    def error(self, message):
        from softmax_spark.errors import InputError

        raise InputError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """Flags; every value defaults to 'not given' so the config file can fill it."""
    parser = _Parser(
        prog="evaluate.py",
        description="Score Parquet data with a softmax_spark model; write predictions, metrics and plots.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="YAML file of settings (keys as these flags without --)")
    parser.add_argument("--model-dir", help="model directory written by the trainer (required)")
    parser.add_argument("--input", help="input Parquet path (required)")
    parser.add_argument("--output", help="output Parquet path (required)")
    parser.add_argument("--metrics-out", help="metrics JSON path (default <output>.metrics.json)")
    parser.add_argument("--plots-dir", help="directory of PNG plots (default <output>.plots)")
    parser.add_argument("--features-col", help="array/vector feature column (default features)")
    parser.add_argument("--feature-cols", help="comma-separated numeric feature columns, instead of --features-col")
    parser.add_argument("--label-col", help="label column (default label); metrics only when present")
    parser.add_argument("--partition-by", help="comma-separated output columns to partition the output by")
    parser.add_argument(
        "--top-k", help="top-k accuracy: K for k = 1..min(K, classes), or a list like 1,3,10 (default 5)"
    )
    parser.add_argument(
        "--unknown-labels", choices=["error", "ignore"],
        help="a label the model does not know: error (default) or ignore (scored, counted apart from the metrics)",
    )
    parser.add_argument("--prediction-col", help="name of the predicted-label column (default prediction)")
    parser.add_argument("--probability-col", help="name of the probability-array column (default probability)")
    parser.add_argument("--overwrite", action="store_const", const=True, help="replace existing outputs")
    parser.add_argument("--no-plots", action="store_const", const=True, help="write no plots")
    return parser


def main(argv=None) -> int:
    """Run the job; returns the exit code (0 ok, 2 InputError, 1 other failure)."""
    from softmax_spark.errors import InputError

    session = None  # stopped here only if this job created it
    try:
        try:
            flags = vars(build_parser().parse_args(argv))
            from softmax_spark.evaluation import (
                config_from_mapping,
                load_config_file,
                merge_settings,
                run,
                ship_package,
            )
            from softmax_spark.model_io import load_model

            file_settings = load_config_file(flags.pop("config")) if "config" in flags else {}
            cfg = config_from_mapping(merge_settings(file_settings, flags))
            load_model(cfg.model_dir)  # a bad model directory fails before Spark starts

            from pyspark import SparkContext

            from softmax_spark.session import build_session

            owns_context = SparkContext._active_spark_context is None  # else: the caller's session
            spark = build_session("softmax_spark-evaluate")
            if owns_context:
                session = spark
                spark.sparkContext.setLogLevel("WARN")
            ship_package(spark)
            result = run(spark, cfg)
        finally:
            _stop(session)  # before any error line, so that line stays the last one
        print(result.report())
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line says what failed
        import traceback

        traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: {type(exc).__name__}: {first_line}", file=sys.stderr, flush=True)
        return 1


def _stop(session) -> None:
    if session is not None:
        try:
            session.stop()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
