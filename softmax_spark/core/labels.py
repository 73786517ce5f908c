"""Labels ↔ class positions: one equality rule for training, scoring and the Python API.

The rule is Python value equality with booleans kept apart: ``1 == 1.0`` (an int label matches a
float class and the reverse, also for decimal columns), ``"1" != 1`` (text never matches a
number), and ``True`` is a boolean class, never the number 1. A null label matches no class.

``label_positions`` applies it vectorised with Arrow (``pyarrow.compute.index_in``) to an Arrow
column, and gives the same result for a Python sequence or numpy array (tests/test_labels.py).
Positions are int64, −1 for a null or unknown label; ``check_known`` turns the first −1 into the
one ``InputError`` form (column, partition/row, the classes). ``coerce_classes`` casts class
labels given as text (``--classes 0,1,2``) to a label column's Spark type.

Pure numpy + pyarrow; pyspark is never imported: Spark types are told apart by class name (``spark_type_names``).
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from softmax_spark.core.errors import InputError, ModelFormatError

__all__ = ["plain", "class_key", "value_family", "format_classes", "sorted_classes", "discover_classes",
           "class_kind", "arrow_type", "spark_type_names", "class_values", "label_family", "label_positions",
           "unknown_label_error", "check_known", "coerce_classes", "classes_from_files", "SHOWN_CLASSES"]

SHOWN_CLASSES = 20  # an error message lists at most this many classes, then "…"

KINDS = ("bool", "int", "float", "string")


# ---------------------------------------------------------------------------------------------
# Python values
# ---------------------------------------------------------------------------------------------
def plain(value):
    """numpy scalar → Python scalar, so classes compare, hash and serialise like Python values."""
    return value.item() if isinstance(value, np.generic) else value


def value_family(value) -> str:
    """'bool', 'numeric', 'string' or 'other' for one Python label value."""
    value = plain(value)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Number):
        return "numeric"
    if isinstance(value, str):
        return "string"
    return "other"


def class_key(value) -> tuple:
    """Hashable key with the module's equality rule: equal keys ⇔ the same class
    (1, 1.0 and Decimal("1") share one; True and 1 do not; "1" and 1 do not)."""
    value = plain(value)
    return (value_family(value), value)


def sorted_classes(labels: Sequence[Any]) -> list:
    """The distinct label values in sorted order, as plain Python values (scikit-learn's
    ``classes_`` rule). Raises TypeError for values that cannot be ordered together."""
    return sorted(set(plain(v) for v in labels))


def discover_classes(df, label_col: str, files: list[str] | None = None) -> list:
    """The sorted distinct non-null labels of a Spark DataFrame column (one Spark job).
    Raises ``InputError`` when the labels cannot be ordered together.

    ``files``: the local Parquet files behind ``df`` (``df.inputFiles()``), when ``df`` is
    exactly their rows: the label column is then read with pyarrow on the driver (small inputs
    only, see ``classes_from_files``) instead of a Spark job — on small data that job, the
    first SQL job of the process, costs seconds."""
    values = classes_from_files(files, label_col) if files else None
    if values is None:
        values = [row[0] for row in df.select(label_col).distinct().collect() if row[0] is not None]
    try:
        return sorted_classes(values)
    except TypeError:
        raise InputError(f"column '{label_col}' mixes label types that cannot be ordered") from None


CLASSES_FROM_FILES_MAX_ROWS = 4_000_000  # above this the label column is read by Spark


def classes_from_files(files: list[str], label_col: str) -> list | None:
    """Distinct non-null labels of local Parquet ``files`` (``file:`` URIs), read with pyarrow;
    None (Spark decides) when a file is not local, the label is not a physical column of every
    file (a hive partition column), its type is not an integer, bool, string or float type, the
    files hold more than ``CLASSES_FROM_FILES_MAX_ROWS`` rows, or a float label is NaN. The
    values are what Spark's ``distinct`` returns: Python ints, bools, strs, floats (−0.0 as 0.0)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from urllib.parse import unquote, urlparse

    paths = []
    for uri in files:
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            return None
        paths.append(unquote(parsed.path))  # "a%20b" in a URI is the file "a b"
    try:
        parquet_files = [pq.ParquetFile(path) for path in paths]
        if sum(f.metadata.num_rows for f in parquet_files) > CLASSES_FROM_FILES_MAX_ROWS:
            return None
        found = set()
        kind = None
        for f in parquet_files:
            if label_col not in f.schema_arrow.names:
                return None
            column = f.read(columns=[label_col]).column(label_col)
            typ = column.type
            if pa.types.is_integer(typ) or pa.types.is_boolean(typ):
                this = "exact"
            elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
                this = "str"
            elif pa.types.is_floating(typ):
                this = "float"
            else:
                return None
            if kind not in (None, this):
                return None  # the files disagree on the type: Spark says how
            kind = this
            unique = pc.unique(column.drop_null()).to_pylist()
            if this == "float":
                if any(v != v for v in unique):
                    return None
                unique = [v + 0.0 for v in unique]  # −0.0 + 0.0 = 0.0, as Spark normalises it
            found.update(unique)
    except Exception:  # noqa: BLE001 - not readable here: Spark's job reads it (and reports)
        return None
    return list(found)


def class_kind(classes: Sequence, strict: bool = True) -> str:
    """'bool', 'int', 'float' (ints and floats mixed too) or 'string' — the type a column holding
    the class labels themselves gets. Other or mixed classes: ``ModelFormatError`` when
    ``strict``, else 'string' (they are written as text)."""
    families = {value_family(c) for c in classes}
    if families <= {"bool"}:
        return "bool"
    if families <= {"numeric"} and all(isinstance(plain(c), (int, float)) for c in classes):
        return "int" if all(isinstance(plain(c), int) for c in classes) else "float"
    if families <= {"string"}:
        return "string"
    if strict:
        raise ModelFormatError(f"the model's classes mix types: {list(classes)!r}")
    return "string"


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column of ``class_kind`` values."""
    return {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string()}[kind]


def class_values(classes: Sequence, kind: str | None = None) -> pa.Array:
    """The classes as one Arrow array of ``arrow_type(kind)`` (default ``class_kind(classes, strict=False)``)."""
    kind = kind or class_kind(classes, strict=False)
    values = [plain(c) for c in classes]
    return pa.array([str(v) for v in values] if kind == "string" else values, type=arrow_type(kind))


# ---------------------------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------------------------
def label_family(dtype) -> str:
    """'numeric', 'string', 'bool' or 'other' for an Arrow type or a Spark ``DataType``."""
    if isinstance(dtype, pa.DataType):
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
            return "numeric"
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            return "string"
        if pa.types.is_boolean(dtype):
            return "bool"
        return "other"
    kinds = spark_type_names(dtype)
    if "NumericType" in kinds:
        return "numeric"
    if kinds & {"StringType", "VarcharType", "CharType"}:
        return "string"
    if "BooleanType" in kinds:
        return "bool"
    return "other"


def spark_type_names(dtype) -> set[str]:
    """The class names of a Spark ``DataType`` and its bases (``IntegerType`` → {"IntegerType",
    "IntegralType", "NumericType", "AtomicType", "DataType", …}): this numpy layer tells Spark types
    apart by name and never imports pyspark (``pyspark.sql.types`` of classic and of Spark Connect
    sessions alike)."""
    return {cls.__name__ for cls in type(dtype).__mro__}


def _python_positions(labels, classes: Sequence) -> np.ndarray:
    position = {class_key(c): k for k, c in enumerate(classes)}
    out = np.full(len(labels), -1, dtype=np.int64)
    for row, label in enumerate(labels):
        if label is not None:
            out[row] = position.get(class_key(label), -1)
    return out


def label_positions(labels, classes: Sequence) -> np.ndarray:
    """Positions of the label values in ``classes``; −1 for a null or unknown label.

    labels  : Arrow array / chunked array, numpy array or Python sequence of n_rows values.
    classes : the C class labels (distinct under the module's rule).
    Returns ndarray of shape (n_rows,), int64. Equality is the module's rule (1 == 1.0,
    "1" != 1, True != 1), vectorised with Arrow for Arrow and numpy input. A column of another
    type (date, timestamp, …) is compared in its own type, the classes cast to it by Arrow.
    """
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "biufU":
        labels = pa.array(labels)
    if not isinstance(labels, (pa.Array, pa.ChunkedArray)):
        return _python_positions(labels, classes)
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    if pa.types.is_dictionary(labels.type):
        labels = labels.dictionary_decode()
    n = len(labels)
    family = label_family(labels.type)
    if family == "other":  # dates, timestamps, …: the classes cast to the column's type (so --classes text matches)
        try:
            value_set = pa.array([plain(c) for c in classes]).cast(labels.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return _python_positions(labels.to_pylist(), classes)
        return pc.index_in(labels, value_set=value_set).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    # only the classes of the column's family can match; index_in finds the position among them
    chosen = [k for k, c in enumerate(classes) if value_family(c) == family]
    if not chosen or n == 0:
        return np.full(n, -1, dtype=np.int64)
    values = [plain(classes[k]) for k in chosen]
    if family == "numeric":
        exact = pa.types.is_integer(labels.type) and all(isinstance(v, int) for v in values)
        target = pa.int64() if exact else pa.float64()
        labels = labels.cast(target, safe=False) if not exact else labels.cast(target)
        value_set = pa.array(values if exact else [float(v) for v in values], type=target)
    elif family == "string":
        labels = labels.cast(pa.string())
        value_set = pa.array(values, type=pa.string())
    else:
        value_set = pa.array(values, type=pa.bool_())
    found = pc.index_in(labels, value_set=value_set).fill_null(-1).to_numpy(zero_copy_only=False)
    to_class = np.append(np.asarray(chosen, dtype=np.int64), -1)  # found == −1 → the appended −1
    return to_class[found]


def format_classes(classes: Sequence) -> str:
    shown = [plain(c) for c in classes[:SHOWN_CLASSES]]
    return f"{shown}"[:-1] + (", …]" if len(classes) > SHOWN_CLASSES else "]")


def unknown_label_error(positions: np.ndarray, labels, column: str | None, classes: Sequence,
                        where: str | None = "the input",
                        row_offset: int = 0, owner: str = "the", hint: str = "") -> InputError | None:
    """The ``InputError`` for the first −1 in ``positions`` (None when there is none):

        column 'label': label 9 at partition 3 row 41 is not one of the model's classes [0, 3, 7]:
        expected a known class label[; hint]

    labels : the values ``positions`` came from (Arrow or a sequence), to name the bad one.
    column : the label column's name (None: no "column" prefix); where: e.g. "partition 3"
             (None: just "row N"); owner: "the" or "the model's"; hint: what the user can do.
    """
    unknown = np.flatnonzero(np.asarray(positions) < 0)
    if not unknown.size:
        return None
    row = int(unknown[0])
    value = labels[row]
    value = value.as_py() if isinstance(value, pa.Scalar) else plain(value)
    what = "null label" if value is None else f"label {value!r}"
    prefix = f"column '{column}': " if column else ""
    at = f"{where} row" if where else "row"
    return InputError(f"{prefix}{what} at {at} {row_offset + row} is not one of {owner} classes "
                      f"{format_classes(classes)}: expected a known class label" + (f"; {hint}" if hint else ""))


def check_known(labels, classes: Sequence, column: str | None, where: str | None = "the input", row_offset: int = 0,
                owner: str = "the", hint: str = "") -> np.ndarray:
    """``label_positions(labels, classes)``, raising ``unknown_label_error`` for a null or unknown label."""
    positions = label_positions(labels, classes)
    error = unknown_label_error(positions, labels, column, classes, where, row_offset, owner, hint)
    if error is not None:
        raise error
    return positions


# ---------------------------------------------------------------------------------------------
# class labels given as text
# ---------------------------------------------------------------------------------------------
def coerce_classes(given: Sequence, dtype, column: str, flag: str = "--classes") -> list:
    """Class labels given as text (``--classes 0,1,2``) in a label column's Spark type ``dtype``:
    integral → int, floating/decimal → float, boolean → True/False (from "true"/"false", any case),
    else str. Returns them sorted. Raises ``InputError`` for a value of another type or duplicates."""
    def to_bool(v):
        if isinstance(v, bool):
            return v
        if str(v).lower() not in ("true", "false"):
            raise ValueError(v)
        return str(v).lower() == "true"

    kinds = spark_type_names(dtype)
    if "IntegralType" in kinds:
        convert = int
    elif kinds & {"FloatType", "DoubleType", "DecimalType"}:
        convert = float
    elif "BooleanType" in kinds:
        convert = to_bool
    else:
        convert = str
    try:
        values = [convert(v) for v in given]
    except (ValueError, TypeError):
        raise InputError(f"{flag} {list(given)} do not match the type of column '{column}' "
                         f"({dtype.simpleString()})") from None
    if len({class_key(v) for v in values}) != len(values):
        raise InputError(f"{flag} {list(given)} has duplicates")
    return sorted(values)
