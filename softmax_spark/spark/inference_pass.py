"""Spark glue of ``inference``: one ``InferenceKernel`` pass over training data, then the table.

``inference_sums(data, model, cfg)`` runs the pass over already ingested ``training.TrainingData``
(what ``jobs/train.py --inference`` does inside its run); ``table_from_sums`` turns its sums into the
table. Ingesting a DataFrame again with the options a model was trained with is a step of the fit
layer: ``fit.coefficients.coefficient_table(model, df)`` (what ``summary.coefficientTable`` and
``softmax_spark.coefficient_table`` run).
"""

from __future__ import annotations

import numpy as np

from softmax_spark.core.inference import InferenceKernel, check_size, coefficient_table, format_table
from softmax_spark.core.penalty import feature_weights
from softmax_spark.spark.losses import make_loss

__all__ = ["inference_sums", "table_from_sums", "write_inference"]


def _penalty_weights(model, ingest_summary) -> np.ndarray:
    options = model.metadata.get("options") or {}
    n = max(ingest_summary.n_rows, 2)  # MLlib's standardization: the unbiased sample std (as training.build_problem)
    col_std = np.sqrt(np.asarray(ingest_summary.col_var) * n / (n - 1))
    return feature_weights(model.n_features, bool(options.get("standardize", False)), col_std)


def inference_sums(data, model, cfg) -> dict:
    """``InferenceSums.result()`` at ``model`` over ``data.sets["train"]`` (one pass), plus the
    penalty weights p_j under key ``penalty_weights``."""
    fit_intercept = bool(cfg.fit_intercept)
    check_size(model.n_classes, model.n_features + (1 if fit_intercept else 0))
    ingested = data.sets["train"]
    class_weight = (model.metadata.get("data_summary") or {}).get("class_weight")
    dist = make_loss(ingested.blocks, model.n_classes, model.n_features, fit_intercept, cfg.aggregation_depth,
                     rebuild=data.rebuilder("train"),
                     class_weight=None if class_weight is None else np.asarray(class_weight, dtype=np.float64))
    payload = (np.asarray(model.coef, dtype=np.float64), np.asarray(model.intercept, dtype=np.float64))
    sums = dist.run(InferenceKernel(fit_intercept), payload, label="inference pass").result()
    sums["penalty_weights"] = _penalty_weights(model, ingested.summary)
    return sums


def _feature_names(model, cfg) -> list:
    names = model.metadata.get("feature_names")
    if names and len(names) == model.n_features:
        return list(names)
    if cfg.feature_cols and len(cfg.feature_cols) == model.n_features:
        return list(cfg.feature_cols)
    return [f"x{j}" for j in range(model.n_features)]


def table_from_sums(model, sums: dict, cfg, **kw):
    """``inference.coefficient_table`` for ``model`` (a ``SoftmaxModel``) from the pass's sums;
    ``cfg``: the options it was trained with (``fit.coefficients.model_config``; their feature
    columns name the rows, ``fit_intercept``); ``kw``: reference_class, parameterization, alpha,
    covariance."""
    return coefficient_table(sums, model.coef, model.intercept, model.classes, l2=float(model.metadata.get("l2") or 0.0),
                             penalty_weights=sums.get("penalty_weights"), feature_names=_feature_names(model, cfg),
                             fit_intercept=bool(cfg.fit_intercept), **kw)


def write_inference(table, directory: str) -> None:
    """``<directory>/inference.parquet`` (pyarrow) and ``<directory>/inference.txt``
    (``inference.format_table``): called on the staged local copy of the model directory
    (``model_io.save_model``'s ``extra_writer``), so both are published atomically with the model."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = table.copy()
    frame["class"] = frame["class"].astype(str)  # labels of any type in one Parquet column
    frame.attrs = {}
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), os.path.join(directory, "inference.parquet"))
    with open(os.path.join(directory, "inference.txt"), "w") as fh:
        fh.write(format_table(table))
