"""Labels → classes for the Spark ML Estimator: MLlib's 0..K−1 convention or the sorted distinct
labels (``labelIndexing``; see ``softmax_spark.sparkml.classification``'s docstring)."""

from __future__ import annotations

from softmax_spark.core.errors import InputError
from softmax_spark.sparkml.params import LABEL_INDEXING
from softmax_spark.core.labels import discover_classes, label_family
from softmax_spark.spark.schema import check_columns

__all__ = ["resolve_classes"]

def _metadata_num_classes(field) -> int | None:
    """K from a label column's ML attribute metadata (StringIndexer output), as MLlib's
    ``MetadataUtils.getNumClasses``: nominal → number of values, binary → 2, otherwise None."""
    attr = (field.metadata or {}).get("ml_attr") or {}
    kind = attr.get("type")
    if kind == "binary":
        return 2
    if kind == "nominal":
        if "vals" in attr:
            return len(attr["vals"])
        if "num_vals" in attr:
            return int(attr["num_vals"])
    return None


def resolve_classes(df, label_col: str, mode: str = "auto", values=None, with_present: bool = False) -> tuple:
    """(classes, uses MLlib's convention) for ``df[label_col]`` (one distinct-labels Spark job).

    MLlib's convention: classes 0..K−1 (in the column's type: float for floating columns, int for
    integral ones), K = the column's ML metadata count, else max label + 1. See the module
    docstring for "auto". Raises ``InputError`` for a missing column, no labels, or ``mode="mllib"``
    with labels that are not integers ≥ 0. ``with_present``: also return the sorted distinct
    labels of the data (a third item). ``values``: the distinct labels when already known (read
    from rows collected to the driver), else one Spark job finds them.
    """
    from pyspark.sql import types as T


    if mode not in LABEL_INDEXING:
        raise InputError(f"labelIndexing must be one of {', '.join(LABEL_INDEXING)}, got {mode!r}")
    check_columns(df.schema, label_col=label_col)  # exists, and an orderable type
    field = df.schema[label_col]
    values = discover_classes(df, label_col) if values is None else values  # values: from collected rows
    if not values:
        raise InputError(f"the input has 0 labelled rows in column '{label_col}'; expected at least one")
    numeric = label_family(field.dataType) == "numeric"
    integral = numeric and all(float(v).is_integer() and v >= 0 for v in values)
    meta_k = _metadata_num_classes(field) if numeric else None
    top = int(max(values)) + 1 if integral else 0
    if mode == "auto":
        mllib = integral and (meta_k is not None or top <= 2 * len(values))
    else:
        mllib = mode == "mllib"
    if not mllib:
        return (values, False, values) if with_present else (values, False)
    if not integral:
        bad = next(v for v in values if not (numeric and float(v).is_integer() and v >= 0))
        raise InputError(f"column '{label_col}': label {bad!r} is not an integer ≥ 0, which labelIndexing='mllib' "
                         "(MLlib's convention) expects; use labelIndexing='sorted' or a StringIndexer")
    if meta_k is not None and top > meta_k:
        raise InputError(f"column '{label_col}': label {top - 1} but the column's metadata gives {meta_k} classes")
    k = max(top, meta_k or 0)
    kind = int if isinstance(field.dataType, T.IntegralType) else float
    classes = [kind(i) for i in range(k)]
    return (classes, True, values) if with_present else (classes, True)

