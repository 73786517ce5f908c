"""io.spark_ml_io reads a saved SoftmaxRegressionModel without Spark, with bounded reads: an
oversized metadata part file and a Parquet data file that declares more than its size allows are
one-line ModelFormatErrors, never a large allocation."""

import os

import pytest

from softmax_spark.core.errors import ModelFormatError
from softmax_spark.io import spark_ml_io


def test_an_oversized_metadata_part_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "part-00000").write_bytes(b"{" + b" " * 2048 + b"}")
    monkeypatch.setattr(spark_ml_io, "METADATA_MAX_BYTES", 1024)
    with pytest.raises(ModelFormatError, match="over 1024 bytes"):
        spark_ml_io.read_local_parts(str(tmp_path))


def test_a_data_file_that_is_not_parquet_is_a_format_error(tmp_path):
    import json

    meta = {"class": spark_ml_io.MODEL_CLASS, "softmaxSparkFormat": spark_ml_io.FORMAT_NAME,
            "softmaxSparkFormatVersion": spark_ml_io.FORMAT_VERSION}
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "part-00000").write_text(json.dumps(meta) + "\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part-00000.parquet").write_bytes(os.urandom(64))
    with pytest.raises(ModelFormatError, match="not a readable Parquet file"):
        spark_ml_io.read_local_parts(str(tmp_path))
