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

import os
import sys

if __package__ in (None, ""):  # spark-submit runs this file by path: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.jobs_common import run_job  # noqa: E402


def precheck(cfg) -> None:
    """A bad model directory fails before Spark starts."""
    from softmax_spark.model_io import load_model

    load_model(cfg.model_dir)


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
