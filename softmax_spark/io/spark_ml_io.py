"""Reading a saved ``softmax_spark.ml.SoftmaxRegressionModel`` directory without Spark ML.

``SoftmaxRegressionModel.write().save(path)`` (``softmax_spark.sparkml``) writes Spark's
ML-persistence layout::

    <path>/metadata/part-00000        one line of JSON (``DefaultParamsWriter``): class, uid,
                                      paramMap, defaultParamMap, softmaxSparkFormat,
                                      softmaxSparkFormatVersion
    <path>/data/part-*.parquet        one row: numClasses (int), numFeatures (int), isBinomial
                                      (bool), coefficients (list<double>, C·D, row-major),
                                      intercept (list<double>, C), classes (JSON text), history
                                      (JSON text), stopReason (text), certificate (JSON text)

This module reads that layout with pyarrow (a local path needs no session; any other storage
URI is copied down through ``storage.local_copy``, i.e. the driver JVM's Hadoop FileSystem), so
``io``'s format registry (``model_io.FORMATS``) reads Spark ML models without importing the
Estimator. The Estimator's own ``MLReader`` reads the same files through Spark.
"""

from __future__ import annotations

import json
import os

import numpy as np

from softmax_spark.core.errors import ModelFormatError
from softmax_spark.core.model import SoftmaxModel
from softmax_spark.io import storage
from softmax_spark.io.mllib_io import expansion_limit

__all__ = ["MODEL_CLASS", "FORMAT_NAME", "FORMAT_VERSION", "read_spark_ml_model", "read_local_parts",
           "check_metadata", "model_from_row"]

MODEL_CLASS = "softmax_spark.ml.SoftmaxRegressionModel"  # the class path DefaultParamsWriter records
FORMAT_NAME = "softmax_spark.ml.SoftmaxRegressionModel"  # metadata "softmaxSparkFormat"
FORMAT_VERSION = 1  # metadata "softmaxSparkFormatVersion"
METADATA_MAX_BYTES = 16 * 2**20  # the most read of a metadata part file


def check_metadata(metadata: dict, path: str) -> None:
    """Refuse (``ModelFormatError``, one line naming ``path``) metadata that is not a saved
    ``SoftmaxRegressionModel`` of ``FORMAT_VERSION``."""
    if metadata.get("class") != MODEL_CLASS or metadata.get("softmaxSparkFormat") != FORMAT_NAME:
        raise ModelFormatError(f"{path} holds {metadata.get('class')!r}, expected a saved {MODEL_CLASS}")
    if metadata.get("softmaxSparkFormatVersion") != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format version {metadata.get('softmaxSparkFormatVersion')!r}, "
                               f"this softmax_spark reads version {FORMAT_VERSION}")


def model_from_row(metadata: dict, row: dict, path: str) -> SoftmaxModel:
    """The ``SoftmaxModel`` of a saved model's metadata dict and data row (a dict of the columns
    above), its shapes and values checked: coef (C, D), intercept (C,), classes from the row;
    ``metadata`` holds ml_params (the Params as saved), binomial, stop_reason and certificate.
    Raises ``ModelFormatError`` (one line naming ``path``)."""
    try:
        n_classes, n_features = int(row["numClasses"]), int(row["numFeatures"])
        coef = np.asarray(row["coefficients"], dtype=np.float64)
        intercept = np.asarray(row["intercept"], dtype=np.float64)
        classes = json.loads(row["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}/data: unreadable model data ({exc})") from None
    if coef.shape != (n_classes * n_features,) or intercept.shape != (n_classes,) or len(classes) != n_classes:
        raise ModelFormatError(f"{path}/data: shapes do not match {n_classes} classes × {n_features} features")
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFormatError(f"{path}/data: non-finite coefficients")
    meta = {"ml_params": {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})},
            "binomial": bool(row["isBinomial"]), "stop_reason": row.get("stopReason"),
            "certificate": json.loads(row.get("certificate") or "null")}
    return SoftmaxModel(coef.reshape(n_classes, n_features), intercept, classes,
                        history=json.loads(row.get("history") or "[]"), metadata=meta)


def _visible_files(directory: str) -> list[str]:
    """The part files of a Spark output directory (no _SUCCESS, no hidden .crc), sorted."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if not n.startswith(("_", ".")) and os.path.isfile(os.path.join(directory, n)))


def read_local_parts(local: str, path: str | None = None) -> tuple[dict, dict]:
    """(metadata dict, data row dict) of the saved model in the local directory ``local``
    (errors name ``path``, default ``local``): the first line of the first non-empty metadata
    part file, checked by ``check_metadata``, and the single row of ``data/``'s Parquet files.
    Raises ``ModelFormatError``."""
    import pyarrow.parquet as pq  # lazy: the numpy-only imports of io stay light

    path = path or local
    text = None
    for part in _visible_files(os.path.join(local, "metadata")):
        with open(part, "rb") as f:
            raw = f.read(METADATA_MAX_BYTES + 1)  # bounded: a saved model's Params are kilobytes
        if len(raw) > METADATA_MAX_BYTES:
            raise ModelFormatError(f"{path}/metadata: {part} is over {METADATA_MAX_BYTES} bytes; not a saved "
                                   "SoftmaxRegressionModel's metadata")
        text = raw.decode("utf-8", "replace").strip() or None
        if text is not None:
            break
    if text is None:
        raise ModelFormatError(f"{path} is not a saved SoftmaxRegressionModel (no metadata)")
    try:
        metadata = json.loads(text.splitlines()[0])
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}/metadata is not Spark ML metadata JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}/metadata is not a JSON object")
    check_metadata(metadata, path)
    files = [f for f in _visible_files(os.path.join(local, "data")) if f.endswith(".parquet")]
    rows = []
    for part in files:  # bounded as the MLlib reader's: declared uncompressed size ≤ expansion_limit
        try:
            parquet = pq.ParquetFile(part)
            declared = sum(parquet.metadata.row_group(g).total_byte_size for g in range(parquet.num_row_groups))
            if declared > expansion_limit(os.path.getsize(part)):
                raise ModelFormatError(f"{path}/data: {part} declares {declared} bytes of uncompressed data, more "
                                       "than its size allows; the file is damaged or not a saved model")
            rows += parquet.read().to_pylist()
        except ModelFormatError:
            raise
        except Exception as exc:  # not Parquet, truncated, unreadable
            raise ModelFormatError(f"{path}/data: {part} is not a readable Parquet file ({exc})") from None
    if len(rows) != 1:
        raise ModelFormatError(f"{path}/data holds {len(rows)} rows, expected 1")
    return metadata, rows[0]


def read_spark_ml_model(path: str, spark=None) -> SoftmaxModel:
    """A saved ``SoftmaxRegressionModel`` directory at any storage URI → ``SoftmaxModel`` (a
    binomial model comes back as its 2-row centred form: the same probabilities). ``spark``: the
    session for a non-local URI (default: the active one); a local path needs none. Raises
    ``ModelFormatError`` (one line) for anything else, ``InputError`` when the filesystem cannot
    be reached."""
    path = os.fspath(path)
    try:
        with storage.local_copy(path, spark, what="model directory") as local:
            if not os.path.isdir(local):
                raise FileNotFoundError(local)
            metadata, row = read_local_parts(local, path)
    except FileNotFoundError:
        raise ModelFormatError(f"model directory {path} does not exist or is not a directory") from None
    return model_from_row(metadata, row, path)
