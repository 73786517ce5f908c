"""Saving and loading ``SoftmaxRegressionCVModel`` (and the ``SoftmaxRegressionCV`` estimator) in Spark ML's layout.

``model.write().save(path)`` / ``SoftmaxRegressionCVModel.load(path)`` — and so a ``Pipeline`` or
``PipelineModel`` holding either — with nothing pickled. The layout follows
``CrossValidatorModel``'s (``pyspark.ml.tuning``): every part written by Spark, so ``path`` is any
Hadoop URI the session can write:

| part | written by | content |
|---|---|---|
| ``<path>/metadata`` | ``DefaultParamsWriter.saveMetadata`` | class, uid, the Params, and under ``softmaxSparkCV``: ``regParams`` (the grid, in the order given), ``cvMetrics``, ``stdMetrics``, ``bestIndex``, ``path`` (the path table: one JSON object per regParam), ``classes``, ``formatVersion`` |
| ``<path>/bestModel`` | ``SoftmaxRegressionModel.write`` | the refit model (its own metadata + one-row Parquet ``data``) |
| ``<path>/foldModels`` | a Spark DataFrame write (Parquet) | one row per (regParam index, fold): ``regIndex`` int, ``fold`` int, ``numClasses`` int, ``coefficients`` (C·D doubles, row-major), ``intercept`` (C doubles) |

The estimator ``SoftmaxRegressionCV`` saves its Params only (``DefaultParamsWriter``), as
``CrossValidator`` does not but every MLlib estimator does.

Errors: saving onto an existing path without ``.overwrite()`` raises ``InputError`` (as
``SoftmaxRegressionModel``); loading a directory whose metadata lacks ``softmaxSparkCV`` or has a
newer ``formatVersion`` raises ``ModelFormatError`` naming the path.
"""

from __future__ import annotations

import json
import os

import numpy as np
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

from softmax_spark.core.errors import ModelFormatError
from softmax_spark.sparkml.model import SoftmaxRegressionModel
from softmax_spark.sparkml.params import jsonable_params
from softmax_spark.sparkml.persistence import _prepare_target

__all__ = ["CVModelWriter", "CVModelReader", "CVEstimatorWriter", "CV_FORMAT_VERSION"]

CV_FORMAT_VERSION = 1


def _params_only(instance):
    """``instance`` as DefaultParamsWriter reads it, without the model's attributes that shadow
    Params (``regParams`` is the grid list on the model)."""
    return jsonable_params(instance)


class CVEstimatorWriter(DefaultParamsWriter):
    """``SoftmaxRegressionCV.write()``: ``<path>/metadata`` only, an existing path refused
    unless ``.overwrite()`` (``ml._prepare_target``)."""

    def save(self, path: str) -> None:
        _prepare_target(self, path)
        self.saveImpl(path)

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(_params_only(self.instance), path, self.sparkSession)


class CVModelWriter(MLWriter):
    """``SoftmaxRegressionCVModel.write()`` (module docstring)."""

    def __init__(self, instance):
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        _prepare_target(self, path)
        self.saveImpl(path)

    def saveImpl(self, path: str) -> None:
        import pyarrow as pa

        m = self.instance
        spark = self.sparkSession
        extra = {"softmaxSparkCV": {
            "formatVersion": CV_FORMAT_VERSION, "regParams": [float(r) for r in m.regParams],
            "cvMetrics": [float(v) for v in m.cvMetrics], "stdMetrics": [float(v) for v in m.stdMetrics],
            "bestIndex": int(m.bestIndex), "path": _jsonable(m.path),
            "classes": None if m.classes is None else _jsonable(list(m.classes)),
        }}
        DefaultParamsWriter.saveMetadata(_params_only(m), path, spark, extraMetadata=extra)
        m.bestModel.write().save(os.path.join(path, "bestModel"))
        rows = [(int(i), int(k), np.asarray(c, dtype=np.float64), np.asarray(b, dtype=np.float64))
                for i, models in sorted(m.foldModels.items()) for k, (c, b) in enumerate(models)]
        table = pa.table({
            "regIndex": pa.array([r[0] for r in rows], pa.int32()),
            "fold": pa.array([r[1] for r in rows], pa.int32()),
            "numClasses": pa.array([r[2].shape[0] for r in rows], pa.int32()),
            "coefficients": pa.array([r[2].ravel() for r in rows], pa.list_(pa.float64())),
            "intercept": pa.array([r[3] for r in rows], pa.list_(pa.float64())),
        })
        spark.createDataFrame(table).coalesce(1).write.parquet(os.path.join(path, "foldModels"))


class CVModelReader(MLReader):
    """``SoftmaxRegressionCVModel.read()`` / ``.load(path)`` (module docstring)."""

    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        spark = self.sparkSession
        metadata = DefaultParamsReader.loadMetadata(path, spark.sparkContext)
        saved = metadata.get("softmaxSparkCV")
        if not isinstance(saved, dict):
            raise ModelFormatError(f"{path}: not a saved SoftmaxRegressionCVModel (no 'softmaxSparkCV' in its metadata)")
        if int(saved.get("formatVersion", 0)) > CV_FORMAT_VERSION:
            raise ModelFormatError(f"{path}: SoftmaxRegressionCVModel format version {saved['formatVersion']} is "
                                   f"newer than this softmax_spark reads ({CV_FORMAT_VERSION})")
        best = SoftmaxRegressionModel.load(os.path.join(path, "bestModel"))
        fold_models: dict = {}
        for row in sorted(spark.read.parquet(os.path.join(path, "foldModels")).collect(),
                          key=lambda r: (r["regIndex"], r["fold"])):
            coef = np.asarray(row["coefficients"], dtype=np.float64).reshape(row["numClasses"], -1)
            fold_models.setdefault(int(row["regIndex"]), []).append(
                (coef, np.asarray(row["intercept"], dtype=np.float64)))
        model = self.cls(best, saved["regParams"], saved["cvMetrics"], saved["stdMetrics"], saved["path"],
                         saved["bestIndex"], fold_models=fold_models, classes=saved.get("classes"))
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model


def _jsonable(value):
    """Plain JSON values (numpy scalars and arrays → Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
