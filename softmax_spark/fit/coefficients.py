"""Coefficient inference for a fitted model on its training DataFrame (the notebook entry).

    coefficient_table(model, df, spark=None, reference_class=None, parameterization="reference",
                      alpha=0.05, covariance="auto") -> pandas.DataFrame

``df`` is ingested again with the options the model was trained with (``model.metadata["options"]``:
features, label, weight column, class weights; ``model_config``), then one ``InferenceKernel``
pass (``spark.inference_pass.inference_sums``) gives the table of ``core.inference.coefficient_table``:
columns class, feature, coefficient, std_error, z, p_value, ci_low, ci_high. It lives in the fit
layer because it ingests as training does (``fit.training.TrainingData``); the numpy model
(``core.model.SoftmaxModel``) knows nothing of Spark. Also ``softmax_spark.coefficient_table``.
"""

from __future__ import annotations

import dataclasses

from softmax_spark.core.inference import check_size
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.fit.config import TrainConfig
from softmax_spark.fit.training import TrainingData
from softmax_spark.spark.backend import default_parallelism
from softmax_spark.spark.fit_output import quiet_fit
from softmax_spark.spark.inference_pass import inference_sums, table_from_sums
from softmax_spark.spark.shipping import our_tasks

__all__ = ["coefficient_table", "model_config"]


def model_config(model: SoftmaxModel) -> TrainConfig:
    """The ``TrainConfig`` ``model`` was trained with: its metadata ``options`` (names that are not
    options of this version are dropped; a hand-built model gets the defaults)."""
    options = dict(model.metadata.get("options") or {})
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in options.items() if k in names})


def coefficient_table(model: SoftmaxModel, df, spark=None, reference_class=None, parameterization: str = "reference",
                      alpha: float = 0.05, covariance: str = "auto"):
    """Coefficient inference (pandas DataFrame: class, feature, coefficient, std_error, z, p_value,
    ci_low, ci_high) for ``model`` on its training DataFrame ``df`` (``spark``: default
    ``df.sparkSession``); one ingest and one data pass. See ``core.inference.coefficient_table``
    for the meaning of the options and the errors (``InferenceError`` when the estimate does not
    exist, ``InputError`` for bad options or columns)."""
    spark = spark or df.sparkSession
    cfg = model_config(model)
    check_size(model.n_classes, model.n_features + (1 if cfg.fit_intercept else 0))
    with quiet_fit(), our_tasks(spark), TrainingData(cfg, model.classes,
                                                     cfg.num_partitions or default_parallelism(spark)) as data:
        data.add("train", df)
        sums = inference_sums(data, model, cfg)
    return table_from_sums(model, sums, cfg, reference_class=reference_class, parameterization=parameterization,
                           alpha=alpha, covariance=covariance)
