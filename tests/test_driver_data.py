"""Small data collected to the driver (``spark.driver_data``): the label discovery of a collected table."""

import pyarrow as pa

from softmax_spark.spark.driver_data import table_classes


def test_table_classes_sorts_drops_nulls_and_gives_up_on_nan():
    assert table_classes(pa.table({"label": [2.0, None, -0.0, 1.0, 2.0]}), "label") == [0.0, 1.0, 2.0]
    assert table_classes(pa.table({"label": ["b", "a", "b"]}), "label") == ["a", "b"]
    assert table_classes(pa.table({"label": [1.0, float("nan")]}), "label") is None
