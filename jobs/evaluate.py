"""Score Parquet data with a saved softmax model and evaluate it.

    spark-submit jobs/evaluate.py --model-dir M --input P --output O [--metrics-out F]
                                  [--config conf/evaluate.yaml] [...]
    python jobs/evaluate.py ...   (the same, in local mode)

Every path may be a local path or a URI the Spark session's Hadoop FileSystem reaches (hdfs://,
s3a://, viewfs://, …). Settings come from the flags and, optionally, a YAML file (--config) with the same keys as the
flags without "--" (e.g. ``model-dir: M``); flags override the file. Exit codes: 0 success,
2 bad input or settings (the last line on stderr is ``error: <message>``), 1 anything else.
See softmax_spark/evaluation.py for what is written.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # spark-submit runs this file by path: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.jobs_common import run_job  # noqa: E402


def precheck(cfg) -> None:
    """A bad local model directory, or an existing local output without --overwrite, fails
    before Spark starts (a URI such as hdfs:// or viewfs:// is checked once the session runs)."""
    from softmax_spark import storage
    from softmax_spark.errors import InputError
    from softmax_spark.model_io import load_model

    if storage.is_local(cfg.model_dir):
        load_model(cfg.model_dir)
    if cfg.output and storage.is_local(cfg.output) and not cfg.overwrite and storage.exists(cfg.output):
        raise InputError(f"output {storage.qualify(cfg.output)} already exists; pass --overwrite to replace it")


def run(spark, cfg) -> int:
    from softmax_spark.evaluation import run as evaluate

    print(evaluate(spark, cfg).report())
    return 0


def main(argv=None, spark=None) -> int:
    from softmax_spark.config import EvaluateConfig

    return run_job("softmax_spark-evaluate", EvaluateConfig, run, argv, description=__doc__, spark=spark,
                   precheck=precheck)


if __name__ == "__main__":
    sys.exit(main())
