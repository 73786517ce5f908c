"""spark-submit jobs/train.py --input DATA.parquet --model-dir MODEL [--config conf/train.yaml] [flags]

Trains softmax regression on Spark and writes the model directory. Exit codes: 0 success,
2 bad input or configuration (the message is the last line), 1 anything else.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # spark-submit runs this file by path: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.jobs_common import run_job  # noqa: E402


def run(spark, cfg) -> int:
    from softmax_spark.training import train

    train(spark, cfg)
    return 0


def main(argv=None, spark=None) -> int:
    from softmax_spark.config import TrainConfig

    return run_job("softmax_spark-train", TrainConfig, run, argv, description=__doc__, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
