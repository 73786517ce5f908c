"""softmax_spark.core.labels without Spark: one equality rule (1 == 1.0, "1" != 1, True is not 1) for
Arrow columns, numpy arrays and Python sequences, and for ingest and scoring alike."""

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from softmax_spark.core.errors import InputError, ModelFormatError
from softmax_spark.evaluate.evaluation import _ScoringKernel
from softmax_spark.core.features import FeatureSpec
from softmax_spark.spark.ingest import _BlockWriter
from softmax_spark.core.labels import (check_known, class_key, class_kind, class_values, label_positions,
                                  sorted_classes)
from softmax_spark.core.model import SoftmaxModel, labels_to_index

# (label column as Arrow, classes, expected positions): every case also as a Python list
CASES = [
    (pa.array([1, 2, 0, None], pa.int64()), [0, 1, 2], [1, 2, 0, -1]),
    (pa.array([1, 2, 0], pa.int32()), [0.0, 1.0, 2.0], [1, 2, 0]),  # int labels, float classes
    (pa.array([1.0, 2.0, 0.5], pa.float64()), [0, 1, 2], [1, 2, -1]),  # float labels, int classes
    (pa.array([1.0, 2.5], pa.float32()), [1, 2.5], [0, 1]),
    (pa.array(["1", "2", "a"]), [1, 2], [-1, -1, -1]),  # text is not a number
    (pa.array([1, 2]), ["1", "2"], [-1, -1]),  # nor a number text
    (pa.array([True, False, None]), [0, 1], [-1, -1, -1]),  # True is a boolean, not 1
    (pa.array([1, 0]), [False, True], [-1, -1]),
    (pa.array([True, False]), [False, True], [1, 0]),
    (pa.array(["b", "a", "c"]), ["a", "b"], [1, 0, -1]),
    (pa.array([1, 0, 7]), [0, True, "1", 1.0], [3, 0, -1]),  # mixed classes: a label meets only its own family
    (pa.array([Decimal("1.00"), Decimal("2.50")], pa.decimal128(5, 2)), [1, 2.5], [0, 1]),
    (pa.array([Decimal("1.00"), Decimal("3.00")], pa.decimal128(5, 2)), [Decimal("1"), Decimal("2")], [0, -1]),
]


@pytest.mark.parametrize("column, classes, expected", CASES)
def test_arrow_and_python_give_the_same_positions(column, classes, expected):
    got = label_positions(column, classes)
    assert got.dtype == np.int64 and got.tolist() == expected
    assert label_positions(column.to_pylist(), classes).tolist() == expected
    assert label_positions(pa.chunked_array([column.slice(0, 1), column.slice(1)]), classes).tolist() == expected


def test_numpy_arrays_and_scalars():
    assert label_positions(np.array([2, 0], np.int32), [0, 1.0, 2]).tolist() == [2, 0]
    assert label_positions(np.array(["dog", "bird"]), ["bird", "cat", "dog"]).tolist() == [2, 0]
    assert label_positions(np.array([True, False]), [0, 1]).tolist() == [-1, -1]
    assert label_positions([np.float64(1.0), np.int64(2), np.str_("x"), np.bool_(True)], [1, 2, "x", True]).tolist() \
        == [0, 1, 2, 3]
    assert label_positions(pa.array([], pa.int64()), [0, 1]).tolist() == []


def test_class_key_and_kind():
    assert class_key(1) == class_key(1.0) == class_key(Decimal(1)) == class_key(np.int8(1))
    assert class_key(True) != class_key(1) and class_key("1") != class_key(1)
    assert [class_kind(c) for c in ([True], [1, 2], [1, 2.5], ["a"])] == ["bool", "int", "float", "string"]
    with pytest.raises(ModelFormatError, match="mix types"):
        class_kind([1, "a"])
    assert class_kind([1, "a"], strict=False) == "string"
    assert class_values([1, "a"]).to_pylist() == ["1", "a"]
    assert sorted_classes(np.array([3, 1, 3])) == [1, 3]


def test_one_error_form_names_column_partition_row_and_classes():
    with pytest.raises(InputError, match=r"^column 'y': label 'z' at partition 4 row 12 is not one of the classes "
                                         r"\['a', 'b'\]: expected a known class label$"):
        check_known(pa.array(["a", "z"]), ["a", "b"], "y", "partition 4", row_offset=11)
    with pytest.raises(InputError, match=r"column 'y': null label at partition 0 row 0 .*; pass --x"):
        check_known(pa.array([None], pa.int64()), [0, 1], "y", "partition 0", hint="pass --x")
    many = list(range(30))
    with pytest.raises(InputError, match=r"\[0, 1, .*, 19, …\]"):
        check_known([99], many, "y")
    with pytest.raises(ValueError, match=r"^label True at row 1 is not one of the model's classes \[0, 1\]"):
        labels_to_index([1, True], [0, 1])


def _ingest_positions(tmp_path, monkeypatch, column, classes):
    """Class positions the training ingest stores for one batch (its ``y`` file's values)."""
    monkeypatch.setenv("SPARK_LOCAL_DIRS", str(tmp_path))
    batch = pa.RecordBatch.from_arrays([pa.array([[0.0]] * len(column)), column], names=["features", "label"])
    writer = _BlockWriter(FeatureSpec(features_col="features"), "label", None, classes, "float64", "t", 1,
                          "dense", partition=0, attempt=0)
    try:
        writer.add(batch)
        return writer.ys[0].tolist()
    finally:
        writer.abort()


def _scoring_positions(column, classes):
    """Class positions the evaluation's metrics use for the same labels (−1: counted as unknown),
    after the scoring kernel accepted them."""
    batch = pa.RecordBatch.from_arrays([pa.array([0.0] * len(column)), column], names=["a", "label"])
    names = ["label", "probability"] + [f"p{k}" for k in range(len(classes))] + ["prediction"]
    kernel = _ScoringKernel(spec=FeatureSpec(features_col=None, feature_cols=("a",)), n_features=1,
                            classes=classes, passthrough=["label"], output_names=names, label_col="label",
                            coef=np.zeros((len(classes), 1)), intercept=np.zeros(len(classes)))
    list(kernel(iter([batch])))
    return label_positions(column, classes).tolist()


@pytest.mark.parametrize("column, classes", [
    (pa.array([1, 0, 1], pa.int64()), [0.0, 1.0]),  # 1 == 1.0
    (pa.array([1.0, 0.0], pa.float64()), [0, 1]),
    (pa.array(["1", "0"]), ["0", "1"]),
    (pa.array([True, False]), [False, True]),
    (pa.array([Decimal("1.0"), Decimal("0.0")], pa.decimal128(3, 1)), [0, 1]),
])
def test_ingest_and_scoring_give_the_same_positions(tmp_path, monkeypatch, column, classes):
    expected = label_positions(column.to_pylist(), classes).tolist()
    assert _ingest_positions(tmp_path, monkeypatch, column, classes) == expected
    assert _scoring_positions(column, classes) == expected
    model = SoftmaxModel(np.zeros((len(classes), 1)), None, classes)
    assert model.class_index(column.to_pylist()).tolist() == expected


@pytest.mark.parametrize("column, classes, shown", [
    (pa.array(["1"]), [0, 1], "label '1'"),  # "1" is not 1
    (pa.array([True]), [0, 1], "label True"),  # True is not 1
    (pa.array([1], pa.int64()), ["0", "1"], "label 1"),
    (pa.array([None], pa.float64()), [0.0, 1.0], "null label"),
])
def test_ingest_and_scoring_refuse_the_same_labels(tmp_path, monkeypatch, column, classes, shown):
    with pytest.raises(InputError, match=f"column 'label': {shown} at partition 0 row 0 is not one of the classes"):
        _ingest_positions(tmp_path, monkeypatch, column, classes)
    with pytest.raises(InputError, match=f"column 'label': {shown} at partition .* row 0 is not one of the "
                                         "model's classes"):
        _scoring_positions(column, classes)
    with pytest.raises(ValueError, match=shown):
        SoftmaxModel(np.zeros((len(classes), 1)), None, classes).class_index(column.to_pylist())
