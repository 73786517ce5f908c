"""Score Parquet data with a saved softmax model and evaluate it.

    spark-submit jobs/evaluate.py --model-dir M --input P --output O [--metrics-out F]
                                  [--config conf/evaluate.yaml] [...]
    python jobs/evaluate.py ...   (the same, in local mode)

M is a model directory written by jobs/train.py, a saved softmax_spark.ml.SoftmaxRegressionModel, or
a Spark MLlib LogisticRegressionModel (classes 0.0, 1.0, … unless --model-classes names them).
Every path may be a local path or a URI the Spark session's Hadoop FileSystem reaches (hdfs://,
s3a://, viewfs://, …). Settings come from the flags and, optionally, a YAML file (--config) whose
keys are the flags without "--" and with "_" (e.g. ``model_dir: M``); flags override the file. The
feature columns and the label column default to those the model was trained with (its
metadata.json options). Exit codes: 0 success, 2 bad input or settings (the last line on stderr
is ``error: <message>``), 1 anything else. See softmax_spark/evaluate/evaluation.py for what is written.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # spark-submit runs this file by path: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from softmax_spark.worker_daemon import prefer_installed_pyspark  # noqa: E402

prefer_installed_pyspark()  # spark-submit's pyspark.zip compiles from source: 0.6 s (see worker_daemon)

from softmax_spark.cli.jobs_common import run_job  # noqa: E402


def _inherit(cfg, model) -> None:
    """Unset feature and label settings come from the model's record of its training columns."""
    import logging

    taken = cfg.inherit_from_model(model.metadata or {})
    if taken:
        logging.getLogger("softmax_spark").info("from the model's training options: %s", "; ".join(taken))


def precheck(cfg) -> None:
    """Before Spark starts: a local model reads (a bad model directory fails here) and lends its
    settings; a local input exists and has the feature (and an explicit label) columns; an
    existing local output needs --overwrite. URIs (hdfs://, viewfs://, …) are checked in
    ``postcheck``, once the session runs."""
    from softmax_spark.io import storage
    from softmax_spark.core.errors import InputError
    from softmax_spark.cli.jobs_common import check_input_exists, check_parquet_columns
    from softmax_spark.io.model_io import load_scoring_model

    if storage.is_local(cfg.model_dir):
        _inherit(cfg, load_scoring_model(cfg.model_dir, model_classes=cfg.model_classes))
        if check_input_exists(cfg.input, "input path") is not None:
            required = [*cfg.feature_spec.columns, *([cfg.label_col] if cfg.label_col_required else [])]
            check_parquet_columns(cfg.input, required, "input")
    if cfg.output and storage.is_local(cfg.output) and not cfg.overwrite and storage.exists(cfg.output):
        raise InputError(f"output {cfg.output} already exists; pass --overwrite to replace it")


def postcheck(spark, cfg) -> None:
    """Right after start-up: a remote model lends its settings; an input only Spark can reach
    exists — one line each."""
    from softmax_spark.io import storage
    from softmax_spark.cli.jobs_common import check_input_reachable
    from softmax_spark.io.model_io import load_scoring_model

    if not storage.is_local(cfg.model_dir):
        _inherit(cfg, load_scoring_model(cfg.model_dir, spark=spark, model_classes=cfg.model_classes))
    check_input_reachable(spark, cfg.input, "input path")


def run(spark, cfg) -> int:
    from softmax_spark.evaluate.evaluation import run as evaluate

    print(evaluate(spark, cfg).report())
    return 0


def main(argv=None, spark=None) -> int:
    from softmax_spark.fit.config import EvaluateConfig

    return run_job("softmax_spark-evaluate", EvaluateConfig, run, argv, description=__doc__, spark=spark,
                   precheck=precheck, postcheck=postcheck)


if __name__ == "__main__":
    sys.exit(main())
