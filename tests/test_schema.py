"""softmax_spark.spark.schema without a Spark session: the column types training and scoring accept,
one message form (``column 'x' is <type>, expected <what>``)."""

import pytest
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import types as T

from softmax_spark.core.errors import InputError
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.schema import check_columns


def _schema(**columns):
    return T.StructType([T.StructField(name, typ, True) for name, typ in columns.items()])


VECTOR = FeatureSpec(features_col="features")
COLUMNS = FeatureSpec(features_col=None, feature_cols=("a", "b"))


@pytest.mark.parametrize("features", [VectorUDT(), T.ArrayType(T.DoubleType()), T.ArrayType(T.FloatType()),
                                      T.ArrayType(T.IntegerType())])
def test_vector_and_numeric_arrays_are_accepted(features):
    schema = _schema(features=features, label=T.LongType(), w=T.DoubleType())
    check_columns(schema, VECTOR, "label", "w")  # training
    check_columns(schema, VECTOR, n_features=3)  # scoring


@pytest.mark.parametrize("typ", [T.ByteType(), T.ShortType(), T.IntegerType(), T.LongType(), T.FloatType(),
                                 T.DoubleType(), T.DecimalType(10, 2), T.BooleanType()])
def test_numeric_feature_columns_are_accepted(typ):
    check_columns(_schema(a=typ, b=T.DoubleType(), label=T.StringType()), COLUMNS, "label", n_features=2)


def test_missing_columns_are_named_with_the_existing_ones():
    schema = _schema(features=VectorUDT(), label=T.LongType())
    with pytest.raises(InputError, match=r"^column 'Weight' not found; the input has columns: features, label$"):
        check_columns(schema, VECTOR, "label", "Weight")
    with pytest.raises(InputError, match="column 'a' not found"):
        check_columns(schema, COLUMNS)


@pytest.mark.parametrize("schema, kwargs, message", [
    (_schema(features=T.StringType()), {}, "column 'features' is string, expected array<double>, array<float> or an "
                                           "ml Vector (dense or sparse)"),
    (_schema(features=T.ArrayType(T.StringType())), {}, "column 'features' is array<string>, expected array<double>"),
    (_schema(features=VectorUDT(), w=T.StringType()), {"weight_col": "w"},
     "column 'w' is string, expected numeric sample weights"),
    (_schema(features=VectorUDT(), w=T.BooleanType()), {"weight_col": "w"},
     "column 'w' is boolean, expected numeric sample weights"),
    (_schema(features=VectorUDT(), label=T.ArrayType(T.LongType())), {"label_col": "label"},
     "column 'label' is array<bigint>, expected an orderable label"),
    (_schema(features=VectorUDT(), label=VectorUDT()), {"label_col": "label"},
     "column 'label' is vector, expected an orderable label"),
])
def test_mistyped_columns_one_form(schema, kwargs, message):
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_columns(schema, VECTOR, **kwargs)


def test_feature_columns_type_and_count():
    with pytest.raises(InputError, match=r"^column 'b' is string, expected a numeric column \(byte, short"):
        check_columns(_schema(a=T.DoubleType(), b=T.StringType()), COLUMNS)
    with pytest.raises(InputError, match="columns 'a,b': 2 feature columns, the model expects 3"):
        check_columns(_schema(a=T.DoubleType(), b=T.DoubleType()), COLUMNS, n_features=3)


@pytest.mark.parametrize("label, classes, ok", [
    (T.LongType(), [0, 1], True),
    (T.DoubleType(), [0, 1], True),  # 1.0 == 1
    (T.DecimalType(5, 1), [0.5, 1.5], True),
    (T.IntegerType(), [0.5, 1.5], True),
    (T.StringType(), ["0", "1"], True),
    (T.BooleanType(), [False, True], True),
    (T.StringType(), [0, 1], False),  # "1" != 1
    (T.LongType(), ["0", "1"], False),
    (T.BooleanType(), [0, 1], False),  # True is not 1
    (T.LongType(), [False, True], False),
    (T.DateType(), [0, 1], False),
])
def test_label_type_against_the_model_classes(label, classes, ok):
    schema = _schema(label=label)
    if ok:
        check_columns(schema, label_col="label", classes=classes)
    else:
        with pytest.raises(InputError, match=r"^column 'label' is \w+.*, expected .* labels like the model's classes"):
            check_columns(schema, label_col="label", classes=classes)
