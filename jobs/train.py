"""spark-submit jobs/train.py --input DATA.parquet --model-dir MODEL [--config conf/train.yaml] [flags]

Trains softmax regression on Spark and writes the model directory. Exit codes: 0 success,
2 bad input or configuration (the message is the last line), 1 anything else.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # spark-submit runs this file by path: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.worker_daemon import prefer_installed_pyspark  # noqa: E402

prefer_installed_pyspark()  # spark-submit's pyspark.zip compiles from source: 0.6 s (see worker_daemon)

from softmax_spark.cli.jobs_common import run_job  # noqa: E402


def precheck(cfg) -> None:
    """What needs no data, before Spark starts: local inputs exist and have the named columns
    (Parquet footers), an existing local model directory needs --overwrite, --init-model reads."""
    from softmax_spark.cli.jobs_common import check_input_exists, check_not_exists, check_parquet_columns

    columns = [*cfg.feature_spec.columns, cfg.label_col, cfg.weight_col]
    for path, what in ((cfg.input, "input"), (cfg.validation_input, "validation input")):
        if path and check_input_exists(path, f"{what} path") is not None:
            check_parquet_columns(path, columns, what)
    check_not_exists(cfg.model_dir, cfg.overwrite, "model directory")
    if cfg.init_model:
        _read_init_model(cfg.init_model)


def _read_init_model(path: str) -> None:
    """Read --init-model as training will (ours, or an MLlib directory): a bad one fails now."""
    from softmax_spark.io.driver_paths import spark_local_path

    local = spark_local_path(path)
    if local is None:
        return
    if os.path.isdir(os.path.join(local, "metadata")) and not os.path.exists(os.path.join(local, "metadata.json")):
        from softmax_spark.io.mllib_io import read_mllib_model

        read_mllib_model(path)
    else:
        from softmax_spark.io.model_io import load_model

        load_model(path)


def postcheck(spark, cfg) -> None:
    """Inputs only Spark can reach (hdfs://, s3a://, …) exist: one line, right after start-up."""
    from softmax_spark.cli.jobs_common import check_input_reachable

    check_input_reachable(spark, cfg.input, "input path")
    if cfg.validation_input:
        check_input_reachable(spark, cfg.validation_input, "validation input path")


def run(spark, cfg) -> int:
    from softmax_spark.fit.training import train

    if cfg.cv_folds:  # choose --l2 by K-fold cross-validation along a path (softmax_spark.cli.cv_job)
        from softmax_spark.cli.cv_job import run_cv

        cfg.validate()
        run_cv(spark, cfg)
        return 0
    train(spark, cfg)
    return 0


def main(argv=None, spark=None) -> int:
    from softmax_spark.fit.config import TrainConfig

    return run_job("softmax_spark-train", TrainConfig, run, argv, description=__doc__, spark=spark,
                   precheck=precheck, postcheck=postcheck,
                   preload=("softmax_spark.fit.training",),
                   worker_modules=("softmax_spark.spark.ingest", "softmax_spark.spark.distributed"))


if __name__ == "__main__":
    sys.exit(main())
