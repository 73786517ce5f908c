"""Persistence of ``SoftmaxRegression`` / ``SoftmaxRegressionModel`` through Spark only (any Hadoop
URI; the same on a Spark Connect session): ``<dir>/metadata`` is ``DefaultParamsWriter``'s JSON
(class, uid, Params) plus ``softmaxSparkFormat``; a model's ``<dir>/data`` is a one-row Parquet file
(numClasses, numFeatures, isBinomial, coefficients (C·D row-major doubles), intercept (C), classes
(JSON), history (JSON), stopReason, certificate (JSON)). ``read_model_dir`` reads such a directory
into a ``softmax_spark.SoftmaxModel``. Nothing is pickled.
"""

from __future__ import annotations

import json
import os

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReader, MLWriter

from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.io.spark_ml_io import FORMAT_NAME, FORMAT_VERSION, MODEL_CLASS, read_local_parts
from softmax_spark.io.spark_ml_io import check_metadata as _check_metadata
from softmax_spark.io.spark_ml_io import model_from_row as _softmax_model
from softmax_spark.sparkml.params import jsonable_params
from softmax_spark.spark.backend import backend_for
from softmax_spark.sparkml.summary import loaded_summary

__all__ = ["read_model_dir", "FORMAT_NAME", "FORMAT_VERSION", "MODEL_CLASS"]

# the saved layout is read by io.spark_ml_io (also without Spark): its constants, its checks

def _hadoop_exists(spark, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hpath))


def _prepare_target(writer: MLWriter, path: str) -> None:
    """Before a save: refuse an existing ``path`` (``InputError``) unless the writer overwrites,
    in which case delete it. Classic session: Hadoop's FileSystem in the driver JVM. Spark
    Connect (no JVM on the client): the server's ``FileSystemOverwrite`` through pyspark's ML
    Connect helper, as pyspark's own Connect writers do (``RemoteMLWriter.handleOverwrite``)."""
    spark = writer.sparkSession
    refused = InputError(f"{path} already exists; use .write().overwrite().save(path) to replace it")
    if not backend_for(spark).has_jvm:  # Spark Connect
        from pyspark.ml.util import invoke_helper_attr

        try:  # overwrite: deletes path; else raises (IOException "Path … already exists") when it exists
            invoke_helper_attr("handleOverwrite", path, bool(writer.shouldOverwrite))
        except Exception as exc:
            if not writer.shouldOverwrite and "already exists" in str(exc):
                raise refused from None
            raise
        return
    if not writer.shouldOverwrite and _hadoop_exists(spark, path):
        raise refused
    if writer.shouldOverwrite:
        writer._handleOverwrite(path)


class _PreparedSave:
    """A writer mixin: ``save`` = ``_prepare_target`` (existing path refused or overwritten, on a
    classic or a Spark Connect session) then ``saveImpl``."""

    def save(self, path: str) -> None:
        _prepare_target(self, path)
        self.saveImpl(path)


class _EstimatorWriter(_PreparedSave, DefaultParamsWriter):
    """``DefaultParamsWriter`` (``<path>/metadata``, written by Spark) with ``_PreparedSave``."""

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(jsonable_params(self.instance), path, self.sparkSession)


class _ModelWriter(_PreparedSave, MLWriter):
    """``<path>/metadata`` (DefaultParamsWriter) + ``<path>/data`` (one-row Parquet), both by Spark
    (DataFrame writes: the same on a classic and a Spark Connect session)."""

    def __init__(self, instance):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        import pyarrow as pa

        spark = self.sparkSession
        m = self.instance.softmaxModel
        summary = self.instance._summary
        DefaultParamsWriter.saveMetadata(jsonable_params(self.instance), path, spark,
                                         extraMetadata={"softmaxSparkFormat": FORMAT_NAME,
                                                        "softmaxSparkFormatVersion": FORMAT_VERSION})
        table = pa.table({
            "numClasses": pa.array([m.n_classes], pa.int32()),
            "numFeatures": pa.array([m.n_features], pa.int32()),
            "isBinomial": pa.array([self.instance.isBinomial]),
            "coefficients": pa.array([m.coef.ravel()], pa.list_(pa.float64())),
            "intercept": pa.array([m.intercept], pa.list_(pa.float64())),
            "classes": pa.array([json.dumps(list(m.classes))]),
            "history": pa.array([json.dumps(summary.history if summary else m.history)]),
            "stopReason": pa.array([summary.stopReason if summary else m.metadata.get("stop_reason")], pa.string()),
            "certificate": pa.array([json.dumps(summary.certificate if summary else m.metadata.get("certificate"))]),
        })
        spark.createDataFrame(table).coalesce(1).write.parquet(os.path.join(path, "data"))


class _ModelReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        metadata, row = _read_saved(path, self.sparkSession)
        model = self.cls(_softmax_model(metadata, row, path), binomial=bool(row["isBinomial"]))
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        history = json.loads(row["history"] or "[]")
        if history:

            model._summary = loaded_summary(model.numClasses, history, row["stopReason"],
                                            model.softmaxModel.metadata.get("certificate"))
        return model


def _read_saved(path: str, spark) -> tuple[dict, dict]:
    """(metadata dict, data row dict) of a saved SoftmaxRegressionModel, read by Spark."""
    try:
        metadata = DefaultParamsReader.loadMetadata(path, spark)
    except Exception as exc:
        raise ModelFormatError(f"{path} is not a saved SoftmaxRegressionModel (no readable metadata: "
                               f"{str(exc).splitlines()[0][:200]})") from None
    _check_metadata(metadata, path)
    rows = spark.read.parquet(os.path.join(path, "data")).collect()
    if len(rows) != 1:
        raise ModelFormatError(f"{path}/data holds {len(rows)} rows, expected 1")
    return metadata, rows[0].asDict()


def read_model_dir(path: str, spark=None) -> SoftmaxModel:
    """A saved ``SoftmaxRegressionModel`` directory → ``softmax_spark.SoftmaxModel``.

    Reads through ``spark`` (or the active SparkSession), so any Hadoop URI works; with no
    session, a local path is read with pyarrow. A binomial model comes back as its 2-row centred
    form (the same probabilities). Raises ``ModelFormatError`` for anything else.
    """
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    if spark is not None:
        metadata, row = _read_saved(path, spark)
    else:
        metadata, row = _read_saved_local(path)
    return _softmax_model(metadata, row, path)


def _read_saved_local(path: str) -> tuple[dict, dict]:
    """(metadata, data row) of a saved model at a local ``path`` (or file:// URI), without Spark."""
    local = path[len("file://"):] if path.startswith("file://") else path
    if "://" in local or local.startswith("file:"):
        raise ModelFormatError(f"{path}: reading a non-local model directory needs a SparkSession")
    return read_local_parts(local, path)


def _metadata_class(spark, path: str) -> str | None:
    """The ``class`` in ``<path>/metadata`` (DefaultParamsWriter JSON), or None when there is none."""
    try:
        return DefaultParamsReader.loadMetadata(path, spark).get("class")
    except Exception:  # no metadata directory: not an ML-persistence directory
        return None

