"""``jobs/train.py --cv-folds K [--l2-path λ1,λ2,…]``: choose --l2 by K-fold cross-validation.

The job runs ``ml_cv.SoftmaxRegressionCV`` (one ingest, every pass computing all K folds, the fold
models warm-started along the path, strongest penalty first) on ``--input`` with the training
options it shares (features/label/weight columns, --fit-intercept, --standardize, --optimizer
auto/newton/lbfgs, --max-iter, --tol, --num-partitions, --seed), in our units: λ of
J = mean log-loss + λ‖W‖²_F (MLlib's regParam = 2λ, family multinomial). It writes ``--model-dir``
atomically: the chosen λ refit on all rows (the model files ``training`` writes, the path in its
metadata under ``cross_validation``, and the MLlib copy unless --no-write-mllib) plus

- ``cv_path.csv`` and ``cv_path.parquet``: the path table, one row per λ in the order given —
  l2, l1 (λ₂ and λ₁ of each point: (1−α)·regParam/2 and α·regParam), regParam, elasticNetParam,
  metric, mean, std (over folds, ddof 0), stdErr (ddof 1 / √K),
  fold_0 … fold_{K−1}, nonZeros, iterations (the slowest fold's), passes, chosen;
- ``cv_path.txt``: the same as a text table (also printed);
- ``cv_curve.png``: the validation curve with the chosen λ marked (``plots.plot_validation_curve``);
  with several α (``--cv-elastic-net``), the chosen α's path against regParam.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os

from softmax_spark.core.errors import InputError
from softmax_spark.evaluate.plots import plot_validation_curve
from softmax_spark.sparkml.tuning import SoftmaxRegressionCV
from softmax_spark.io.model_io import save_model
from softmax_spark.spark.parquet_input import open_parquet
from softmax_spark.io.storage import check_writable
from softmax_spark.io.mllib_io import write_mllib_model

__all__ = ["run_cv", "path_rows", "format_path_table"]

log = logging.getLogger("softmax_spark")


def _refuse_unsupported(cfg) -> None:
    unsupported = [(cfg.feature_cols, "--feature-cols (use one vector column, --features-col)"),
                   (cfg.optimizer not in ("auto", "newton", "lbfgs"), f"--optimizer {cfg.optimizer}"),
                   (cfg.validation_input or cfg.validation_fraction, "--validation-input / --validation-fraction"),
                   (cfg.checkpoint_dir, "--checkpoint-dir"), (cfg.init_model, "--init-model"),
                   (cfg.class_weight is not None, "--class-weight"), (cfg.classes, "--classes"),
                   (cfg.parametrization != "full", "--parametrization reference"),
                   (cfg.l1 > 0, "--l1 (give the α path with --cv-elastic-net)")]
    for bad, what in unsupported:
        if bad:
            raise InputError(f"{what} is not supported with --cv-folds")


def path_rows(model, K: int) -> list:
    """The path table's rows (dicts) from a ``SoftmaxRegressionCVModel`` fitted with regParam = 2λ."""
    rows = []
    for i, r in enumerate(model.path):
        alpha = r["elasticNetParam"]
        row = {"l2": (1.0 - alpha) * r["regParam"] / 2.0, "l1": alpha * r["regParam"], "regParam": r["regParam"],
               "elasticNetParam": alpha,
               "metric": r["metric"], "mean": r["mean"], "std": r["std"], "stdErr": r["stdErr"]}
        row.update({f"fold_{k}": v for k, v in enumerate(r["foldMetrics"])})
        row.update(nonZeros=r["nonZeros"], iterations=r["iterations"], passes=r["passes"],
                   chosen=i == model.bestIndex)
        rows.append(row)
    return rows


def format_path_table(rows: list) -> str:
    """A fixed-width text table of the path (one line per λ, the chosen one starred; a row without
    ``l1`` is an L2 point, l1 = 0)."""
    head = f"{'':1} {'l2':>12} {'l1':>12} {'mean':>14} {'std':>12} {'nonZeros':>9} {'iters':>6} {'passes':>6}"
    lines = [head]
    for r in rows:
        lines.append(f"{'*' if r['chosen'] else ' ':1} {r['l2']:>12.6g} {r.get('l1', 0.0):>12.6g} {r['mean']:>14.10g} {r['std']:>12.4g} "
                     f"{r['nonZeros']:>9.1f} {r['iterations']:>6d} {r['passes']:>6d}")
    return "\n".join(lines)


def _write_outputs(rows: list, metric: str, chosen: int, tmp: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq


    with open(os.path.join(tmp, "cv_path.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), os.path.join(tmp, "cv_path.parquet"))
    with open(os.path.join(tmp, "cv_path.txt"), "w") as f:
        f.write(format_path_table(rows) + "\n")
    # several α: the curve of the chosen point's α path, against regParam (one line per path)
    alpha = rows[chosen]["elasticNetParam"]
    same = [r for r in rows if r["elasticNetParam"] == alpha]
    if len(same) < len(rows):
        curve = [{"regParam": r["regParam"], "mean": r["mean"], "std": r["std"]} for r in same]
        plot_validation_curve(curve, os.path.join(tmp, "cv_curve.png"), same.index(rows[chosen]), metric)
        return
    plot_validation_curve(rows, os.path.join(tmp, "cv_curve.png"), chosen, metric)


def run_cv(spark, cfg):
    """Cross-validate ``cfg.input`` along the λ path and write ``cfg.model_dir``; returns the
    ``SoftmaxRegressionCVModel``. Raises ``InputError`` for options the CV does not support."""
    _refuse_unsupported(cfg)
    check_writable(cfg.model_dir, cfg.overwrite, "model directory", spark=spark)
    df = open_parquet(spark, cfg.input)
    params = dict(featuresCol=cfg.features_col or "features", labelCol=cfg.label_col, numFolds=cfg.cv_folds,
                  metric=cfg.cv_metric, oneStandardErrorRule=cfg.cv_one_standard_error, family="multinomial",
                  labelIndexing="sorted", standardization=cfg.standardize, fitIntercept=cfg.fit_intercept,
                  maxIter=cfg.max_iter, solver=cfg.optimizer, aggregationDepth=cfg.aggregation_depth,
                  residentTasks=cfg.resident_tasks, seed=cfg.seed)
    if cfg.weight_col:
        params["weightCol"] = cfg.weight_col
    if cfg.tol is not None:
        params["tol"] = cfg.tol
    if cfg.num_partitions:
        params["numPartitions"] = cfg.num_partitions
    if cfg.cv_fold_col:
        params["foldCol"] = cfg.cv_fold_col
    if cfg.cv_elastic_net:
        params["elasticNetParams"] = [float(a) for a in cfg.cv_elastic_net]
    if cfg.l2_path:
        params["regParams"] = [2.0 * v for v in cfg.l2_path]  # multinomial: regParam = 2λ
    else:
        params.update(numRegParams=cfg.cv_num_l2, regParamRatio=cfg.cv_l2_ratio)
    model = SoftmaxRegressionCV(**params).fit(df)
    rows = path_rows(model, cfg.cv_folds)
    best = model.bestModel.softmaxModel
    alpha = model.bestElasticNetParam
    chosen_l2, chosen_l1 = (1.0 - alpha) * model.bestRegParam / 2.0, alpha * model.bestRegParam
    best.metadata.setdefault("options", {}).update({**dataclasses.asdict(cfg), "l2": chosen_l2, "l1": chosen_l1})
    best.metadata["l2"] = chosen_l2
    best.metadata["cross_validation"]["path"] = rows
    text = format_path_table(rows)
    log.info("cross-validation path (%d folds, %s; * = chosen):\n%s", cfg.cv_folds, cfg.cv_metric, text)

    def extra(tmp):
        _write_outputs(rows, cfg.cv_metric, model.bestIndex, tmp)
        if cfg.write_mllib:

            write_mllib_model(best, os.path.join(tmp, "mllib"))

    save_model(best, cfg.model_dir, overwrite=cfg.overwrite, extra_writer=extra, spark=spark)
    log.info("chose --l2 %.6g --l1 %.6g (α %g; %s %.8g); model written to %s", chosen_l2, chosen_l1, alpha,
             cfg.cv_metric, model.cvMetrics[model.bestIndex], cfg.model_dir)
    return model
