"""The on-disk layout of a Spark MLlib ``LogisticRegressionModel`` directory: constants and schemas.

The layout (checked against Spark 4.x's ``LogisticRegressionModelWriter`` and files saved by
pyspark 4.3)::

    <path>/metadata/part-00000-<uuid>-c000.txt   one line of JSON: class, timestamp, sparkVersion,
                                                 uid, paramMap, defaultParamMap
    <path>/metadata/_SUCCESS
    <path>/data/part-00000-<uuid>-c000.snappy.parquet
                                                 one row: numClasses int32, numFeatures int32,
                                                 interceptVector VectorUDT, coefficientMatrix
                                                 MatrixUDT, isMultinomial boolean
    <path>/data/_SUCCESS

A UDT is stored as its physical struct; Spark restores the Catalyst types (Vector, Matrix) from
the Parquet footer key ``org.apache.spark.sql.parquet.row.metadata`` (the schema as JSON).

- VectorUDT struct: type (0 sparse, 1 dense), size, indices, values.
- MatrixUDT struct: type (0 sparse, 1 dense), numRows, numCols, colPtrs, rowIndices, values,
  isTransposed. Dense values are column-major unless isTransposed (then row-major). Sparse is CSC
  (colPtrs of length numCols + 1, rowIndices = row of each value) unless isTransposed, when it is
  CSR stored the same way (colPtrs of length numRows + 1, rowIndices = column of each value).

Class index k in MLlib (its label value k.0) is position k in ``SoftmaxModel.classes``.

Written by ``mllib_io.write_mllib_model`` and checked by ``mllib_io.read_mllib_model``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

__all__ = [
    "MLLIB_LR_MODEL_CLASS", "SPARK_VERSION", "SPARK_ROW_METADATA_KEY", "DEFAULT_PARAMS",
    "INT_LIST", "DOUBLE_LIST", "VECTOR_FIELDS", "MATRIX_FIELDS", "DATA_SCHEMA", "catalyst_row_schema", "list_array",
]

MLLIB_LR_MODEL_CLASS = "org.apache.spark.ml.classification.LogisticRegressionModel"
# The Spark version whose layout we write (MLlib's reader only branches on major.minor < 2.1).
SPARK_VERSION = "4.3.0"
SPARK_ROW_METADATA_KEY = "org.apache.spark.sql.parquet.row.metadata"

# Defaults of every param LogisticRegressionModel has a default for (as MLlib 4.x saves them).
DEFAULT_PARAMS = {
    "aggregationDepth": 2,
    "elasticNetParam": 0.0,
    "family": "auto",
    "featuresCol": "features",
    "fitIntercept": True,
    "labelCol": "label",
    "maxBlockSizeInMB": 0.0,
    "maxIter": 100,
    "predictionCol": "prediction",
    "probabilityCol": "probability",
    "rawPredictionCol": "rawPrediction",
    "regParam": 0.0,
    "standardization": True,
    "threshold": 0.5,
    "tol": 1e-06,
}

# -- Arrow / Catalyst schemas -------------------------------------------------------------------


def _list_of(value_type: pa.DataType) -> pa.DataType:
    """Spark's array<…, containsNull = false> as an Arrow list with a non-null element."""
    return pa.list_(pa.field("element", value_type, nullable=False))


INT_LIST = _list_of(pa.int32())
DOUBLE_LIST = _list_of(pa.float64())

VECTOR_FIELDS = [
    pa.field("type", pa.int8(), nullable=False),
    pa.field("size", pa.int32()),
    pa.field("indices", INT_LIST),
    pa.field("values", DOUBLE_LIST),
]
MATRIX_FIELDS = [
    pa.field("type", pa.int8(), nullable=False),
    pa.field("numRows", pa.int32(), nullable=False),
    pa.field("numCols", pa.int32(), nullable=False),
    pa.field("colPtrs", INT_LIST),
    pa.field("rowIndices", INT_LIST),
    pa.field("values", DOUBLE_LIST),
    pa.field("isTransposed", pa.bool_(), nullable=False),
]
DATA_SCHEMA = pa.schema(
    [
        pa.field("numClasses", pa.int32(), nullable=False),
        pa.field("numFeatures", pa.int32(), nullable=False),
        pa.field("interceptVector", pa.struct(VECTOR_FIELDS)),
        pa.field("coefficientMatrix", pa.struct(MATRIX_FIELDS)),
        pa.field("isMultinomial", pa.bool_(), nullable=False),
    ]
)


def _catalyst_field(name: str, data_type, nullable: bool) -> dict:
    return {"name": name, "type": data_type, "nullable": nullable, "metadata": {}}


def _catalyst_array(element: str) -> dict:
    return {"type": "array", "elementType": element, "containsNull": False}


def _catalyst_udt(kind: str, fields: list) -> dict:
    """A Catalyst UDT type ``kind`` ("Vector" or "Matrix") with its physical struct."""
    return {
        "type": "udt",
        "class": f"org.apache.spark.ml.linalg.{kind}UDT",
        "pyClass": f"pyspark.ml.linalg.{kind}UDT",
        "sqlType": {"type": "struct", "fields": fields},
    }


def catalyst_row_schema() -> str:
    """The Spark SQL schema of the data row as JSON: the footer value Spark reads types from."""
    vector = _catalyst_udt(
        "Vector",
        [
            _catalyst_field("type", "byte", False),
            _catalyst_field("size", "integer", True),
            _catalyst_field("indices", _catalyst_array("integer"), True),
            _catalyst_field("values", _catalyst_array("double"), True),
        ],
    )
    matrix = _catalyst_udt(
        "Matrix",
        [
            _catalyst_field("type", "byte", False),
            _catalyst_field("numRows", "integer", False),
            _catalyst_field("numCols", "integer", False),
            _catalyst_field("colPtrs", _catalyst_array("integer"), True),
            _catalyst_field("rowIndices", _catalyst_array("integer"), True),
            _catalyst_field("values", _catalyst_array("double"), True),
            _catalyst_field("isTransposed", "boolean", False),
        ],
    )
    schema = {
        "type": "struct",
        "fields": [
            _catalyst_field("numClasses", "integer", False),
            _catalyst_field("numFeatures", "integer", False),
            _catalyst_field("interceptVector", vector, True),
            _catalyst_field("coefficientMatrix", matrix, True),
            _catalyst_field("isMultinomial", "boolean", False),
        ],
    }
    return json.dumps(schema, separators=(",", ":"))


def list_array(values: np.ndarray, list_type: pa.DataType) -> pa.Array:
    """A one-row list array holding ``values``."""
    element = list_type.value_type
    offsets = pa.array([0, len(values)], type=pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(values, type=element), type=list_type)
