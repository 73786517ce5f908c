"""The column types training and scoring accept, checked once on the driver from a Spark schema.

- features (``--features-col``): an ml Vector (dense or sparse) or an array of numbers
  (array<double>, array<float>, any numeric element type);
- feature columns (``--feature-cols``): numeric columns — byte, short, int, long, float, double,
  decimal — or boolean (1.0 / 0.0);
- sample weights: a numeric column;
- labels: for training any orderable type (number, string, boolean, date, …); for scoring a column
  whose values can equal the model's classes under ``labels``' rule (numbers for numeric classes,
  text for string classes, booleans for boolean classes).

Every type fault is one ``InputError`` of the form ``column 'x' is <type>, expected <what>``; the
same ``expected`` phrases (``core.errors``) are used by ``features`` when it meets an Arrow batch of the wrong type
(rows that reach the executors without a schema check). Importable without Spark.
"""

from __future__ import annotations

from typing import Sequence

from softmax_spark.core.errors import (LABEL_EXPECTED, NUMERIC_EXPECTED, VECTOR_EXPECTED,  # noqa: F401 (re-exported)
                                       WEIGHT_EXPECTED, InputError, type_error)
from softmax_spark.core.labels import format_classes, label_family, value_family

__all__ = ["check_columns", "storage_dtype", "type_error", "VECTOR_EXPECTED", "NUMERIC_EXPECTED", "WEIGHT_EXPECTED",
           "LABEL_EXPECTED", "spark_type"]


def spark_type(kind: str):
    """The Spark type of a column of ``labels.class_kind`` values ("bool", "int", "float", "string"):
    BooleanType, LongType, DoubleType or StringType (the Spark side of ``labels.arrow_type``)."""
    from pyspark.sql import types as T

    return {"bool": T.BooleanType(), "int": T.LongType(), "float": T.DoubleType(), "string": T.StringType()}[kind]


def _is_vector(dtype) -> bool:
    # pyspark.ml.linalg.VectorUDT (and mllib's, same storage); by name, as Spark Connect has its own class
    from pyspark.sql import types as T

    return isinstance(dtype, T.UserDefinedType) and type(dtype).__name__ == "VectorUDT"


def check_columns(schema, spec=None, label_col: str | None = None, weight_col: str | None = None, *,
                  n_features: int | None = None, classes: Sequence | None = None) -> None:
    """Every named column exists and has an accepted type (see the module docstring).

    schema     : a Spark ``StructType`` (or a DataFrame: its schema).
    spec       : ``features.FeatureSpec`` or None (no feature columns to check).
    n_features : the model's D, for scoring: ``--feature-cols`` must name exactly D columns.
    classes    : the model's classes, for scoring: the label column must be able to hold them;
                 None (training): any orderable label type.
    Raises ``InputError``: ``column 'x' not found; the input has columns: a, b`` or
    ``column 'x' is <type>, expected <what>``.
    """
    from pyspark.sql import types as T

    schema = getattr(schema, "schema", schema)
    fields = {f.name: f.dataType for f in schema.fields}
    wanted = (list(spec.columns) if spec is not None else []) + [c for c in (label_col, weight_col) if c]
    for name in wanted:
        if name not in fields:
            raise InputError(f"column '{name}' not found; the input has columns: {', '.join(fields)}")
    if spec is not None and spec.features_col:
        typ = fields[spec.features_col]
        if not (_is_vector(typ) or (isinstance(typ, T.ArrayType) and isinstance(typ.elementType, T.NumericType))):
            raise type_error(spec.features_col, typ.simpleString(), VECTOR_EXPECTED)
    if spec is not None and spec.feature_cols:
        if n_features is not None and len(spec.feature_cols) != n_features:
            raise InputError(f"columns '{spec.describe()}': {len(spec.feature_cols)} feature columns, the model "
                             f"expects {n_features}")
        for name in spec.feature_cols:
            if not isinstance(fields[name], (T.NumericType, T.BooleanType)):
                raise type_error(name, fields[name].simpleString(), NUMERIC_EXPECTED)
    if weight_col and not isinstance(fields[weight_col], T.NumericType):
        raise type_error(weight_col, fields[weight_col].simpleString(), WEIGHT_EXPECTED)
    if label_col:
        typ = fields[label_col]
        if classes is None:
            if isinstance(typ, (T.ArrayType, T.MapType, T.StructType, T.BinaryType, T.UserDefinedType)):
                raise type_error(label_col, typ.simpleString(), LABEL_EXPECTED)
        elif label_family(typ) not in {value_family(c) for c in classes}:
            families = " or ".join(sorted({value_family(c) for c in classes}))
            raise type_error(label_col, typ.simpleString(),
                             f"expected {families} labels like the model's classes {format_classes(classes)}")


def storage_dtype(requested: str, schema, spec) -> str:
    """The cache dtype of ``--dtype`` ``requested`` for the features of ``spec`` in ``schema``.

    "float64" / "float32" are returned as given. "auto" is "float32" when every feature value
    arrives as a 32-bit float — ``features_col`` of array<float>, or ``feature_cols`` all float —
    so caching it as float32 loses nothing and halves the cache; else "float64" (ml Vectors hold
    doubles, and so do array<double> and the other numeric types). Raises ``ValueError`` for
    another ``requested``.
    """
    if requested in ("float64", "float32"):
        return requested
    if requested != "auto":
        raise ValueError(f"dtype {requested!r}: expected auto, float64 or float32")
    from pyspark.sql import types as T

    schema = getattr(schema, "schema", schema)
    fields = {f.name: f.dataType for f in schema.fields}
    if spec.features_col:
        typ = fields.get(spec.features_col)
        single = isinstance(typ, T.ArrayType) and isinstance(typ.elementType, T.FloatType)
    else:
        single = bool(spec.feature_cols) and all(isinstance(fields.get(c), T.FloatType) for c in spec.feature_cols)
    return "float32" if single else "float64"
